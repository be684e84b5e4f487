/**
 * Private (guest_memfd) memory: a fault on a frame with the PRIVATE attribute takes
 * kvm_faultin_pfn_private and never reaches the async decision, on any vCPU state; hosts before
 * v6.8 have no private memory at all.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { faultinPfn } from '../../host/mmu';
import { runScenario } from '../../harness/runner';
import { scenarioFromValue } from '../../harness/scenario/load';
import type { TraceRecord } from '../../sim/trace';
import { DATA_GFN, dataGpa, enableModern, makeWorld } from './world';

const REPO = path.join(__dirname, '..', '..');
const FILE = 'scenarios/private-memory-sync.json';
type Json = Record<string, unknown> & { machine: Record<string, unknown>; hostMemory: { pages: Array<Record<string, unknown>> } };
const scenarioJson = (): Json => JSON.parse(fs.readFileSync(path.join(REPO, FILE), 'utf8')) as Json;

const memory = {
  pages: [
    { gfn: DATA_GFN, count: 1, backing: 'swapped' as const, private: true },
    { gfn: DATA_GFN + 1, count: 1, backing: 'swapped' as const },
  ],
  swapLatency: { kind: 'fixed' as const, ns: 100_000 },
};

describe('the fault path', () => {
  test('a private frame is faulted in synchronously with no async attempt; a shared one next to it goes async', () => {
    const w = makeWorld({ start: false, memory });
    enableModern(w);
    expect(w.kvm.hostMem.isPrivate(DATA_GFN)).toBe(true);
    expect(w.kvm.hostMem.isPrivate(DATA_GFN + 1)).toBe(false);
    expect(faultinPfn(w.v, dataGpa(0), DATA_GFN, 0, false)).toBe('private');
    expect(w.ev('kvm_try_async_get_page')).toEqual([]);
    expect(faultinPfn(w.v, dataGpa(1), DATA_GFN + 1, 0, false)).toBe('async');
    expect(w.ev('kvm_try_async_get_page').map((r) => r['gfn'])).toEqual([DATA_GFN + 1]);
    w.sim.run();
    expect(w.ev('kvm_async_pf_sync').map((r) => [r['gfn'], r['why'], r['ok']])).toEqual([[DATA_GFN, 'private', true]]);
  });

  test.each(['linux-6.6', 'linux-5.13', 'linux-3.0'] as const)('%s has no guest_memfd: a private page is refused at VM creation', (profile) => {
    expect(() => makeWorld({ profile, start: false, memory })).toThrow(/has no private memory: guest_memfd .* v6\.8/);
  });
});

describe(FILE, () => {
  const run = (j: Json): { ok: boolean; outcome: string; endDetail: string | undefined; recs: TraceRecord[] } => {
    const recs: TraceRecord[] = [];
    const r = runScenario(scenarioFromValue(j, FILE), { onRecord: (rec) => void recs.push(rec) });
    return { ok: r.ok, outcome: r.outcome, endDetail: r.endDetail, recs };
  };

  it('passes: one synchronous private fault, one async shared fault', () => {
    const r = run(scenarioJson());
    expect(r.ok).toBe(true);
    expect(r.recs.filter((x) => x.event === 'kvm_async_pf_not_present')).toHaveLength(1);
  });

  it('the same pages without the private attribute both go async', () => {
    const j = scenarioJson();
    const pages = j.hostMemory.pages.map((p) => ({ ...p, private: false }));
    const r = run({ ...j, hostMemory: { ...j.hostMemory, pages }, expect: { outcome: 'completed' } });
    expect(r.outcome).toBe('completed');
    expect(r.recs.filter((x) => x.event === 'kvm_async_pf_not_present')).toHaveLength(2);
    expect(r.recs.filter((x) => x.event === 'kvm_async_pf_sync')).toEqual([]);
  });

  it('on a linux-6.6 host the scenario is a bad machine, named where the file asks for private memory', () => {
    const j = scenarioJson();
    const r = run({ ...j, machine: { ...j.machine, host: { profile: 'linux-6.6' } } });
    expect(r.outcome).toBe('bad_machine');
    expect(r.endDetail).toBe('hostMemory.pages[0].private: host linux-6.6 (v6.6) has no private memory: guest_memfd and the PRIVATE memory attribute came with v6.8');
  });
});
