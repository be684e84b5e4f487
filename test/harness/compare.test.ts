/** apf compare with several files (a context axis), profiles carrying toggles, and Markdown output. */
import { axisEntries, shortDuration, type CompareCell } from '../../harness/cli/commands/compare';
import { UsageError } from '../../harness/scenario/overrides';
import { cli, REPO } from './cli-helpers';

const A = 'scenarios/regressions/send-always/1-preemptible-kernel.json';
const B = 'scenarios/regressions/send-always/6-irqs-disabled.json';

describe('apf compare', () => {
  it('parses profiles with toggles, and rejects unknown ones', () => {
    expect(axisEntries('host', 'linux-4.19,linux-4.19+honour_send_always=off', 'current')).toEqual([
      { label: 'linux-4.19', profile: 'linux-4.19', toggles: [] },
      { label: 'linux-4.19+honour_send_always=off', profile: 'linux-4.19', toggles: [{ side: 'host', name: 'honour_send_always', value: false, text: 'host.honour_send_always=off' }] },
    ]);
    expect(axisEntries('guest', undefined, 'linux-5.2')).toEqual([{ label: 'linux-5.2', profile: 'linux-5.2', toggles: [] }]);
    expect(() => axisEntries('host', 'linux-4.19+nonzero_tokn=on', 'current')).toThrow(UsageError);
    expect(() => axisEntries('guest', 'linux-5.3', 'current')).toThrow(/unknown guest profile/);
  });

  it('runs every file × guest × host and applies the toggles a profile carries', () => {
    const r = cli(['compare', A, B, '--guest', 'linux-5.2', '--host', 'linux-4.19,linux-4.19+honour_send_always=off', '--json'], { cwd: REPO });
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out) as { contexts: Array<{ name: string }>; cells: CompareCell[] };
    expect(j.contexts.map((c) => c.name)).toEqual(['preemptible-kernel', 'irqs-disabled']);
    expect(j.cells.map((c) => [c.context, c.host, c.asyncPfInjected, c.artificialHalts, c.syncFaults])).toEqual([
      ['preemptible-kernel', 'linux-4.19', 1, 0, 0],
      ['preemptible-kernel', 'linux-4.19+honour_send_always=off', 0, 1, 0],
      ['irqs-disabled', 'linux-4.19', 0, 0, 1],
      ['irqs-disabled', 'linux-4.19+honour_send_always=off', 0, 0, 1],
    ]);
    expect(j.cells[0]).toMatchObject({ guestWait: 'schedule', stalledNs: 0 });
    expect(j.cells[1]?.stalledNs).toBeGreaterThan(250_000);
    expect(j.cells[1]?.replay).toContain('--toggle host.honour_send_always=off');
  });

  it('prints the context column and a grid, or Markdown tables', () => {
    const text = cli(['compare', A, B, '--guest', 'linux-5.2', '--host', 'linux-4.19'], { cwd: REPO }).out;
    expect(text).toMatch(/^context\s+guest\s+host\s+outcome/m);
    expect(text).toMatch(/preemptible-kernel linux-5\.2\s+async\b/);
    const md = cli(['compare', A, B, '--guest', 'linux-5.2', '--host', 'linux-4.19', '--markdown'], { cwd: REPO }).out;
    expect(md).toContain('| context | guest | host `linux-4.19` |');
    expect(md).toContain('| preemptible-kernel | `linux-5.2` | async #PF, task sleeps');
    expect(md).toContain('| irqs-disabled | `linux-5.2` | sync 300 µs |');
  });

  it('rounds durations for tables', () => {
    expect([shortDuration(999), shortDuration(299_499), shortDuration(2_345_678)]).toEqual(['999 ns', '299 µs', '2.35 ms']);
  });
});
