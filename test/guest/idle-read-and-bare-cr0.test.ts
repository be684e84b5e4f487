/**
 * Two small guest additions used by the regression suite: the idle loop's optional kernel read
 * (a kernel-mode fault in the idle task) and the bare guest's `paging` and `idt` steps.
 */
import { runScenario, type RunReport } from '../../harness/runner';
import { scenarioFromValue } from '../../harness/scenario/load';
import type { TraceRecord } from '../../sim/trace';

function run(value: unknown): { report: RunReport; records: TraceRecord[] } {
  const records: TraceRecord[] = [];
  const report = runScenario(scenarioFromValue(value, undefined), { onRecord: (r) => records.push(r) });
  return { report, records };
}

describe('guest.idleRead: the idle task reads kernel memory with interrupts on', () => {
  const idle = (guest: string, host: string) =>
    run({
      machine: { vcpus: 1, memory: '16MiB', guest: { profile: guest, idleRead: '0xffff888000500000' }, host: { profile: host } },
      hostMemory: { evictions: [{ at: '100us', pages: [{ gfn: '0x500' }] }], latency: { swap: '300us' } },
      tasks: [{ name: 'sleeper', start: '150us', program: [{ op: 'sleep', for: '500us' }] }],
    });

  it('a v5.2 guest with SEND_ALWAYS gets the async #PF in the idle task and halts instead of scheduling (§4.5)', () => {
    const { report, records } = idle('linux-5.2', 'linux-4.19');
    expect(report.outcome).toBe('completed');
    const np = records.find((r) => r.event === 'kvm_async_pf_not_present');
    expect(np).toMatchObject({ injected: true, gva: 0x500000 });
    expect(records.filter((r) => r.event === 'kvm_async_pf_task_wait_halt').map((r) => r.task)).toEqual(['swapper/0']);
    expect(records.some((r) => r.event === 'kvm_async_pf_task_wait_schedule')).toBe(false);
    expect(records.some((r) => r.event === 'kvm_async_pf_task_woken' && r.task === 'swapper/0')).toBe(true);
  });

  it('the current guest never sees it: an artificial halt (CPL 0, no SEND_ALWAYS)', () => {
    const { report, records } = idle('current', 'current');
    expect(report.outcome).toBe('completed');
    expect(records.find((r) => r.event === 'kvm_async_pf_not_present')).toMatchObject({ injected: false, halt: true });
    expect(records.some((r) => r.event === 'kvm_async_pf_halt')).toBe(true);
  });

  it('is off by default: without it the idle task never touches the evicted frame', () => {
    const { records } = run({
      machine: { vcpus: 1, memory: '16MiB' },
      hostMemory: { evictions: [{ at: '100us', pages: [{ gfn: '0x500' }] }] },
      tasks: [{ name: 'sleeper', start: '150us', program: [{ op: 'sleep', for: '500us' }] }],
    });
    expect(records.some((r) => r.event === 'host_page_evict' && r.gfn === 0x500)).toBe(true);
    expect(records.some((r) => r.event === 'kvm_page_fault')).toBe(false);
  });
});

describe('bare guest: paging and idt steps', () => {
  const bare = (script: unknown[], toggles: Record<string, boolean> = {}) =>
    run({ machine: { vcpus: 1, memory: '4MiB', host: { toggles } }, hostMemory: { pages: [{ gfn: '0x100', backing: 'swapped' }] }, bare: { script } });

  it('clears and sets CR0.PG (the host sees both changes); memory stays reachable, it is identity mapped', () => {
    const { report, records } = bare([{ op: 'paging', enable: false }, { op: 'touch', addr: '0x200000', write: true, value: 5 }, { op: 'paging', enable: true }, { op: 'touch', addr: '0x200000' }]);
    expect(report.outcome).toBe('completed');
    expect(records.filter((r) => r.event === 'kvm_post_set_cr0').map((r) => [r.old, r.new])).toEqual([[0, 0x80010001], [0x80010001, 0x10001], [0x10001, 0x80010001]]);
    expect(records.filter((r) => r.event === 'bare_touch').map((r) => r.value)).toEqual([5, 5]);
  });

  it('an empty IDT turns any exception into a triple fault; reloading the IDT restores the handlers', () => {
    const gp = { op: 'wrmsr', msr: '0x12345678', value: '0x1' };
    expect(bare([{ op: 'idt', load: false }, gp]).report.outcome).toBe('triple_fault');
    const ok = bare([{ op: 'idt', load: false }, { op: 'idt', load: true }, gp]);
    expect(ok.report.outcome).toBe('completed');
    expect(ok.records.some((r) => r.event === 'bare_exception' && r.vector === 13)).toBe(true);
  });
});
