/**
 * One file of a suite run (`apf run DIR|FILE...`): what a worker thread of the suite pool does
 * per file, and what the suite does itself with `--jobs 0`. The run is exactly `apf run FILE`
 * (executeRun), so its failure file, trace and replay line are the ones a single run writes.
 */
import type { MessagePort } from 'node:worker_threads';
import type { CliDeps } from '../cli/cli';
import { executeRun, type RunRequest } from '../cli/commands/run';
import type { CollectedRecords } from '../report/html';
import type { RunResult } from '../report/result';
import { ScenarioError, loadScenarioFile } from '../scenario/load';
import { UsageError, variantNames } from '../scenario/overrides';

export type Status = 'PASS' | 'FAIL' | 'SKIP';

/** The verdict of one file. */
export interface FileVerdict {
  readonly file: string;
  readonly status: Status;
  /** One line: the scenario's verdict sentence, the failed expectation, or why it was skipped. */
  readonly reason: string;
  readonly replay: string | null;
  readonly failureFile: string | null;
  readonly trace: string | null;
  readonly ms: number;
  readonly result: RunResult | null;
  readonly collected: CollectedRecords | null;
}

export type SuiteRequest = { readonly type: 'file'; readonly req: RunRequest } | { readonly type: 'ping' };
export type SuiteReply =
  | { readonly type: 'file'; readonly verdict: FileVerdict }
  | { readonly type: 'pong' }
  | { readonly type: 'error'; readonly message: string }
  | { readonly type: 'fatal'; readonly message: string };

/** "PASS name: reason" -> "reason". */
function reasonOf(verdict: string): string {
  const m = /^(?:PASS|FAIL) [^:]*: (.*)$/.exec(verdict);
  return m?.[1] ?? verdict;
}

/** Runs one file and judges it. Never throws for a bad file: that is a FAIL with the loader's message. */
export function runFile(req: RunRequest, deps: CliDeps = {}): FileVerdict {
  // Date is fine here: the harness times whole runs for the JUnit file; the simulation never sees it.
  const started = Date.now();
  const base = { file: req.fileShown, replay: null, failureFile: null, trace: null, result: null, collected: null };
  try {
    const variant = req.overrides.variant;
    if (variant !== undefined) {
      const names = variantNames(loadScenarioFile(req.file, req.fileShown));
      if (!names.includes(variant)) {
        return { ...base, status: 'SKIP', reason: names.length === 0 ? `no variants (asked for --variant ${variant})` : `no variant "${variant}" (has ${names.join(', ')})`, ms: Date.now() - started };
      }
    }
    const done = executeRun(req, deps);
    const r = done.result;
    return {
      file: req.fileShown,
      status: done.code === 0 ? 'PASS' : 'FAIL',
      reason: r === null ? done.err.split('\n')[0] ?? 'internal error' : reasonOf(done.verdict),
      replay: r?.replay ?? (/^replay: (.*)$/m.exec(done.err)?.[1] ?? null),
      failureFile: r?.failureFile ?? null,
      trace: r?.trace?.file ?? null,
      ms: Date.now() - started,
      result: r,
      collected: req.collect === undefined ? null : done.collected,
    };
  } catch (e) {
    if (e instanceof ScenarioError || e instanceof UsageError) return { ...base, status: 'FAIL', reason: e.message, ms: Date.now() - started };
    throw e;
  }
}

export function handle(req: SuiteRequest): SuiteReply {
  if (req.type === 'ping') return { type: 'pong' };
  try {
    return { type: 'file', verdict: runFile(req.req) };
  } catch (e) {
    return { type: 'error', message: e instanceof Error ? (e.stack ?? e.message) : String(e) };
  }
}

/** Serves requests on `port` (the pool's bootstrap calls this in each worker thread). */
export function serve(port: MessagePort, notify: () => void): void {
  port.on('message', (req: SuiteRequest) => {
    port.postMessage(handle(req));
    notify();
  });
}
