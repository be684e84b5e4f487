/**
 * The fuzz properties beyond the checkers: no lost wake-up (guest), the untrusted-guest host
 * oracle (no lost completion, consistent bookkeeping), and the known-hazard signatures. Each is
 * shown to fire on the bad case and to stay quiet on the good one.
 */
import { AsyncPf } from '../../host/async_pf';
import { runScenarioCase } from '../../harness/fuzz/case';
import { hazardObserver, lostWakeupObserver, NMI_WINDOW_PANIC } from '../../harness/fuzz/properties';
import { scenarioFromValue } from '../../harness/scenario/load';
import { TraceRouter, type TraceConsumer } from '../../harness/trace/consumer';
import { recordProblems } from '../../harness/trace/vocabulary';
import type { TraceEventName, TraceFieldsOf, TraceRecord, TraceSource } from '../../sim/trace';

let t = 0;
/** A record as an emit site would produce it (typed by the trace catalogue, and checked against it). */
const rec = <E extends TraceEventName>(src: TraceSource, cpu: number, event: E, fields: TraceFieldsOf<E>): TraceRecord => {
  const r: TraceRecord = { t: (t += 10), cpu, src, event, ...fields };
  expect(recordProblems(r)).toEqual([]);
  return r;
};
/** Routes records to an observer the way a run does: only the events it declares. */
const routeTo = (o: TraceConsumer, records: readonly TraceRecord[]): void => {
  const router = new TraceRouter([o]);
  for (const r of records) router.onRecord(r);
};
const feed = (records: readonly TraceRecord[]): ReturnType<ReturnType<typeof lostWakeupObserver>['finish']> => {
  const o = lostWakeupObserver();
  routeTo(o, records);
  return o.finish();
};

describe('no-lost-wakeup', () => {
  const early = rec('guest', 1, 'kvm_async_pf_task_wake', { token: 0x1000, found: false, dummy: false });
  const sleeps = rec('guest', 0, 'kvm_async_pf_task_wait_schedule', { token: 0x1000, task: 'a' });

  it('fires when a task sleeps on a token whose wake came first and left nothing behind', () => {
    const f = feed([early, sleeps]);
    expect(f).toHaveLength(1);
    expect(f[0]).toMatchObject({ property: 'no-lost-wakeup', cpu: 0 });
    expect(f[0]?.message).toMatch(/task a sleeps on token 0x1000 .* handled on cpu1/);
  });

  it('stays quiet when the wait consumed the dummy, or the wake found the sleeper', () => {
    expect(feed([rec('guest', 1, 'kvm_async_pf_task_wake', { token: 0x1000, found: false, dummy: true }), rec('guest', 0, 'kvm_async_pf_dummy_consumed', { token: 0x1000, task: 'a' })])).toEqual([]);
    expect(feed([sleeps, rec('guest', 1, 'kvm_async_pf_task_wake', { token: 0x1000, found: true, dummy: false }), rec('guest', 0, 'kvm_async_pf_task_woken', { token: 0x1000, task: 'a', waited_ns: 30 })])).toEqual([]);
  });

  it('forgives what Linux does on purpose: a wake-all unlinks that CPU\'s dummies, a second wake unlinks the dummy', () => {
    expect(feed([early, rec('guest', 1, 'apf_task_wake_all', { woken: 0, dummies_leaked: 1 }), sleeps])).toEqual([]);
    expect(feed([early, rec('guest', 1, 'apf_task_wake_all', { woken: 0, dummies_leaked: 0 }), rec('guest', 2, 'kvm_async_pf_task_wake', { token: 0x2000, found: false, dummy: true }), rec('guest', 0, 'kvm_async_pf_task_wait_schedule', { token: 0x2000, task: 'b' })])).toHaveLength(1);
    expect(feed([early, rec('guest', 1, 'kvm_async_pf_task_wake', { token: 0x1000, found: true, dummy: false }), sleeps])).toEqual([]);
  });

  it('waits for a wake-all still walking its buckets: it excuses the sleep only if it did unlink a dummy', () => {
    expect(feed([early, sleeps, rec('guest', 1, 'apf_task_wake_all', { woken: 0, dummies_leaked: 1 })])).toEqual([]);
    expect(feed([early, sleeps, rec('guest', 1, 'apf_task_wake_all', { woken: 0, dummies_leaked: 0 })])).toHaveLength(1);
    expect(feed([early, sleeps, rec('guest', 2, 'apf_task_wake_all', { woken: 0, dummies_leaked: 1 })])).toHaveLength(1);
  });
});

