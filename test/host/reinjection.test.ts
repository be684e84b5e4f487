/**
 * A fault taken while an event is being delivered: the CPU's frame push misses in the EPT (the
 * guest's entry stack is swapped out), the exit carries the event as IDT-vectoring information,
 * KVM queues it again as injected, and while it waits kvm_event_needs_reinjection keeps
 * kvm_can_do_async_pf false in every era: the fault is resolved synchronously, then the event is
 * delivered again, once.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { faultinPfn } from '../../host/mmu';
import { runScenario } from '../../harness/runner';
import { scenarioFromValue } from '../../harness/scenario/load';
import type { TraceRecord } from '../../sim/trace';
import { MSR_KVM_ASYNC_PF_EN } from '../../shared-abi/msr';
import { DATA_GFN, dataGpa, enableModern, enOld, makeWorld } from './world';

const REPO = path.join(__dirname, '..', '..');
const FILE = 'scenarios/fault-during-reinjection.json';
type Json = Record<string, unknown> & { machine: Record<string, unknown>; hostMemory: Record<string, unknown>; tasks: Array<Record<string, unknown>> };
const scenarioJson = (): Json => JSON.parse(fs.readFileSync(path.join(REPO, FILE), 'utf8')) as Json;

function run(j: Json): { ok: boolean; outcome: string; violations: readonly { checker: string }[]; recs: TraceRecord[] } {
  const recs: TraceRecord[] = [];
  const r = runScenario(scenarioFromValue(j, FILE), { onRecord: (rec) => void recs.push(rec) });
  return { ok: r.ok, outcome: r.outcome, violations: r.violations, recs };
}
const pick = (recs: TraceRecord[], event: string): TraceRecord[] => recs.filter((r) => r.event === event);

describe('kvm_event_needs_reinjection in kvm_can_do_async_pf', () => {
  test.each(['linux-3.0', 'linux-4.19', 'linux-5.8', 'current'] as const)('%s: a fault while an event waits to be re-injected is synchronous', (profile) => {
    const w = makeWorld({ profile, start: false, memory: { pages: [{ gfn: DATA_GFN, count: 1, backing: 'swapped' }], swapLatency: { kind: 'fixed', ns: 100_000 } } });
    if (profile === 'current' || profile === 'linux-5.8') enableModern(w);
    else expect(w.kvm.setMsr(0, MSR_KVM_ASYNC_PF_EN, enOld())).toBe(true);
    w.v.reinject = { kind: 'interrupt', vector: 0x20 };
    expect(faultinPfn(w.v, dataGpa(0), DATA_GFN, 0, false)).toBe('reinjection');
    expect(w.ev('kvm_try_async_get_page')).toEqual([]);
    w.v.reinject = null;
    w.kvm.hostMem.evict([DATA_GFN + 1]);
    expect(faultinPfn(w.v, dataGpa(1), DATA_GFN + 1, 0, false)).toBe('async');
  });
});

describe(FILE, () => {
  it('the page-ready interrupt that faulted is requeued, the stack page comes in synchronously, and the interrupt is delivered once', () => {
    const r = run(scenarioJson());
    expect(r.ok).toBe(true);
    expect(r.violations).toEqual([]);
    expect(pick(r.recs, 'kvm_requeue_event').map((x) => [x['kind'], x['vector']])).toEqual([['interrupt', 0xf3]]);
    expect(pick(r.recs, 'kvm_async_pf_sync').map((x) => [x['gfn'], x['why']])).toEqual([[8, 'reinjection']]);
    // Injected once by the LAPIC path, delivered once by the CPU (the failed attempt delivers nothing).
    expect(pick(r.recs, 'kvm_inj_virq').filter((x) => x['irq'] === 0xf3)).toHaveLength(2); // the boot wake-all and this one
    expect(pick(r.recs, 'interrupt').filter((x) => x['vector'] === 0xf3)).toHaveLength(2);
  });

  it('without an entry stack in guest memory the same eviction changes nothing about the delivery', () => {
    const j = scenarioJson();
    const guest = { ...(j.machine['guest'] as Record<string, unknown>) };
    delete guest['entryStack'];
    const r = run({ ...j, machine: { ...j.machine, guest }, expect: { outcome: 'completed' } });
    expect(r.outcome).toBe('completed');
    expect(pick(r.recs, 'kvm_requeue_event')).toEqual([]);
    expect(pick(r.recs, 'kvm_async_pf_sync')).toEqual([]);
  });

  it('an async #PF whose own delivery faults is requeued as an exception and re-injected with its token', () => {
    const j = scenarioJson();
    // The host swaps the entry stack out just as it decides to inject "not present".
    const events = [{ on: { event: 'kvm_async_pf_not_present' }, do: 'evict', pages: [{ gfn: 8 }] }];
    const r = run({ ...j, hostMemory: { ...j.hostMemory, evictions: [] }, events, expect: { outcome: 'completed' } });
    expect(r.outcome).toBe('completed');
    expect(r.violations).toEqual([]);
    const np = pick(r.recs, 'kvm_async_pf_not_present');
    expect(np).toHaveLength(1);
    const token = np[0]!['token'];
    const order = r.recs
      .filter((x) => ['kvm_inj_exception', 'kvm_requeue_event', 'kvm_async_pf_sync', 'kvm_reinject_event', 'kvm_async_pf_task_wait_schedule'].includes(x.event))
      .map((x) => x.event);
    expect(order).toEqual(['kvm_inj_exception', 'kvm_requeue_event', 'kvm_async_pf_sync', 'kvm_reinject_event', 'kvm_async_pf_task_wait_schedule']);
    expect(pick(r.recs, 'kvm_requeue_event')[0]).toMatchObject({ kind: 'exception', vector: 14 });
    expect(pick(r.recs, 'kvm_async_pf_task_wait_schedule')[0]).toMatchObject({ token, task: 'reader' });
  });

  it('a v4.19 host (page ready as a #PF) requeues the page-ready #PF and faults the stack in synchronously too', () => {
    const j = scenarioJson();
    const r = run({ ...j, machine: { ...j.machine, guest: { ...(j.machine['guest'] as object), profile: 'linux-5.2' }, host: { profile: 'linux-4.19' } }, expect: { outcome: 'completed' } });
    expect(r.outcome).toBe('completed');
    expect(r.violations).toEqual([]);
    expect(pick(r.recs, 'kvm_requeue_event').map((x) => [x['kind'], x['vector']])).toEqual([['exception', 14]]);
    expect(pick(r.recs, 'kvm_async_pf_sync').map((x) => x['why'])).toEqual(['reinjection']);
  });
});
