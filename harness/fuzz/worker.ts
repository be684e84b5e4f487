/**
 * The worker side of the fuzz pool (pool.ts): runs batches of campaign indices and shrinks
 * failing ones. Also used in-process (`jobs: 0`) through `handle`.
 */
import type { MessagePort } from 'node:worker_threads';
import type { PropertyFailure } from './properties';
import { runIndex, shrinkIndex, type SearchSpec, type ShrinkOutcome } from './search';

/** One run of a campaign, as reported back (small: results of passing runs are mostly counted). */
export interface RunSummary {
  readonly index: number;
  readonly ok: boolean;
  /** A known hazard the run ended in (counted, not a failure). */
  readonly hazard?: string;
  readonly failures: readonly PropertyFailure[];
  readonly outcome: string;
  readonly events: number;
  readonly traceHash: string;
}

export type WorkerRequest =
  | { readonly type: 'ping' }
  | { readonly type: 'runs'; readonly spec: SearchSpec; readonly seed: number | string; readonly indices: readonly number[] }
  | { readonly type: 'shrink'; readonly spec: SearchSpec; readonly seed: number | string; readonly index: number; readonly budget: number };

export type WorkerReply =
  | { readonly type: 'pong' }
  | { readonly type: 'runs'; readonly results: readonly RunSummary[] }
  | { readonly type: 'shrink'; readonly outcome: ShrinkOutcome }
  | { readonly type: 'error'; readonly message: string }
  | { readonly type: 'fatal'; readonly message: string };

export function handle(req: WorkerRequest): WorkerReply {
  try {
    // The simulation is loaded with this module: answering proves the worker is ready.
    if (req.type === 'ping') return { type: 'pong' };
    if (req.type === 'runs') {
      const results = req.indices.map((index): RunSummary => {
        const { result: r } = runIndex(req.spec, req.seed, index);
        return { index, ok: r.ok, ...(r.hazard === undefined ? {} : { hazard: r.hazard }), failures: r.failures, outcome: r.outcome, events: r.events, traceHash: r.traceHash };
      });
      return { type: 'runs', results };
    }
    return { type: 'shrink', outcome: shrinkIndex(req.spec, req.seed, req.index, req.budget) };
  } catch (e) {
    return { type: 'error', message: e instanceof Error ? (e.stack ?? e.message) : String(e) };
  }
}

/** Serves requests on `port` until it closes; `notify` wakes the parent after each reply. */
export function serve(port: MessagePort, notify: () => void): void {
  port.on('message', (req: WorkerRequest) => {
    port.postMessage(handle(req));
    notify();
  });
}
