/**
 * The canaries (harness/fuzz/canaries.ts): deliberately broken guests the fuzzer must catch.
 * For each, a fixed-seed campaign finds a failure within a fixed budget of runs, the shrunk
 * scenario is smaller and still fails with the canary, and the correct guest passes it.
 */
import { native } from '../support/native';
import { spec } from './support';

// The campaigns run on worker threads; the re-judging of the shrunk cases here, outside Jest's sandbox.
const { runCampaign } = native<typeof import('../../harness/fuzz/campaign')>('harness/fuzz/campaign');
const { CANARIES } = native<typeof import('../../harness/fuzz/canaries')>('harness/fuzz/canaries');
const { runCase } = native<typeof import('../../harness/fuzz/case')>('harness/fuzz/case');

const BUDGET = 1500;
const SEED = 1;

describe.each(CANARIES.map((c) => [c.name, c] as const))('canary %s', (name, canary) => {
  it(
    `is caught within ${BUDGET} runs of seed ${SEED}, and its shrunk scenario still fails`,
    () => {
      const s = spec('trusted', { canary: name });
      // In this thread: a campaign's result does not depend on its workers (campaign.test.ts), and
      // failFast then stops at the failing run instead of after the chunks already handed out.
      const r = runCampaign({ runs: BUDGET, seed: SEED, jobs: 0, spec: s, failFast: true, shrinkBudget: 150, maxShrink: 1 });
      expect(r.failed).toBe(1);
      const shrunk = r.shrunk[0];
      expect(shrunk).toBeDefined();
      if (shrunk === undefined) return;
      expect(shrunk.index).toBeLessThan(BUDGET);
      expect(shrunk.shrunk.size).toBeLessThan(shrunk.original.size);
      // Judged again here, independently of the worker that shrank it.
      const again = runCase(shrunk.shrunk.doc, s.case);
      expect(again.ok).toBe(false);
      expect(again.failures[0]?.property).toBe(shrunk.original.result.failures[0]?.property);
      expect(canary.caughtBy).toContain(again.failures[0]?.property.replace(/^checker:/, '') ?? '?');
      // The failure is the canary's: the profile's own handlers pass the same scenario.
      expect(runCase(shrunk.shrunk.doc, { mode: 'trusted' }).ok).toBe(true);
    },
    120_000,
  );
});
