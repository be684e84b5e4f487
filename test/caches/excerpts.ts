/**
 * The trace excerpts of docs/caches.md, from real runs of scenarios/caches/: the records that
 * make the cache's life cycle visible, in the text format of `apf run --trace-format text`, for the
 * host as shipped and for the cache that is never invalidated (with the checker's verdict).
 *
 *   npx ts-node --transpile-only test/caches/excerpts.ts > /tmp/excerpts.md
 *
 * prints them as markdown; test/caches/docs.test.ts checks that docs/caches.md has them verbatim.
 */
import * as path from 'node:path';
import type { Violation } from '../../harness/checkers';
import type { TraceSink } from '../../harness/trace/sink';
import type { TraceRecord } from '../../sim/trace';
import { native } from '../support/native';

// The runs happen outside Jest's sandbox (test/support/native.ts).
const { runScenario } = native<typeof import('../../harness/runner')>('harness/runner');
const { loadScenarioFile } = native<typeof import('../../harness/scenario/load')>('harness/scenario/load');
const { applyOverrides, parseToggle } = native<typeof import('../../harness/scenario/overrides')>('harness/scenario/overrides');
const { formatTextLine } = native<typeof import('../../harness/trace/text')>('harness/trace/text');

export const CACHE_SCENARIOS = ['memslot-move-tokens-outstanding', 'apf-page-migrated', 'memslot-delete-readd', 'area-ram-unplugged'] as const;

/** Records shown: the address space, the cache, the host's writes, and what the guest made of them. */
const SHOWN: ReadonlySet<string> = new Set([
  'host_ram_alloc', 'host_ram_free', 'kvm_set_memory_region', 'host_page_migrate', 'kvm_gfn_cache_init', 'kvm_gfn_cache_refresh',
  'kvm_gfn_cache_invalidate', 'kvm_write_guest', 'kvm_async_pf_not_present', 'kvm_async_pf_ready', 'kvm_async_pf_halt',
  'kvm_async_pf_unhalt', 'kvm_async_pf_task_woken', 'sysvec_kvm_asyncpf_interrupt', 'task_access', 'signal', 'kvm_read_and_reset_apf_flags', 'kvm_mmio',
]);

/** The excerpt of one run: `stale` = with gfn_cache_refresh off; violations of stale-translation follow the write they are about. */
export function cacheExcerpt(name: string, stale: boolean): string {
  const file = path.join(__dirname, '..', '..', 'scenarios', 'caches', `${name}.json`);
  const loaded = loadScenarioFile(file, `scenarios/caches/${name}.json`);
  const scenario = stale ? applyOverrides(loaded, { toggles: [parseToggle('gfn_cache_refresh=off')] }) : loaded;
  const lines: string[] = [];
  const sink: TraceSink = {
    record: (r: TraceRecord) => {
      if (SHOWN.has(r.event) || r.event === 'inject') lines.push(formatTextLine(r));
    },
    violation: (x: Violation) => {
      if (x.checker === 'stale-translation') lines.push(formatTextLine({ t: x.t, cpu: x.cpu, src: 'check', event: 'violation', checker: x.checker, message: x.message }));
    },
    close: () => undefined,
  };
  const report = runScenario(scenario, { sinks: [sink] });
  const fired = [...new Set(report.violations.map((x) => x.checker))];
  lines.push(`# outcome ${report.outcome}; checkers that fired: ${fired.join(', ') || 'none'}`);
  return lines.join('\n');
}

/** Markdown for every scenario: both runs in `text` blocks. */
export function cacheExcerptsMarkdown(): string {
  const out: string[] = [];
  for (const name of CACHE_SCENARIOS) {
    out.push(`#### ${name}: refresh-on-use`, '', '```text', cacheExcerpt(name, false), '```', '');
    out.push(`#### ${name}: never invalidated (\`--toggle gfn_cache_refresh=off\`)`, '', '```text', cacheExcerpt(name, true), '```', '');
  }
  return out.join('\n');
}

if (require.main === module) process.stdout.write(cacheExcerptsMarkdown());
