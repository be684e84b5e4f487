/**
 * Campaigns: the CI campaign of a few thousand runs with zero failures on the current profiles,
 * and determinism for a given seed whatever the number of workers (1, 2, or none: this thread).
 * The long campaigns run in this thread, outside Jest's vm context (test/support/native.ts): the
 * result is the same on workers (the last two tests), and a worker pool costs each worker its own
 * start-up and warm-up.
 */
import type { CampaignResult } from '../../harness/fuzz/campaign';
import { native } from '../support/native';
import { spec } from './support';
import { cases } from '../support/scale';

// The in-thread campaigns (jobs 0) run outside Jest's sandbox, as the workers do.
const { runCampaign } = native<typeof import('../../harness/fuzz/campaign')>('harness/fuzz/campaign');

/** The figures that must not depend on the number of workers. */
const figures = (r: CampaignResult): unknown => ({
  seed: r.seed,
  runs: r.runs,
  failed: r.failed,
  byProperty: r.byProperty,
  outcomes: r.outcomes,
  hazards: r.hazards,
  events: r.events,
  fingerprint: r.fingerprint,
  failures: r.failures.map((f) => f.index),
  shrunk: r.shrunk.map((s) => s.shrunk.doc),
});

const CI_RUNS = cases(1000, 3000);
const UNTRUSTED_RUNS = cases(150, 400);
/** The long campaigns run on one core of a machine that may be busy (and 3× longer with APF_THOROUGH=1). */
const LONG = 300_000;

describe('fuzz campaigns', () => {
  it(
    `CI campaign: ${CI_RUNS} small runs of seed "ci" on the current profiles, no failure (3000 with APF_THOROUGH=1)`,
    () => {
      const r = runCampaign({ runs: CI_RUNS, seed: 'ci', jobs: 0, spec: spec('trusted') });
      expect({ runs: r.runs, failed: r.failed, byProperty: r.byProperty }).toEqual({ runs: CI_RUNS, failed: 0, byProperty: {} });
    },
    LONG,
  );

  it(
    `untrusted-guest campaign: ${UNTRUSTED_RUNS} hostile-guest runs against the current host, no failure (400 with APF_THOROUGH=1)`,
    () => {
      const r = runCampaign({ runs: UNTRUSTED_RUNS, seed: 'ci', jobs: 0, spec: spec('untrusted') });
      expect({ runs: r.runs, failed: r.failed, byProperty: r.byProperty }).toEqual({ runs: UNTRUSTED_RUNS, failed: 0, byProperty: {} });
    },
    LONG,
  );

  it(
    'is the same campaign on 1 worker, 2 workers and in this thread',
    () => {
      const one = runCampaign({ runs: 120, seed: 7, jobs: 1, spec: spec('trusted', { size: 'medium' }) });
      const two = runCampaign({ runs: 120, seed: 7, jobs: 2, spec: spec('trusted', { size: 'medium' }) });
      expect(figures(two)).toEqual(figures(one));
      const here = runCampaign({ runs: 12, seed: 7, jobs: 0, spec: spec('trusted', { size: 'medium' }) });
      const there = runCampaign({ runs: 12, seed: 7, jobs: 2, spec: spec('trusted', { size: 'medium' }) });
      expect(figures(here)).toEqual(figures(there));
    },
    60_000,
  );

  it(
    'stops at the lowest failing run with failFast, for any number of workers, and shrinks it the same way',
    () => {
      const s = spec('trusted', { canary: 'no-ack' });
      const a = runCampaign({ runs: 400, seed: 1, jobs: 1, spec: s, failFast: true, shrinkBudget: 60 });
      const b = runCampaign({ runs: 400, seed: 1, jobs: 2, spec: s, failFast: true, shrinkBudget: 60 });
      expect(a.failed).toBe(1);
      expect(a.runs).toBe((a.failures[0]?.index ?? -1) + 1);
      expect(figures(b)).toEqual(figures(a));
    },
    60_000,
  );
});
