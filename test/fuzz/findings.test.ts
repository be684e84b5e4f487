/**
 * Scenarios the fuzzer found and shrank while it was being built, kept as regression tests.
 *
 * Three were false alarms of the interrupts checker, fixed in harness/checkers/interrupts.ts: a
 * page-ready already in the LAPIC when APF is disabled on the host side may still be handled
 * after a migration restore; IRR survives a LAPIC software-disable (docs/host.md, decision 19),
 * so an interrupt accepted before it is injected after the re-enable; and an interrupt pending
 * on a CPU the guest took offline waits there, it is not lost.
 *
 * The others are real behaviours of the modelled kernels that the generator now avoids or reports
 * as known hazards (docs/fuzzing.md): they are pinned here so that a change to them is noticed.
 */
import { native } from '../support/native';

// The runs happen outside Jest's sandbox (test/support/native.ts).
const { runScenarioCase } = native<typeof import('../../harness/fuzz/case')>('harness/fuzz/case');
const { runScenario } = native<typeof import('../../harness/runner')>('harness/runner');
const { scenarioFromValue } = native<typeof import('../../harness/scenario/load')>('harness/scenario/load');

const swapped = { pages: [{ page: '0x7f0000001000', backing: 'swapped' }] };
const touchOnce = [{ name: 't0', program: [{ op: 'touch', page: '0x7f0000001000' }] }];

describe('interrupts checker false alarms (fixed)', () => {
  it('a page-ready posted just before a migration reset of APF is handled after the restore', () => {
    const s = scenarioFromValue(
      {
        seed: 0,
        machine: { vcpus: 1, memory: '2MiB', host: { stepJitter: '1ns' } },
        hostMemory: swapped,
        tasks: touchOnce,
        events: [{ on: { event: 'kvm_async_pf_completed' }, after: '1ns', do: 'save_restore', cpu: 0 }],
      },
      undefined,
    );
    const r = runScenario(s);
    expect(r.counts.sysvec_kvm_asyncpf_interrupt).toBeGreaterThanOrEqual(2);
    expect({ outcome: r.outcome, violations: r.violations }).toEqual({ outcome: 'completed', violations: [] });
  });

  it('an interrupt accepted before a LAPIC software-disable is injected after the re-enable', () => {
    const s = scenarioFromValue(
      {
        seed: 19339216,
        machine: { vcpus: 1, memory: '2MiB', guest: { toggles: { config_preempt: false, nmi_saves_cr2: false } }, host: { exitCost: '100ns', stepJitter: '2746ns' } },
        hostMemory: swapped,
        tasks: [{ name: 't0', program: [{ op: 'syscall', body: [{ op: 'copy_from_user', page: '0x7f0000001000' }] }, { op: 'compute', for: '1us' }] }],
        events: [
          { at: '890857ns', do: 'lapic_disable', cpu: 0 },
          { at: '891113ns', do: 'lapic_enable', cpu: 0 },
        ],
      },
      undefined,
    );
    const r = runScenario(s);
    expect({ outcome: r.outcome, violations: r.violations }).toEqual({ outcome: 'completed', violations: [] });
  });

  it('an interrupt still pending on a CPU that is offline at the end of the run is not reported as lost', () => {
    // Page-ready posted to CPU 1 just before it went offline (cli; hlt until INIT): the run ends first.
    const doc: unknown = JSON.parse(OFFLINE_AT_END);
    const r = runScenario(scenarioFromValue(doc, undefined), { keepRecords: 100_000 });
    expect(r.records.some((x) => x.event === 'cpu_offline' && x.cpu === 1)).toBe(true);
    expect(r.records.some((x) => x.event === 'cpu_online' && x.cpu === 1 && x.t > 1_000_000)).toBe(false);
    expect({ outcome: r.outcome, violations: r.violations }).toEqual({ outcome: 'completed', violations: [] });
  });
});

const OFFLINE_AT_END = `{"seed": 508119021, "machine": {"vcpus": 2, "memory": "2MiB", "guest": {"profile": "current", "toggles": {"nmi_saves_cr2": false}}, "host": {"profile": "current", "tokenCounter": "0xffffe", "stepJitter": "2827ns"}}, "hostMemory": {"pages": [{"page": "0x7f0000001000", "backing": "swapped"}], "latency": {"swap": {"uniform": {"min": "83586ns", "max": "83594ns"}}, "remote": {"exponential": {"mean": "999994ns", "max": "2406483ns"}}}, "limitPages": 5, "evictions": [{"at": "1458041ns", "pages": ["0x7f0000001000"]}, {"at": "2587225ns", "pages": ["0x7f0000001000"]}]}, "tasks": [{"name": "t0", "start": "445139ns", "nice": -3, "mm": "proc1", "program": [{"op": "touch", "page": "0x7f0000001000", "offset": 52, "write": true, "value": 3783934451}, {"op": "touch", "page": "0x7f0000001000"}]}, {"name": "t1", "mm": "proc0", "program": [{"op": "touch", "page": "0x7f0000001000", "offset": 64, "write": true, "value": 4137204300}, {"op": "sleep", "for": "673144ns"}, {"op": "yield"}, {"op": "compute", "for": "9523ns"}, {"op": "sleep", "for": "169468ns"}]}, {"name": "t2", "cpu": 0, "affinity": [0], "nice": 1, "mm": "proc0", "program": [{"op": "loop", "times": 2, "body": [{"op": "compute", "for": "60847ns"}]}, {"op": "touch", "page": "0x7f0000001000", "offset": 180, "write": true, "value": 4028307066}]}, {"name": "t3", "cpu": 1, "affinity": [1], "program": [{"op": "sleep", "for": "969217ns"}, {"op": "touch", "page": "0x7f0000001000", "offset": 248, "write": true, "value": 1299861788}]}], "events": [{"at": "2103285ns", "do": "apf_disable", "cpu": 1}, {"at": "2573007ns", "do": "apf_enable", "cpu": 1}, {"on": {"event": "kvm_async_pf_not_present", "fields": {"injected": true}, "cpu": 1}, "nth": 2, "after": "1073ns", "do": "smi", "cpu": 0, "duration": "22642ns"}, {"on": {"event": "kvm_read_and_reset_apf_flags", "cpu": 0}, "after": "695ns", "do": "cpu_offline", "cpu": 1}, {"on": {"event": "cpu_offline", "cpu": 1}, "after": "491705ns", "do": "init", "cpu": 1}, {"at": "1473525ns", "do": "smi", "cpu": 1, "duration": "35772ns"}], "budget": {"maxEvents": 300000, "maxTime": "50ms"}}`;

