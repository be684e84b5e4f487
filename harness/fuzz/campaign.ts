/**
 * A fuzz campaign: runs 0..N-1 of seed S, spread over worker threads, merged in run order; then
 * the first failing run of each kind (its first failing property) is shrunk.
 *
 * Determinism: run i is generated from a seed that depends only on (S, i) (seeds.ts) and run on a
 * fresh deterministic simulation, so its result is a function of (S, i, options). Results stream
 * back and are tallied in run order (a bounded reorder buffer), into bounded aggregates
 * (`CampaignTally`): memory stays flat in the number of runs, and the number of workers and their
 * timing change nothing but the wall-clock figures. With `failFast` the campaign stops at the
 * first failure in run order and reports the lowest failing index: again the same for any number
 * of workers. Shrinking is deterministic too (search.ts).
 *
 * A campaign can be split into shards (`shard`: run i belongs to shard I/N when i % N === I - 1);
 * the shards' tallies merge (`mergeTallies`) into exactly the tally of the whole campaign.
 */
import { canonicalSeed } from '../../sim/prng';
import type { Shard } from '../util/shard';
import { WorkerPool, type Loader } from './pool';
import type { SearchSpec, ShrinkOutcome } from './search';
import { handle, type RunSummary, type WorkerReply, type WorkerRequest } from './worker';

export interface CampaignProgress {
  readonly phase: 'starting' | 'running' | 'shrinking' | 'done';
  readonly done: number;
  readonly total: number;
  readonly failures: number;
  readonly elapsedMs: number;
}

export interface CampaignOptions {
  readonly runs: number;
  readonly seed: number | string;
  /** Worker threads; 0 runs everything in the calling thread. */
  readonly jobs: number;
  readonly spec: SearchSpec;
  /** Property evaluations a shrink may spend (default 300). */
  readonly shrinkBudget?: number;
  /** How many distinct kinds of failure to shrink (default 3). */
  readonly maxShrink?: number;
  /** Stop at the first failure (the lowest failing run index is still exact). */
  readonly failFast?: boolean;
  readonly loader?: Loader;
  /** Run only this shard's share of runs 0..runs-1 (default: all of them). */
  readonly shard?: Shard;
  /** Called now and then (at most every 100 ms) and at the end of each phase. */
  readonly onProgress?: (p: CampaignProgress) => void;
}

export interface CampaignResult {
  readonly seed: string;
  /** Runs of the whole campaign (N), whatever the shard. */
  readonly total: number;
  /** The shard this result covers, when the campaign was sharded. */
  readonly shard?: Shard;
  /** Runs the result covers (N or the shard's share, or up to the first failure with failFast). */
  readonly runs: number;
  readonly passed: number;
  readonly failed: number;
  /** Failing runs in run order (at most 100 listed). */
  readonly failures: readonly RunSummary[];
  /** Failing runs per first failing property. */
  readonly byProperty: Readonly<Record<string, number>>;
  /** Runs per outcome. */
  readonly outcomes: Readonly<Record<string, number>>;
  /** Passing runs that ended in a known hazard (properties.ts), per hazard. */
  readonly hazards: Readonly<Record<string, number>>;
  /** The lowest-indexed runs that ended in a known hazard (at most LISTED_HAZARDS), in run order. */
  readonly hazardRuns: readonly HazardRun[];
  /** Simulation events over all runs. */
  readonly events: number;
  /** Shrunk failures, lowest run index first: the first failure of each kind. */
  readonly shrunk: readonly ShrinkOutcome[];
  /** A hash of every run's index, trace hash and verdict: equal campaigns have equal fingerprints. */
  readonly fingerprint: string;
  /** The bounded aggregates the figures above come from (what a shard hands to `apf fuzz merge`). */
  readonly tally: CampaignTally;
  readonly jobs: number;
  readonly elapsedMs: number;
  /** Runs per second of the run phase (worker start-up and shrinking excluded). */
  readonly runsPerSec: number;
}

