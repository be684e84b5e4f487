/**
 * The regression suite: every scenarios/regressions/*.json runs as written (the fixed run) and as
 * each declared variant, in-process, with its expectations met; the buggy run fails the fixed
 * run's expectations and the fixed run fails the buggy run's; and the symptom named below for
 * each bug is present in the buggy run and absent from the fixed one.
 */
import * as path from 'node:path';
import type { TraceRecord } from '../../sim/trace';
import type { RunReport } from '../../harness/runner';
import type { Scenario } from '../../harness/scenario/types';
import type { RegressionScenario } from '../../harness/tools/regressions';
import { native } from '../support/native';

// The runs happen outside Jest's sandbox (test/support/native.ts).
const { runScenario } = native<typeof import('../../harness/runner')>('harness/runner');
const { applyVariant, variantNames } = native<typeof import('../../harness/scenario/overrides')>('harness/scenario/overrides');
const { loadRegression, regressionFiles } = native<typeof import('../../harness/tools/regressions')>('harness/tools/regressions');

const WAKE_ALL = 0xffffffff;
const ms = 1_000_000;

/** A finished run and every record it emitted. */
interface Run {
  readonly report: RunReport;
  readonly records: readonly TraceRecord[];
}

function run(s: Scenario): Run {
  const records: TraceRecord[] = [];
  const report = runScenario(s, { onRecord: (r) => records.push(r) });
  return { report, records };
}

const recs = (r: Run, event: string, fields: Record<string, unknown> = {}, cpu?: number): TraceRecord[] =>
  r.records.filter((x) => x.event === event && (cpu === undefined || x.cpu === cpu) && Object.entries(fields).every(([k, v]) => x[k] === v));
const has = (r: Run, event: string, fields: Record<string, unknown> = {}, cpu?: number): boolean => recs(r, event, fields, cpu).length > 0;
const fired = (r: Run, checker: string): boolean => r.report.violations.some((v) => v.checker === checker);
const panicked = (r: Run, text: string): boolean => r.report.panic?.includes(text) === true;

/**
 * The symptom of each bug, stated independently of the scenario file's own expectations: true for
 * the buggy run, false for the fixed one.
 */