describe('known hazards (real behaviour of the modelled kernels)', () => {
  it('nmi-in-async-pf-window: a faulting perf NMI before the #PF handler reads the APF flags panics the v5.8+ guest', () => {
    const s = scenarioFromValue(
      {
        seed: 0,
        machine: { vcpus: 1, memory: '2MiB', guest: { nmiUserRead: '0x600000000000' } },
        hostMemory: swapped,
        tasks: [{ name: 't0', program: [{ op: 'loop', times: 2, body: [{ op: 'touch', page: '0x7f0000001000' }] }] }],
        events: [{ on: { event: 'kvm_async_pf_not_present', fields: { injected: true } }, do: 'nmi', cpu: 0 }],
      },
      undefined,
    );
    const r = runScenarioCase(s, { mode: 'trusted' });
    expect(r).toMatchObject({ ok: true, outcome: 'panic', hazard: 'nmi-in-async-pf-window' });
  });

  it('stale-token-after-disable: a page-ready posted as the CPU suspends stays in the slot and stalls APF after resume', () => {
    const s = scenarioFromValue(
      {
        seed: 11,
        machine: { vcpus: 1, memory: '2MiB', guest: { toggles: { nmi_saves_cr2: false } }, host: { allocFailure: '1/3', stepJitter: '3us' } },
        hostMemory: swapped,
        tasks: [
          { name: 't0', program: [{ op: 'touch', page: '0x7f0000001000' }, { op: 'syscall', body: [{ op: 'preempt_disable' }, { op: 'copy_from_user', page: '0x7f0000001000' }, { op: 'preempt_enable' }] }] },
          { name: 't1', program: [{ op: 'touch', page: '0x7f0000001000', offset: 64 }, { op: 'loop', times: 2, body: [{ op: 'yield' }] }] },
          { name: 't2', program: [{ op: 'yield' }] },
          { name: 't3', kind: 'kthread', program: [{ op: 'schedule' }] },
        ],
        events: [
          { on: { event: 'kvm_async_pf_not_present', fields: { injected: true } }, do: 'smi', cpu: 0, duration: '51023ns' },
          { at: '100us', do: 'suspend' },
          { at: '131293ns', do: 'resume' },
        ],
        budget: { maxTime: '20ms' },
      },
      undefined,
    );
    const r = runScenarioCase(s, { mode: 'trusted' });
    expect(r).toMatchObject({ ok: true, hazard: 'stale-token-after-disable' });
    expect(r.outcome).not.toBe('completed');
  });

  it('without the work-item allocation of its wake-all, a re-enable strands a sleeper whose page-in the disable dropped', () => {
    const s = scenarioFromValue(
      {
        seed: 1800895291,
        machine: { vcpus: 1, memory: '2MiB', host: { allocFailure: '1/2' } },
        hostMemory: { ...swapped, latency: { swap: '10us' } },
        tasks: [
          { name: 't0', program: [{ op: 'syscall', body: [{ op: 'copy_from_user', page: '0x7f0000001000' }] }] },
          { name: 't1', program: [{ op: 'touch', page: '0x7f0000001000', offset: 64 }] },
        ],
        events: [
          { on: { event: 'kvm_async_pf_not_present', fields: { injected: true } }, do: 'apf_disable', cpu: 0 },
          { on: { event: 'kvm_async_pf_not_present', fields: { injected: true } }, after: '1ns', do: 'apf_enable', cpu: 0 },
        ],
        budget: { maxTime: '10ms' },
      },
      undefined,
    );
    const r = runScenario(s, { keepRecords: 100_000 });
    expect(r.outcome).toBe('budget');
    expect(r.records.filter((x) => x.event === 'kvm_async_pf_wakeup_all').map((x) => x.why ?? 'queued')).toEqual(['queued', 'alloc_fail']);
    expect(r.records.filter((x) => x.event === 'kvm_async_pf_clear_queue' && x.reason === 'disable').map((x) => x.dropped)).toEqual([1]);
  });
});