const LISTED_FAILURES = 100;
/** Hazard runs listed (with files and replay lines) per campaign. */
export const LISTED_HAZARDS = 10;

/** A run that ended in a known hazard. */
export interface HazardRun {
  readonly index: number;
  readonly hazard: string;
}

/**
 * Everything a campaign reports, kept as bounded aggregates while runs stream in: the counts, the
 * first failing runs (at most 100), the first failing run of each kind, and the two 32-bit sums of
 * the per-run fingerprint words. Memory does not grow with the number of runs. Two tallies of
 * disjoint sets of runs combine (`mergeTallies`) into the tally of their union, whatever the order,
 * which is what lets shards of a campaign merge into the single-run result.
 */
/** What a campaign result adds to its tally: the figures themselves are the tally's. */
export interface ResultFrame {
  readonly seed: string;
  readonly total: number;
  readonly shard?: Shard;
  readonly shrunk: readonly ShrinkOutcome[];
  readonly jobs: number;
  readonly elapsedMs: number;
  readonly runsPerSec: number;
}

/** The campaign result of a tally (a single run's, or the merge of its shards'). */
export function resultFromTally(tally: CampaignTally, f: ResultFrame): CampaignResult {
  return {
    seed: f.seed,
    total: f.total,
    ...(f.shard === undefined ? {} : { shard: f.shard }),
    runs: tally.runs,
    passed: tally.passed,
    failed: tally.failed,
    failures: tally.failures,
    byProperty: tally.byProperty,
    outcomes: tally.outcomes,
    hazards: tally.hazards,
    hazardRuns: tally.hazardRuns ?? [],
    events: tally.events,
    shrunk: f.shrunk,
    fingerprint: tallyFingerprint(tally),
    tally,
    jobs: f.jobs,
    elapsedMs: f.elapsedMs,
    runsPerSec: f.runsPerSec,
  };
}

export interface CampaignTally {
  runs: number;
  passed: number;
  failed: number;
  /** The lowest-indexed failing runs, ascending (at most 100). */
  failures: RunSummary[];
  byProperty: Record<string, number>;
  outcomes: Record<string, number>;
  hazards: Record<string, number>;
  /** The lowest-indexed hazard runs, ascending (at most LISTED_HAZARDS; absent in tallies written before it existed). */
  hazardRuns: HazardRun[];
  events: number;
  /** First failing property ('?' when none) -> lowest failing run index of that kind. */
  firstByKind: Record<string, number>;
  /** Sums (mod 2^32) of the two words of every run's fingerprint. */
  fpSum: [number, number];
}

export function emptyTally(): CampaignTally {
  return { runs: 0, passed: 0, failed: 0, failures: [], byProperty: {}, outcomes: {}, hazards: {}, hazardRuns: [], events: 0, firstByKind: {}, fpSum: [0, 0] };
}

const bump = (m: Record<string, number>, k: string, by = 1): void => {
  m[k] = (m[k] ?? 0) + by;
};

/**
 * The two fingerprint words of one run: two FNV-1a-style hashes (different bases, fmix-finalized)
 * of "index:traceHash:ok". The run index is part of it, so the campaign fingerprint, a sum over
 * runs, still says which run gave which trace.
 */
function runWords(r: RunSummary): [number, number] {
  const s = `${r.index}:${r.traceHash}:${r.ok ? 1 : 0}`;
  let a = 0x811c9dc5 | 0;
  let b = 0x050c5d1f | 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x01000193) ^ (b >>> 15);
  }
  return [fmix(a), fmix(b ^ s.length)];
}

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Adds one run to a tally. */
export function addRun(t: CampaignTally, r: RunSummary): void {
  t.runs++;
  bump(t.outcomes, r.outcome);
  if (r.hazard !== undefined) {
    bump(t.hazards, r.hazard);
    insertHazard(t.hazardRuns, { index: r.index, hazard: r.hazard });
  }
  t.events += r.events;
  const [a, b] = runWords(r);
  t.fpSum[0] = (t.fpSum[0] + a) >>> 0;
  t.fpSum[1] = (t.fpSum[1] + b) >>> 0;
  if (r.ok) {
    t.passed++;
    return;
  }
  t.failed++;
  const p = r.failures[0]?.property;
  if (p !== undefined) bump(t.byProperty, p);
  const kind = p ?? '?';
  const first = t.firstByKind[kind];
  if (first === undefined || r.index < first) t.firstByKind[kind] = r.index;
  insertFailure(t.failures, r);
}

