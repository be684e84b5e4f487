/**
 * A fuzz campaign: runs 0..N-1 of seed S, spread over worker threads, merged in run order; then
 * the first failing run of each kind (its first failing property) is shrunk.
 *
 * Determinism: run i is generated from a seed that depends only on (S, i) (seeds.ts) and run on a
 * fresh deterministic simulation, so its result is a function of (S, i, options). Results are
 * stored by index and every figure of the result is computed from the whole, ordered set, so the
 * number of workers and their timing change nothing but the wall-clock figures. With `failFast`
 * the campaign stops handing out runs after a failure at index k, lets the runs below k finish
 * (they were all handed out before k, in order) and reports the lowest failing index: again the
 * same for any number of workers. Shrinking is deterministic too (search.ts).
 */
import { canonicalSeed } from '../../sim/prng';
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
  /** Called now and then (at most every 100 ms) and at the end of each phase. */
  readonly onProgress?: (p: CampaignProgress) => void;
}

export interface CampaignResult {
  readonly seed: string;
  /** Runs the result covers (N, or up to the first failure with failFast). */
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
  /** The first runs that ended in a known hazard (at most LISTED_HAZARDS), in run order. */
  readonly hazardRuns: readonly { readonly index: number; readonly hazard: string }[];
  /** Simulation events over all runs. */
  readonly events: number;
  /** Shrunk failures, lowest run index first: the first failure of each kind. */
  readonly shrunk: readonly ShrinkOutcome[];
  /** A hash of every run's index, trace hash and verdict, in run order: equal campaigns have equal fingerprints. */
  readonly fingerprint: string;
  readonly jobs: number;
  readonly elapsedMs: number;
  /** Runs per second of the run phase (worker start-up and shrinking excluded). */
  readonly runsPerSec: number;
}

const LISTED_FAILURES = 100;
/** Hazard runs listed (with files and replay lines) per campaign. */
export const LISTED_HAZARDS = 10;

/** A small, order-sensitive hash of the runs' trace hashes (FNV-1a over their text). */
function fingerprint(results: readonly (RunSummary | undefined)[]): string {
  let h = 0x811c9dc5;
  for (const r of results) {
    const s = r === undefined ? '-' : `${r.index}:${r.traceHash}:${r.ok ? 1 : 0};`;
    for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  }
  return h.toString(16).padStart(8, '0');
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

export function runCampaign(opts: CampaignOptions): CampaignResult {
  if (!Number.isSafeInteger(opts.runs) || opts.runs < 1) throw new RangeError(`runs must be a positive integer, got ${opts.runs}`);
  if (!Number.isSafeInteger(opts.jobs) || opts.jobs < 0) throw new RangeError(`jobs must be a non-negative integer, got ${opts.jobs}`);
  const seed = canonicalSeed(opts.seed);
  const start = Date.now();
  let lastProgress = 0;
  const progress = (p: Omit<CampaignProgress, 'elapsedMs'>, force = false): void => {
    const now = Date.now();
    if (opts.onProgress === undefined || (!force && now - lastProgress < 100)) return;
    lastProgress = now;
    opts.onProgress({ ...p, elapsedMs: now - start });
  };
  progress({ phase: 'starting', done: 0, total: opts.runs, failures: 0 }, true);

  const exec = opts.jobs === 0 ? inProcess() : onWorkers(Math.min(opts.jobs, opts.runs), opts.loader);
  try {
    exec.warm();
    const runStart = Date.now();
    // --- run phase ---
    const results: (RunSummary | undefined)[] = new Array<RunSummary | undefined>(opts.runs);
    let next = 0;
    let limit = opts.runs; // runs with index < limit are wanted
    let done = 0;
    let failures = 0;
    const take = (): number[] => {
      const remaining = limit - next;
      const chunk = Math.max(1, Math.min(16, Math.ceil(remaining / (exec.parallel * 8))));
      const out: number[] = [];
      while (out.length < chunk && next < limit) out.push(next++);
      return out;
    };
    const absorb = (reply: WorkerReply): void => {
      if (reply.type === 'error') throw new Error(`fuzz worker: ${reply.message}`);
      if (reply.type !== 'runs') return;
      for (const r of reply.results) {
        results[r.index] = r;
        done++;
        if (!r.ok) {
          failures++;
          if (opts.failFast === true && r.index < limit) limit = r.index + 1;
        }
      }
    };
    for (;;) {
      while (next < limit) {
        const indices = take();
        if (!exec.trySend({ type: 'runs', spec: opts.spec, seed: opts.seed, indices })) {
          next -= indices.length;
          break;
        }
      }
      if (exec.outstanding() === 0 && next >= limit) break;
      for (const reply of exec.collect(200)) absorb(reply);
      progress({ phase: 'running', done, total: limit, failures });
    }
    const runPhaseMs = Date.now() - runStart;
    const covered = results.slice(0, limit);
    progress({ phase: 'running', done: covered.length, total: covered.length, failures: covered.filter((r) => r !== undefined && !r.ok).length }, true);

    // --- figures, from the ordered results only ---
    const failed = covered.filter((r): r is RunSummary => r !== undefined && !r.ok);
    const byProperty: Record<string, number> = {};
    const outcomes: Record<string, number> = {};
    const hazards: Record<string, number> = {};
    const hazardRuns: { index: number; hazard: string }[] = [];
    let events = 0;
    for (const r of covered) {
      if (r === undefined) continue;
      outcomes[r.outcome] = (outcomes[r.outcome] ?? 0) + 1;
      if (r.hazard !== undefined) {
        hazards[r.hazard] = (hazards[r.hazard] ?? 0) + 1;
        if (hazardRuns.length < LISTED_HAZARDS) hazardRuns.push({ index: r.index, hazard: r.hazard });
      }
      events += r.events;
      const p = r.failures[0]?.property;
      if (!r.ok && p !== undefined) byProperty[p] = (byProperty[p] ?? 0) + 1;
    }

    // --- shrink phase: the first failure of each kind ---
    const toShrink: number[] = [];
    const kinds = new Set<string>();
    for (const r of failed) {
      const p = r.failures[0]?.property ?? '?';
      if (kinds.has(p) || toShrink.length >= (opts.maxShrink ?? 3)) continue;
      kinds.add(p);
      toShrink.push(r.index);
    }
    const shrunk: ShrinkOutcome[] = [];
    let queue = [...toShrink];
    progress({ phase: 'shrinking', done: 0, total: toShrink.length, failures: failed.length }, true);
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
      progress({ phase: 'shrinking', done: shrunk.length, total: toShrink.length, failures: failed.length });
    }
    shrunk.sort((a, b) => a.index - b.index);
    const elapsedMs = Date.now() - start;
    progress({ phase: 'done', done: covered.length, total: covered.length, failures: failed.length }, true);
    return {
      seed,
      runs: covered.length,
      passed: covered.length - failed.length,
      failed: failed.length,
      failures: failed.slice(0, LISTED_FAILURES),
      byProperty,
      outcomes,
      hazards,
      hazardRuns,
      events,
      shrunk,
      fingerprint: fingerprint(covered),
      jobs: opts.jobs,
      elapsedMs,
      runsPerSec: runPhaseMs > 0 ? (covered.length * 1000) / runPhaseMs : 0,
    };
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