const SYMPTOMS: Readonly<Record<string, { readonly what: string; readonly shows: (r: Run) => boolean }>> = {
  'double-fault-two-page-faults': {
    what: 'two #PFs become a #DF and the guest panics "double fault"',
    shows: (r) => has(r, 'kvm_multiple_exception', { prev: 14, vector: 14, result: 'double_fault' }) && panicked(r, 'double fault'),
  },
  'df-cancellation-drops-events': {
    what: 'the #DF cancellation drops page-ready B with not-present A (different tokens) and task b hangs',
    shows: (r) => recs(r, 'kvm_async_pf_df_cancel').some((x) => x.token !== x.pending_token) && has(r, 'hung_task', { task: 'b' }) && fired(r, 'apf-answered'),
  },
  'page-ready-without-not-present': {
    what: 'page-ready for tokens the guest never saw: three dummy nodes, none consumed',
    shows: (r) => recs(r, 'kvm_async_pf_task_wake', { found: false, dummy: true }).length === 3 && !has(r, 'kvm_async_pf_dummy_consumed') && fired(r, 'apf-answered'),
  },
  'lapic-disabled-page-ready': {
    what: 'page-ready dropped by the disabled LAPIC, both tasks hung, and the idle vCPU busy-loops through HLT (event budget hit early)',
    shows: (r) =>
      has(r, 'kvm_apic_irq_dropped', { vec: 0xf3 }) &&
      recs(r, 'hung_task').length === 2 &&
      r.report.outcome === 'budget' &&
      /event budget|events/.test(r.report.endDetail ?? '') &&
      r.report.endT < 40 * ms,
  },
  'token-zero-wraparound': {
    what: 'after the wrap-around a fault gets token 0 and its sleeper is never woken',
    shows: (r) => has(r, 'kvm_async_pf_not_present', { token: 0 }) && fired(r, 'token-unique') && has(r, 'hung_task', { task: 'y' }),
  },
  'userspace-zero-pv-msr': {
    what: 'userspace cannot read, or write 0 to, the advertised MSR_KVM_ASYNC_PF_INT the guest CPUID hides',
    shows: (r) => has(r, 'kvm_get_msr_host', { ecx: 0x4b564d06, ok: false }) && has(r, 'kvm_set_msr_host', { ecx: 0x4b564d06, data: 0n, ok: false }),
  },
  'crash-other-cpus-keep-apf': {
    what: "after a crash on CPU 1, CPU 0's page-in completes into its still-registered area in the old kernel's memory",
    shows: (r) => has(r, 'kvm_write_guest', { field: 'token', value: 0x1000 }, 0) && has(r, 'kdump_area_changed', { area_cpu: 0 }),
  },
  'page-ready-never-acked': {
    what: 'no ACK reaches the host, and the page-ready for token 0x1000 waits for an unrelated exit (more than 2 ms)',
    shows: (r) =>
      !has(r, 'kvm_async_pf_ack') && fired(r, 'guest-rules') && recs(r, 'kvm_async_pf_ready', { token: 0x1000 }).some((x) => x.t > 2 * ms),
  },
  'page-ready-token-never-zeroed': {
    what: 'the slot stays busy: the completed page-in of token 0x1000 is never posted and task a never wakes',
    shows: (r) => has(r, 'kvm_async_pf_completed') && !has(r, 'kvm_async_pf_ready', { token: 0x1000 }) && !has(r, 'kvm_async_pf_task_woken', { task: 'a' }),
  },
  'smi-clears-apf-queue': {
    what: 'SMM entry clears the queue (reason cr0_pg) and the sleeper hangs',
    shows: (r) => has(r, 'kvm_async_pf_clear_queue', { reason: 'cr0_pg', dropped: 1 }) && has(r, 'hung_task', { task: 'reader' }),
  },
  'paging-off-async-pf': {
    what: 'an async #PF injected with CR0.PG clear, into no IDT: triple fault',
    shows: (r) => has(r, 'kvm_async_pf_not_present', { injected: true }) && has(r, 'kvm_shutdown', { why: 'triple_fault' }) && r.report.outcome === 'triple_fault',
  },
  'int-after-en-vector-zero': {
    what: 'the enable\'s wake-all is sent on vector 0 and the guest never sees a page-ready',
    shows: (r) => has(r, 'kvm_apic_accept_irq', { vec: 0 }) && !has(r, 'sysvec_kvm_asyncpf_interrupt') && fired(r, 'hung-task'),
  },
  'page-ready-handler-no-eoi': {
    what: '0xf3 stays in service: the timer is accepted but never injected and the page-ready is never handled',
    shows: (r) =>
      has(r, 'kvm_apic_accept_irq', { vec: 0xec }) &&
      !has(r, 'kvm_inj_virq', { irq: 0xec }) &&
      recs(r, 'sysvec_kvm_asyncpf_interrupt').every((x) => x.token === WAKE_ALL) &&
      fired(r, 'interrupts'),
  },
  'apf-disable-outstanding-reenable': {
    what: 'the dropped token\'s sleeper is reported hung',
    shows: (r) => has(r, 'kvm_async_pf_clear_queue', { reason: 'disable' }) && has(r, 'hung_task', { task: 'a' }) && !has(r, 'kvm_async_pf_task_woken'),
  },
  'crash-leaves-apf-enabled': {
    what: 'the host writes the token into the kdump kernel\'s memory (stale_apf_write, host-writes)',
    shows: (r) => has(r, 'bug', { kind: 'stale_apf_write' }) && fired(r, 'host-writes'),
  },
  'preempt-rt-dummy-alloc-under-raw-lock': {
    what: 'a sleeping allocation under the raw bucket lock on PREEMPT_RT',
    shows: (r) => has(r, 'bug', { kind: 'sleeping_alloc_in_atomic' }) && fired(r, 'sleep-context'),
  },
  'nested-delivery-pf-vmexit': {
    what: 'the L2 fault freezes the vCPU in an artificial halt instead of a #PF VM-exit to L1',
    shows: (r) => has(r, 'kvm_async_pf_halt', { why: 'undeliverable' }) && !has(r, 'kvm_nested_apf_vmexit'),
  },
  'nmi-clobbers-cr2-before-read': {
    what: 'the task waits on the NMI\'s fault address 0x70000000 instead of its token',
    shows: (r) => has(r, 'kvm_async_pf_task_wait_schedule', { token: 0x70000000 }) && has(r, 'hung_task', { task: 'a' }),
  },
  'nmi-before-async-pf-flags-read': {
    what: 'the NMI\'s #PF steals the not-present flag and halt-waits on 0x70000000 inside the NMI',
    shows: (r) => has(r, 'kvm_async_pf_task_wait_halt', { token: 0x70000000 }) && r.report.panic === undefined,
  },
  'en-write-unmapped-gpa': {
    what: 'the failed EN write leaves completions that are never dequeued: halts, no page-ready, event budget hit',
    shows: (r) =>
      has(r, 'kvm_async_pf_enable_failed') &&
      !r.records.some((x) => x.event === 'kvm_async_pf_ready' && x.token !== WAKE_ALL) &&
      r.report.outcome === 'budget',
  },
  'apf-without-in-kernel-lapic': {
    what: 'the host dereferences the missing LAPIC (host oops)',
    shows: (r) => has(r, 'kvm_host_oops') && has(r, 'kvm_async_pf_enable'),
  },
  'protected-state-cpl0': {
    what: 'the kernel-mode miss is injected and the guest panics "in kernel mode"',
    shows: (r) => panicked(r, 'Host injected async #PF in kernel mode'),
  },
};