/** Keeps `list` the lowest-indexed LISTED_FAILURES failures, ascending. */
function insertFailure(list: RunSummary[], r: RunSummary): void {
  if (list.length >= LISTED_FAILURES && (list[list.length - 1]?.index ?? -1) < r.index) return;
  let i = list.length;
  while (i > 0 && (list[i - 1]?.index ?? -1) > r.index) i--;
  list.splice(i, 0, r);
  if (list.length > LISTED_FAILURES) list.length = LISTED_FAILURES;
}

/** Keeps `list` the lowest-indexed LISTED_HAZARDS hazard runs, ascending. */
function insertHazard(list: HazardRun[], h: HazardRun): void {
  if (list.length >= LISTED_HAZARDS && (list[list.length - 1]?.index ?? -1) < h.index) return;
  let i = list.length;
  while (i > 0 && (list[i - 1]?.index ?? -1) > h.index) i--;
  list.splice(i, 0, h);
  if (list.length > LISTED_HAZARDS) list.length = LISTED_HAZARDS;
}

/** The tally of the union of disjoint sets of runs. */
export function mergeTallies(parts: readonly CampaignTally[]): CampaignTally {
  const t = emptyTally();
  for (const p of parts) {
    t.runs += p.runs;
    t.passed += p.passed;
    t.failed += p.failed;
    t.events += p.events;
    for (const [k, v] of Object.entries(p.byProperty)) bump(t.byProperty, k, v);
    for (const [k, v] of Object.entries(p.outcomes)) bump(t.outcomes, k, v);
    for (const [k, v] of Object.entries(p.hazards)) bump(t.hazards, k, v);
    for (const h of (p.hazardRuns as HazardRun[] | undefined) ?? []) insertHazard(t.hazardRuns, h);
    for (const [k, v] of Object.entries(p.firstByKind)) {
      const cur = t.firstByKind[k];
      if (cur === undefined || v < cur) t.firstByKind[k] = v;
    }
    for (const f of p.failures) insertFailure(t.failures, f);
    t.fpSum[0] = (t.fpSum[0] + p.fpSum[0]) >>> 0;
    t.fpSum[1] = (t.fpSum[1] + p.fpSum[1]) >>> 0;
  }
  return t;
}

/** The campaign fingerprint: the per-run sums finalized with the run count, 16 hex digits. */
export function tallyFingerprint(t: CampaignTally): string {
  const a = fmix((t.fpSum[0] ^ Math.imul(t.runs, 0x9e3779b1)) >>> 0);
  const b = fmix((t.fpSum[1] + t.runs) >>> 0);
  return a.toString(16).padStart(8, '0') + b.toString(16).padStart(8, '0');
}

/** Which failing runs get shrunk: the first run of each kind, the `max` earliest kinds, ascending. */
export function shrinkTargets(t: CampaignTally, max: number): number[] {
  return Object.values(t.firstByKind)
    .sort((x, y) => x - y)
    .slice(0, max);
}

/** Executes requests on workers (or in this thread) and hands replies to `onReply` as they come. */
interface Executor {
  readonly parallel: number;
  /** Sends `req` if a worker is idle; false otherwise. */
  trySend(req: WorkerRequest): boolean;
  /** Waits (up to `ms`) for replies. */
  collect(ms: number): WorkerReply[];
  outstanding(): number;
  /** Starts the workers and waits until each has loaded the simulation. */
  warm(): void;
  close(): void;
}

