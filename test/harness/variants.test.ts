/** Regression variants: the `regression.variants` header, `apf run --variant`, and `applyVariant`. */
import { scenarioFromValue, ScenarioError } from '../../harness/scenario/load';
import { applyVariant, UsageError, variantNames } from '../../harness/scenario/overrides';
import { cli, REPO, tmpDir } from './cli-helpers';

const base = {
  tasks: [{ name: 'a', program: [{ op: 'touch', page: '0x7f0000001000' }] }],
  machine: { guest: { toggles: { page_ready_eoi: true } }, host: { toggles: { nonzero_token: true } } },
  regression: {
    bug: 'b',
    fixedBy: 'f',
    shows: 's',
    variants: {
      buggy: {
        description: 'old host',
        host: { profile: 'linux-5.13', toggles: { nonzero_token: false } },
        guest: { toggles: { cr2_read_at_entry: false } },
        events: [{ at: '1ms', do: 'nmi', cpu: 0 }],
        expect: { outcome: 'panic', panic: 'x' },
        verdict: { pass: 'bug shows' },
      },
    },
  },
};

describe('regression variants', () => {
  it('a variant replaces profiles, adds toggles, and brings its own events, expectations and verdict', () => {
    const s = scenarioFromValue(base, 'x.json');
    expect(variantNames(s)).toEqual(['buggy']);
    const v = applyVariant(s, 'buggy');
    expect(v.variant).toBe('buggy');
    expect(v.machine.host).toMatchObject({ profile: 'linux-5.13', toggles: { nonzero_token: false } });
    expect(v.machine.guest).toMatchObject({ profile: 'current', toggles: { page_ready_eoi: true, cr2_read_at_entry: false } });
    expect(v.events.map((e) => e.action.do)).toEqual(['nmi']);
    expect(v.expect).toMatchObject({ outcome: 'panic', panic: 'x' });
    expect(v.verdict).toEqual({ pass: 'bug shows' });
    expect(s.events).toEqual([]);
  });

  it('unknown variants and bad variant content are reported', () => {
    const s = scenarioFromValue(base, 'x.json');
    expect(() => applyVariant(s, 'bugy')).toThrow(new UsageError('--variant bugy: x.json has no variant "bugy" (did you mean "buggy"?); variants: buggy'));
    const bad = { ...base, regression: { ...base.regression, variants: { buggy: { host: { toggles: { nonzero_tokn: false } }, expect: {} } } } };
    expect(() => scenarioFromValue(bad, 'x.json')).toThrow(ScenarioError);
    const badCount = { ...base, regression: { ...base.regression, variants: { buggy: { expect: { counts: { not_an_event: 1 } } } } } };
    expect(() => scenarioFromValue(badCount, 'x.json')).toThrow(/regression\.variants\.buggy\.expect\.counts\.not_an_event: unknown trace event/);
    const badName = { ...base, regression: { ...base.regression, variants: { Buggy: { expect: {} } } } };
    expect(() => scenarioFromValue(badName, 'x.json')).toThrow(/lower-case/);
  });

  it('apf run --variant runs it, prints its verdict and repeats --variant in the replay line', () => {
    const runs = tmpDir();
    const file = 'scenarios/regressions/smi-clears-apf-queue.json';
    const fixed = cli(['run', file, '--quiet', '--runs-dir', runs], { cwd: REPO });
    expect(fixed.code).toBe(0);
    expect(fixed.out).toMatch(/^PASS smi-clears-apf-queue: fixed: /);
    const buggy = cli(['run', file, '--variant', 'buggy', '--quiet', '--runs-dir', runs], { cwd: REPO });
    expect(buggy.code).toBe(0);
    expect(buggy.out).toMatch(/^PASS smi-clears-apf-queue: bug reproduced: /);
    expect(buggy.out).toContain(`replay: npx apf run ${file} --variant buggy --seed 1 --guest current --host current`);
    const header = cli(['run', file, '--variant', 'buggy', '--runs-dir', runs], { cwd: REPO }).out;
    expect(header).toContain('  variant: buggy — current host with keep_queue_on_cr0_pg off');
    expect(cli(['run', file, '--variant', 'nope', '--runs-dir', runs], { cwd: REPO })).toMatchObject({ code: 2, err: expect.stringContaining('has no variant "nope"') });
  });
});