const files = regressionFiles();
const regressions: RegressionScenario[] = files.map(loadRegression);

/** Runs are cached: each configuration runs once per test file. */
const cache = new Map<string, Run>();
function cached(key: string, s: () => Scenario): Run {
  let r = cache.get(key);
  if (r === undefined) {
    r = run(s());
    cache.set(key, r);
  }
  return r;
}

const failures = (r: RunReport): string[] => r.expectations.filter((e) => !e.ok).map((e) => `${e.what} — ${e.detail}`);

describe('scenarios/regressions', () => {
  it('covers every regression with a symptom, and every symptom with a file', () => {
    const names = regressions.map((r) => r.scenario.name).sort();
    expect(names).toEqual(Object.keys(SYMPTOMS).sort());
    for (const r of regressions) expect(path.basename(r.file, '.json')).toBe(r.scenario.name);
  });

  it('every header says what the bug was, what fixed it, what the runs show, and gives the buggy run\'s verdict', () => {
    for (const r of regressions) {
      expect([r.file, r.header.bug.length > 40, r.header.fixedBy.length > 10, r.header.shows.length > 40, r.header.spec !== undefined]).toEqual([r.file, true, true, true, true]);
      for (const name of ['fixed', ...variantNames(r.scenario)]) {
        const s = name === 'fixed' ? r.scenario : applyVariant(r.scenario, name);
        expect([r.file, name, typeof s.verdict.pass]).toEqual([r.file, name, 'string']);
      }
    }
  });
});

describe.each(regressions.map((r) => [r.scenario.name, r] as const))('%s', (name, r) => {
  const fixed = (): Run => cached(`${name}:fixed`, () => r.scenario);
  const variant = (v: string): Run => cached(`${name}:${v}`, () => applyVariant(r.scenario, v));
  const buggy = (): Run => variant('buggy');
  const symptom = SYMPTOMS[name];

  it('the fixed run meets its expectations', () => {
    expect(failures(fixed().report)).toEqual([]);
    expect(fixed().report.ok).toBe(true);
  });

  it.each(variantNames(r.scenario))('variant %s meets its expectations', (v) => {
    expect(failures(variant(v).report)).toEqual([]);
    expect(variant(v).report.ok).toBe(true);
  });

  it(`symptom: ${symptom?.what ?? '(none declared)'} — in the buggy run, not in the fixed run`, () => {
    expect(symptom).toBeDefined();
    expect(symptom?.shows(buggy())).toBe(true);
    expect(symptom?.shows(fixed())).toBe(false);
  });

  it('each run fails the other\'s expectations (the expectations tell the two apart)', () => {
    const b = r.header.variants.buggy!;
    const fixedUnderBuggy = run({ ...r.scenario, expect: b.expect }).report;
    const buggyUnderFixed = run({ ...applyVariant(r.scenario, 'buggy'), expect: r.scenario.expect, verdict: r.scenario.verdict }).report;
    expect(fixedUnderBuggy.ok).toBe(false);
    expect(buggyUnderFixed.ok).toBe(false);
    // Expectations only observe: the reruns are the same runs (same trace hash).
    expect(fixedUnderBuggy.traceHash).toBe(fixed().report.traceHash);
    expect(buggyUnderFixed.traceHash).toBe(buggy().report.traceHash);
    // Whatever the buggy run must show by checker or panic is absent from the fixed run.
    for (const c of b.expect.fire) expect([c, fixed().report.violations.some((v) => v.checker === c)]).toEqual([c, false]);
    if (b.expect.panic !== undefined) expect(fixed().report.panic?.includes(b.expect.panic) === true).toBe(false);
  });
});