function inProcess(): Executor {
  let pending: WorkerRequest | undefined;
  return {
    parallel: 1,
    trySend(req) {
      if (pending !== undefined) return false;
      pending = req;
      return true;
    },
    collect() {
      if (pending === undefined) return [];
      const req = pending;
      pending = undefined;
      return [handle(req)];
    },
    outstanding: () => (pending === undefined ? 0 : 1),
    warm() {},
    close() {},
  };
}

function onWorkers(jobs: number, loader: Loader | undefined): Executor {
  const pool = new WorkerPool({ size: jobs, ...(loader === undefined ? {} : { loader }) });
  return {
    parallel: jobs,
    trySend(req) {
      const slot = pool.idle();
      if (slot < 0) return false;
      pool.send(slot, req);
      return true;
    },
    collect: (ms) => pool.collect(ms).map((r) => r.reply),
    outstanding: () => pool.busy(),
    warm() {
      for (let slot = 0; slot < pool.size; slot++) pool.send(slot, { type: 'ping' });
      while (pool.busy() > 0) {
        for (const r of pool.collect(1000)) if (r.reply.type === 'error') throw new Error(`fuzz worker: ${r.reply.message}`);
      }
    },
    close: () => pool.close(),
  };
}

/** Runs handed out beyond the lowest run not yet back: bounds the reorder buffer. */
const WINDOW = 4096;

/** Shrinks runs `indices` on the executor; outcomes ascending by run index. */
function shrinkAll(exec: Executor, opts: CampaignOptions, indices: readonly number[], failures: number, progress: (p: Omit<CampaignProgress, 'elapsedMs'>, force?: boolean) => void): ShrinkOutcome[] {
  const shrunk: ShrinkOutcome[] = [];
  let queue = [...indices];
  progress({ phase: 'shrinking', done: 0, total: indices.length, failures }, true);
  while (queue.length > 0 || exec.outstanding() > 0) {
    while (queue.length > 0) {
      const index = queue[0] ?? 0;
      if (!exec.trySend({ type: 'shrink', spec: opts.spec, seed: opts.seed, index, budget: opts.shrinkBudget ?? 300 })) break;
      queue = queue.slice(1);
    }
    for (const reply of exec.collect(200)) {
      if (reply.type === 'error') throw new Error(`fuzz worker: ${reply.message}`);
      if (reply.type === 'shrink') shrunk.push(reply.outcome);
    }
    progress({ phase: 'shrinking', done: shrunk.length, total: indices.length, failures });
  }
  return shrunk.sort((a, b) => a.index - b.index);
}

/**
 * Shrinks the given failing runs of a campaign (what `apf fuzz merge` does for the kinds no
 * shard shrank itself); `jobs` as for a campaign.
 */
export function shrinkRuns(opts: Pick<CampaignOptions, 'spec' | 'seed' | 'jobs' | 'shrinkBudget' | 'loader'>, indices: readonly number[]): ShrinkOutcome[] {
  if (indices.length === 0) return [];
  const exec = opts.jobs === 0 ? inProcess() : onWorkers(Math.min(opts.jobs, indices.length), opts.loader);
  try {
    exec.warm();
    return shrinkAll(exec, { ...opts, runs: 1 }, indices, indices.length, () => {});
  } finally {
    exec.close();
  }
}

