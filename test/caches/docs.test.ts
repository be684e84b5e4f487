/**
 * docs/caches.md shows a trace excerpt of each scenario of scenarios/caches/, for the host as
 * shipped and for the cache that is never invalidated; they must be what the runs produce now
 * (regenerate: npx ts-node --transpile-only test/caches/excerpts.ts).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CACHE_SCENARIOS, cacheExcerpt } from './excerpts';

const DOC = fs.readFileSync(path.join(__dirname, '..', '..', 'docs', 'caches.md'), 'utf8');

describe('docs/caches.md', () => {
  test.each(CACHE_SCENARIOS.flatMap((name) => [[name, false] as const, [name, true] as const]))('has the excerpt of %s (stale: %s) from a real run', (name, stale) => {
    const excerpt = cacheExcerpt(name, stale);
    expect(excerpt.split('\n').length).toBeGreaterThan(10);
    expect(DOC).toContain('```text\n' + excerpt + '\n```');
  });

  test('documents every toggle, action and record of the issue', () => {
    for (const word of ['gfn_cache_refresh', 'gfn_cache_unpinned', 'memslot_delete', 'memslot_readd', 'memslot_move', 'memslot_resize', 'hot_unplug', 'page_migrate', 'kvm_gfn_cache_init', 'kvm_gfn_cache_refresh', 'kvm_gfn_cache_invalidate', 'host_page_migrate', 'kvm_set_memory_region', 'host_ram_alloc', 'host_ram_free', 'stale-translation']) {
      expect(DOC).toContain(word);
    }
  });
});