describe('known hazards', () => {
  it('nmi-in-async-pf-window: the IF=0 panic of a #PF taken inside an NMI handler', () => {
    const h = hazardObserver();
    routeTo(h, [
      rec('cpu', 0, 'exception', { vector: 14, error_code: 4, cr2: 0x1000, cpl: 3, if: true }),
      rec('cpu', 0, 'nmi', { cpl: 0, if: false }),
      rec('cpu', 0, 'exception', { vector: 14, error_code: 0, cr2: 0x2000, cpl: 0, if: false }),
      rec('guest', 0, 'panic', { message: NMI_WINDOW_PANIC }),
    ]);
    expect(h.hazard()).toMatchObject({ name: 'nmi-in-async-pf-window' });
    expect([...(h.hazard()?.explains ?? [])]).toEqual(['no-panic']);
    // The same panic outside an NMI is not the hazard.
    const other = hazardObserver();
    routeTo(other, [
      rec('cpu', 0, 'nmi', { cpl: 0, if: true }),
      rec('cpu', 0, 'iret', { vector: 2, cpl: 0, if: true }),
      rec('cpu', 0, 'exception', { vector: 14, error_code: 0, cr2: 0x2000, cpl: 0, if: false }),
      rec('guest', 0, 'panic', { message: NMI_WINDOW_PANIC }),
    ]);
    expect(other.hazard()).toBeUndefined();
  });

  it('stale-token-after-disable: a page-ready swallowed while APF was off, then APF back on with the token still in the slot', () => {
    const seq = (cleared: boolean): ReturnType<ReturnType<typeof hazardObserver>['hazard']> => {
      const h = hazardObserver();
      const records = [
        rec('guest', 0, 'kvm_guest_cpu_init', { msr_en: 0x10001n, vector: 0xf3, send_always: false }),
        rec('host', 0, 'kvm_write_guest', { gpa: 0x10004, len: 4, value: 0x1000, field: 'token', ok: true }),
        rec('guest', 0, 'kvm_pv_disable_apf', {}),
        rec('cpu', 0, 'interrupt', { vector: 0xf3, cpl: 0 }),
        ...(cleared ? [rec('guest', 0, 'apf_token_clear', { token: 0x1000 })] : []),
        rec('guest', 0, 'kvm_guest_cpu_init', { msr_en: 0x10001n, vector: 0xf3, send_always: false }),
      ];
      routeTo(h, records);
      return h.hazard();
    };
    expect(seq(false)).toMatchObject({ name: 'stale-token-after-disable' });
    expect(seq(true)).toBeUndefined();
  });
});

describe('untrusted-guest host oracle', () => {
  const others = { 'apf-answered': false, 'token-unique': false, 'slot-busy': false, 'sleep-context': false, 'hung-task': false, 'page-integrity': false, interrupts: false };
  const scenario = scenarioFromValue(
    {
      machine: { vcpus: 1, memory: '2MiB' },
      hostMemory: { pages: [{ gfn: '0x100', count: 2, backing: 'swapped' }], latency: { swap: '50us' } },
      bare: {
        script: [
          { op: 'lapic', enable: true },
          { op: 'apf_enable', sendAlways: true },
          { op: 'sti' },
          { op: 'touch', addr: '0x100000' },
          { op: 'touch', addr: '0x101000', write: true, value: 7 },
          { op: 'wait', until: { kind: 'page_ready', count: 100 }, timeout: '1ms' },
        ],
        pf: { wait: 'none' },
      },
      checkers: others,
    },
    undefined,
  );

  it('passes a correct host', () => {
    const r = runScenarioCase(scenario, { mode: 'untrusted' });
    expect(r).toMatchObject({ ok: true, outcome: 'completed' });
  });

  it('catches a host that drops a completed work item without telling anyone', () => {
    const original = AsyncPf.prototype.checkCompletion;
    let dropped = false;
    AsyncPf.prototype.checkCompletion = function (this: AsyncPf): number {
      const i = this.done.findIndex((w) => !w.wakeupAll);
      if (!dropped && i >= 0) {
        dropped = true;
        const [w] = this.done.splice(i, 1);
        if (w !== undefined) this.queue.splice(this.queue.indexOf(w), 1);
      }
      return original.call(this);
    };
    try {
      const r = runScenarioCase(scenario, { mode: 'untrusted' });
      expect(dropped).toBe(true);
      expect(r.ok).toBe(false);
      expect(r.failures.map((f) => f.property)).toContain('no-lost-completion');
      expect(r.failures.map((f) => f.property)).toContain('host-invariants');
    } finally {
      AsyncPf.prototype.checkCompletion = original;
    }
  });

  it('catches a host that throws', () => {
    const original = AsyncPf.prototype.checkCompletion;
    AsyncPf.prototype.checkCompletion = function (): number {
      throw new TypeError('boom in the dequeue loop');
    };
    try {
      const r = runScenarioCase(scenario, { mode: 'untrusted' });
      expect(r.outcome).toBe('error');
      expect(r.failures[0]).toMatchObject({ property: 'no-error', message: expect.stringContaining('boom in the dequeue loop') });
    } finally {
      AsyncPf.prototype.checkCompletion = original;
    }
  });
});
