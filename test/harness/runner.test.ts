import { runScenario } from '../../harness/runner';
import { scenarioFromValue } from '../../harness/scenario/load';
import { fakeMachine } from './fake-machine';

const scenario = (extra: Record<string, unknown> = {}, task = 'reader') =>
  scenarioFromValue({ tasks: [{ name: task, program: [{ op: 'touch', page: '0x7f0000001000' }] }], ...extra }, undefined, 'test');

describe('runScenario with a scripted machine', () => {
  it('completes, keeps the checkers quiet and meets the default expectations', () => {
    const r = runScenario(scenario(), { machine: fakeMachine, keepRecords: 1000 });
    expect(r.outcome).toBe('completed');
    expect(r.violations).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.summary.asyncPfInjected).toBe(1);
    expect(r.summary.pageReadyDelivered).toBe(1);
    expect(r.summary.waits).toEqual([expect.objectContaining({ task: 'reader', waits: 1 })]);
    expect(r.records.length).toBeGreaterThan(10);
  });

  it('gives the same trace hash for the same seed and a different one for another seed', () => {
    const a = runScenario(scenario({ seed: 7 }), { machine: fakeMachine });
    const b = runScenario(scenario({ seed: 7 }), { machine: fakeMachine });
    const c = runScenario(scenario({ seed: 8 }), { machine: fakeMachine });
    expect(a.traceHash).toMatch(/^[0-9a-f]{16}$/);
    expect(b.traceHash).toBe(a.traceHash);
    expect(c.traceHash).not.toBe(a.traceHash);
  });

  it('checks counts, ordered sequences with captures, and absent records', () => {
    const ok = runScenario(
      scenario({
        expect: {
          counts: { kvm_async_pf_not_present: 1, apf_ack: { min: 1 }, kvm_async_pf_ready: { max: 1, fields: { notified: true } } },
          sequence: [
            { event: 'kvm_async_pf_not_present', fields: { token: '$t', injected: true } },
            { event: 'kvm_async_pf_task_wait_schedule', fields: { token: '$t' } },
            { event: 'kvm_async_pf_ready', fields: { token: '$t' } },
            { event: 'apf_ack' },
          ],
          absent: [{ event: 'kvm_async_pf_halt' }],
        },
      }),
      { machine: fakeMachine },
    );
    expect(ok.expectations.filter((e) => !e.ok)).toEqual([]);
    const bad = runScenario(
      scenario({ expect: { counts: { kvm_async_pf_halt: { min: 1 } }, sequence: [{ event: 'apf_ack' }, { event: 'kvm_async_pf_not_present' }], absent: [{ event: 'apf_ack' }] } }),
      { machine: fakeMachine },
    );
    expect(bad.ok).toBe(false);
    expect(bad.expectations.filter((e) => !e.ok).map((e) => e.what)).toEqual([
      'count kvm_async_pf_halt >= 1',
      'sequence of 2 events',
      'no apf_ack',
    ]);
  });

  it('injects events at times and on trace matches', () => {
    const r = runScenario(
      scenario({
        events: [
          { at: '10us', do: 'nmi', cpu: 0 },
          { on: { event: 'kvm_async_pf_not_present' }, after: '5us', do: 'nmi', cpu: 0 },
        ],
        expect: { counts: { kvm_nmi: 2, inject: 2 }, sequence: [{ event: 'kvm_async_pf_not_present' }, { event: 'kvm_nmi' }, { event: 'kvm_nmi' }] },
      }),
      { machine: fakeMachine, keepRecords: 1000 },
    );
    expect(r.expectations.filter((e) => !e.ok)).toEqual([]);
    const nmis = r.records.filter((x) => x.event === 'kvm_nmi').map((x) => x.t);
    expect(nmis).toEqual([6_000, 10_000]);
  });

  it('reports a panic as the outcome and can expect it', () => {
    const r = runScenario(scenario({ expect: { panic: 'kernel mode' } }, 'panic'), { machine: fakeMachine });
    expect(r.outcome).toBe('panic');
    expect(r.panic).toBe('Host injected async #PF in kernel mode');
    expect(r.ok).toBe(true);
  });

  it('turns a budget overrun into the "budget" outcome', () => {
    const r = runScenario(scenario({ budget: { maxTime: '20ms' } }, 'hang'), { machine: fakeMachine });
    expect(r.outcome).toBe('budget');
    expect(r.endDetail).toMatch(/virtual-time budget/);
    expect(r.ok).toBe(false);
  });

  it('stops on a stop event', () => {
    const r = runScenario(scenario({ events: [{ at: '5ms', do: 'stop', reason: 'enough' }], expect: { outcome: 'stopped' } }, 'hang'), { machine: fakeMachine });
    expect(r.outcome).toBe('stopped');
    expect(r.ok).toBe(true);
  });

  it('fails when a checker fires, and passes when the scenario expects it to fire', () => {
    const r = runScenario(scenario({}, 'lose'), { machine: fakeMachine });
    expect(r.outcome).toBe('completed');
    expect(r.violations.map((v) => v.checker)).toEqual(['apf-answered']);
    expect(r.ok).toBe(false);
    const expected = runScenario(scenario({ expect: { checkers: { fire: ['apf-answered'] } } }, 'lose'), { machine: fakeMachine });
    expect(expected.ok).toBe(true);
  });

  it('reports a machine that cannot be built as an error outcome, not an exception', () => {
    const r = runScenario(scenario(), {
      machine: () => {
        throw new Error('no such host');
      },
    });
    expect(r.outcome).toBe('error');
    expect(r.error?.message).toBe('no such host');
  });
});