export function runCampaign(opts: CampaignOptions): CampaignResult {
  if (!Number.isSafeInteger(opts.runs) || opts.runs < 1) throw new RangeError(`runs must be a positive integer, got ${opts.runs}`);
  if (!Number.isSafeInteger(opts.jobs) || opts.jobs < 0) throw new RangeError(`jobs must be a non-negative integer, got ${opts.jobs}`);
  const seed = canonicalSeed(opts.seed);
  const shard = opts.shard ?? { index: 1, count: 1 };
  // The shard's runs are base, base + step, ...: position k is run base + k * step.
  const base = shard.index - 1;
  const step = shard.count;
  const positions = base < opts.runs ? Math.ceil((opts.runs - base) / step) : 0;
  const start = Date.now();
  let lastProgress = 0;
  const progress = (p: Omit<CampaignProgress, 'elapsedMs'>, force = false): void => {
    const now = Date.now();
    if (opts.onProgress === undefined || (!force && now - lastProgress < 100)) return;
    lastProgress = now;
    opts.onProgress({ ...p, elapsedMs: now - start });
  };
  progress({ phase: 'starting', done: 0, total: positions, failures: 0 }, true);

  const exec = opts.jobs === 0 ? inProcess() : onWorkers(Math.max(1, Math.min(opts.jobs, positions)), opts.loader);
  try {
    exec.warm();
    const runStart = Date.now();
    // --- run phase: results stream in and are tallied in run order (a small reorder buffer) ---
    const tally = emptyTally();
    const pending = new Map<number, RunSummary>();
    let next = 0; // next position to hand out
    let limit = positions; // positions below limit are wanted
    let absorbed = 0; // positions below this are tallied
    let received = 0;
    const take = (): number[] => {
      const end = Math.min(limit, absorbed + WINDOW);
      const remaining = end - next;
      const chunk = Math.max(1, Math.min(16, Math.ceil(remaining / (exec.parallel * 8))));
      const out: number[] = [];
      while (out.length < chunk && next < end) out.push(base + step * next++);
      return out;
    };
    const absorb = (reply: WorkerReply): void => {
      if (reply.type === 'error') throw new Error(`fuzz worker: ${reply.message}`);
      if (reply.type !== 'runs') return;
      for (const r of reply.results) {
        const k = (r.index - base) / step;
        received++;
        if (k < limit) pending.set(k, r);
      }
      for (let r = pending.get(absorbed); r !== undefined && absorbed < limit; r = pending.get(absorbed)) {
        pending.delete(absorbed);
        addRun(tally, r);
        absorbed++;
        if (!r.ok && opts.failFast === true) limit = absorbed;
      }
      if (absorbed >= limit) pending.clear();
    };
    for (;;) {
      while (next < Math.min(limit, absorbed + WINDOW)) {
        const indices = take();
        if (!exec.trySend({ type: 'runs', spec: opts.spec, seed: opts.seed, indices })) {
          next -= indices.length;
          break;
        }
      }
      if (exec.outstanding() === 0 && next >= limit) break;
      for (const reply of exec.collect(200)) absorb(reply);
      progress({ phase: 'running', done: Math.min(received, limit), total: limit, failures: tally.failed });
    }
    const runPhaseMs = Date.now() - runStart;
    progress({ phase: 'running', done: tally.runs, total: tally.runs, failures: tally.failed }, true);

    // --- shrink phase: the first failure of each kind ---
    const shrunk = shrinkAll(exec, opts, shrinkTargets(tally, opts.maxShrink ?? 3), tally.failed, progress);
    const elapsedMs = Date.now() - start;
    progress({ phase: 'done', done: tally.runs, total: tally.runs, failures: tally.failed }, true);
    return resultFromTally(tally, {
      seed,
      total: opts.runs,
      ...(opts.shard === undefined ? {} : { shard: opts.shard }),
      shrunk,
      jobs: opts.jobs,
      elapsedMs,
      runsPerSec: runPhaseMs > 0 ? (tally.runs * 1000) / runPhaseMs : 0,
    });
  } finally {
    exec.close();
  }
}

/**
 * Fuzz throughput for the benchmark: runs per second of a campaign of `runs` runs on `jobs`
 * workers (0: in this thread), worker start-up excluded.
 */
export function measureThroughput(spec: SearchSpec, jobs: number, runs: number, seed: number | string = 'bench'): { jobs: number; runs: number; runsPerSec: number; elapsedMs: number } {
  const r = runCampaign({ runs, seed, jobs, spec, maxShrink: 0 });
  return { jobs, runs: r.runs, runsPerSec: r.runsPerSec, elapsedMs: r.elapsedMs };
}
