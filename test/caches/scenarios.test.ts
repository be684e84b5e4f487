/**
 * scenarios/caches/: each scenario runs in-process with the harness's runner. With the host as
 * shipped (refresh-on-use) its expectations hold and stale-translation stays quiet; with a cache
 * that is never invalidated (gfn_cache_refresh off) stale-translation catches the stale write,
 * and the scenario's other consequences show; with the pinned variant the migration is refused.
 */
import * as path from 'node:path';
import type { RunReport } from '../../harness/runner';
import type { Scenario } from '../../harness/scenario/types';
import type { TraceRecord } from '../../sim/trace';
import { native } from '../support/native';

// The runs happen outside Jest's sandbox (test/support/native.ts).
const { scenarioFiles } = native<typeof import('../../harness/cli/commands/list')>('harness/cli/commands/list');
const { runScenario } = native<typeof import('../../harness/runner')>('harness/runner');
const { loadScenarioFile } = native<typeof import('../../harness/scenario/load')>('harness/scenario/load');
const { applyOverrides, parseToggle } = native<typeof import('../../harness/scenario/overrides')>('harness/scenario/overrides');

const DIR = path.join(__dirname, '..', '..', 'scenarios', 'caches');
const load = (name: string): Scenario => loadScenarioFile(path.join(DIR, `${name}.json`), `scenarios/caches/${name}.json`);

function run(s: Scenario, ...toggles: string[]): RunReport & { recs: TraceRecord[] } {
  const recs: TraceRecord[] = [];
  const scenario = toggles.length === 0 ? s : applyOverrides(s, { toggles: toggles.map(parseToggle) });
  const report = runScenario(scenario, { onRecord: (r) => void recs.push(r) });
  return { ...report, recs };
}

const fired = (r: RunReport): string[] => [...new Set(r.violations.map((v) => v.checker))].sort();
const failedExpectations = (r: RunReport): string[] => r.expectations.filter((e) => !e.ok).map((e) => `${e.what}: ${e.detail}`);

const NAMES = ['memslot-move-tokens-outstanding', 'apf-page-migrated', 'memslot-delete-readd', 'area-ram-unplugged'];

test('scenarios/caches/ holds the four cache scenarios', () => {
  expect(scenarioFiles(DIR).map((f) => path.basename(f, '.json')).sort()).toEqual([...NAMES].sort());
});

describe.each(NAMES)('%s', (name) => {
  test('refresh-on-use (every profile): expectations met, no stale write', () => {
    const r = run(load(name));
    expect(failedExpectations(r)).toEqual([]);
    expect(r.ok).toBe(true);
    expect(fired(r)).toEqual([]);
    // The host said which translation each successful write went through.
    const writes = r.recs.filter((x) => x.event === 'kvm_write_guest' && x.ok === true);
    expect(writes.length).toBeGreaterThan(0);
    for (const w of writes) expect(typeof w.hfn).toBe('number');
  });

  test('a cache never invalidated: stale-translation catches the stale write', () => {
    const r = run(load(name), 'gfn_cache_refresh=off');
    expect(r.ok).toBe(false);
    expect(fired(r)).toContain('stale-translation');
  });

  test('deterministic: the same seed gives the same trace', () => {
    expect(run(load(name)).traceHash).toBe(run(load(name)).traceHash);
  });
});

describe('what the stale cache does in each scenario', () => {
  test('memslot moved: the right frame, through a memslot that no longer exists; the guest does not notice', () => {
    const r = run(load('memslot-move-tokens-outstanding'), 'gfn_cache_refresh=off');
    expect(fired(r)).toEqual(['stale-translation']);
    expect(r.outcome).toBe('completed');
    const v = r.violations.filter((x) => x.checker === 'stale-translation');
    expect(v).toHaveLength(2);
    expect(v[0]!.message).toMatch(/memslot 1 was moved at generation 2 .*no longer exists/);
  });

  test('APF page migrated: the token lands in the freed frame, reused for writer\'s page: lost page-ready and corrupted data', () => {
    const r = run(load('apf-page-migrated'), 'gfn_cache_refresh=off');
    expect(fired(r)).toEqual(['hung-task', 'page-integrity', 'stale-translation']);
    expect(r.outcome).toBe('budget');
    expect(r.violations.find((x) => x.checker === 'stale-translation')!.message).toMatch(/through host frame 0x10 .* backed by host frame 0x1000 \(migrated from host frame 0x10/);
    expect(r.violations.find((x) => x.checker === 'page-integrity')!.message).toMatch(/writer read 0x1000 at gva 0x7f0000002004, but it wrote 0x0/);
  });

  test('memslot deleted and re-added over new memory: the token goes into a freed frame, the page-ready is lost', () => {
    const r = run(load('memslot-delete-readd'), 'gfn_cache_refresh=off');
    expect(fired(r)).toEqual(['hung-task', 'stale-translation']);
    expect(r.violations.find((x) => x.checker === 'stale-translation')!.message).toMatch(/freed when the VMM unmapped its memory/);
  });

  test('area unplugged: a not-present the guest cannot read; the guest kills the task', () => {
    const r = run(load('area-ram-unplugged'), 'gfn_cache_refresh=off');
    expect(fired(r)).toEqual(['apf-answered', 'stale-translation']);
    expect(r.violations.find((x) => x.checker === 'stale-translation')!.message).toMatch(/gpa 0x10000 is no longer guest RAM/);
    expect(r.recs.some((x) => x.event === 'signal' && x.task === 'reader' && x.sig === 'SIGSEGV')).toBe(true);
  });
});

describe('the pinned-page variant (gfn_cache_unpinned off)', () => {
  test('the APF page cannot migrate while cached: the migration is refused (traced), the token reaches the guest', () => {
    const r = run(load('apf-page-migrated'), 'gfn_cache_unpinned=off');
    expect(fired(r)).toEqual([]);
    expect(r.outcome).toBe('completed');
    const mig = r.recs.filter((x) => x.event === 'host_page_migrate');
    expect(mig.map((x) => [x.gfn, x.ok, x.why])).toEqual([
      [0x10, false, 'pinned'],
      [0x118, true, 'requested'],
    ]);
    // writer's page went to a spare frame, not to the APF page's (still in use).
    expect(mig[1]!.new_hfn).toBe(0x1000);
    expect(r.recs.find((x) => x.event === 'kvm_write_guest' && x.field === 'token' && x.value === 0x1000)).toMatchObject({ hfn: 0x10, ok: true });
  });

  test.each(['memslot-move-tokens-outstanding', 'memslot-delete-readd', 'area-ram-unplugged'])('%s: pinning does not change the outcome (refresh still on)', (name) => {
    const r = run(load(name), 'gfn_cache_unpinned=off');
    expect(r.ok).toBe(true);
  });
});
