/**
 * A pool of worker threads (`node:worker_threads`) driven synchronously from the calling thread:
 * jobs go out on a MessagePort, results come back on it and are collected with
 * `receiveMessageOnPort`; the caller sleeps in `Atomics.wait` on a shared counter that each worker
 * bumps after posting. So the `apf` command stays a plain synchronous function, and a test or a
 * benchmark can run a campaign without an event loop.
 *
 * Workers run the TypeScript sources directly. They compile them with @swc/core (what Jest uses,
 * a devDependency), falling back to ts-node in transpile-only mode; either works on a fresh clone
 * after `npm install`. Under Jest this matters twice: the workers are plain Node contexts, so the
 * simulation runs at full speed there instead of inside Jest's slow vm context.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'node:worker_threads';
import type { WorkerReply, WorkerRequest } from './worker';

/** How workers load TypeScript. */
export type Loader = 'swc' | 'ts-node';

const REPO = path.resolve(__dirname, '..', '..');

/**
 * The worker's bootstrap (plain JavaScript, run with `eval`): install a `.ts` loader, load
 * worker.ts, serve. Any failure is posted back as a `fatal` reply instead of an 'error' event,
 * because the parent is not running an event loop while it waits.
 */
const BOOT = `
'use strict';
const { workerData } = require('node:worker_threads');
const { port, signal, entry, loader, swcPath, tsNodePath, project } = workerData;
const counter = new Int32Array(signal);
const notify = () => { Atomics.add(counter, 0, 1); Atomics.notify(counter, 0); };
try {
  // Stack traces of a simulation error point at the TypeScript lines (inline source maps).
  if (typeof process.setSourceMapsEnabled === 'function') process.setSourceMapsEnabled(true);
  const Module = require('node:module');
  const fs = require('node:fs');
  let installed = false;
  if (loader === 'swc' && swcPath) {
    try {
      const swc = require(swcPath);
      const options = { swcrc: false, sourceMaps: 'inline', jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'commonjs' } };
      Module._extensions['.ts'] = function (m, filename) {
        const out = swc.transformSync(fs.readFileSync(filename, 'utf8'), Object.assign({ filename }, options));
        m._compile(out.code, filename);
      };
      installed = true;
    } catch (e) {
      installed = false;
    }
  }
  if (!installed) require(tsNodePath).register({ transpileOnly: true, project });
  require(entry).serve(port, notify);
} catch (e) {
  port.postMessage({ type: 'fatal', message: String((e && e.stack) || e) });
  notify();
}
`;

function resolveOrNull(id: string): string | null {
  try {
    return require.resolve(id, { paths: [REPO] });
  } catch {
    return null;
  }
}

export interface PoolOptions {
  readonly size: number;
  /**
   * The module each worker loads and serves (it exports `serve(port, notify)`); default the fuzz
   * worker, worker.ts. The suite runner (`apf run DIR`) serves harness/suite/worker.ts.
   */
  readonly entry?: string;
  /** Names the workers in error messages (default "fuzz"). */
  readonly label?: string;
  readonly loader?: Loader;
  /** Give up when no worker has answered for this long while jobs are out (default 10 min). */
  readonly stallMs?: number;
}

interface Slot {
  readonly worker: Worker;
  readonly port: MessagePort;
  busy: boolean;
}

/** Default number of jobs: the machine's cores. */
export function defaultJobs(): number {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

export class WorkerPool<Req = WorkerRequest, Reply extends { readonly type: string } = WorkerReply> {
  private readonly slots: Slot[] = [];
  private readonly counter: Int32Array;
  private readonly stallMs: number;
  private lastReply = Date.now();
  private closed = false;
  private readonly label: string;

  constructor(opts: PoolOptions) {
    if (!Number.isSafeInteger(opts.size) || opts.size < 1) throw new RangeError(`pool size must be a positive integer, got ${opts.size}`);
    const signal = new SharedArrayBuffer(4);
    this.counter = new Int32Array(signal);
    this.stallMs = opts.stallMs ?? 600_000;
    const swcPath = resolveOrNull('@swc/core');
    const tsNodePath = resolveOrNull('ts-node');
    const entry = opts.entry ?? path.join(__dirname, 'worker.ts');
    this.label = opts.label ?? 'fuzz';
    for (let i = 0; i < opts.size; i++) {
      const { port1, port2 } = new MessageChannel();
      const worker = new Worker(BOOT, {
        eval: true,
        workerData: { port: port2, signal, entry, loader: opts.loader ?? 'swc', swcPath, tsNodePath, project: path.join(REPO, 'tsconfig.json') },
        transferList: [port2],
      });
      worker.unref();
      this.slots.push({ worker, port: port1, busy: false });
    }
  }

  get size(): number {
    return this.slots.length;
  }

  /** Index of an idle worker, or -1. */
  idle(): number {
    return this.slots.findIndex((s) => !s.busy);
  }

  busy(): number {
    return this.slots.filter((s) => s.busy).length;
  }

  send(slot: number, req: Req): void {
    const s = this.slots[slot];
    if (s === undefined || s.busy) throw new Error(`worker ${slot} is not idle`);
    s.busy = true;
    s.port.postMessage(req);
  }

  /**
   * Collects replies, waiting up to `waitMs` when none is ready. A worker's `fatal` reply (it could
   * not load the code) throws.
   */
  collect(waitMs: number): { slot: number; reply: Reply }[] {
    const deadline = Date.now() + waitMs;
    if (this.busy() === 0) this.lastReply = Date.now();
    for (;;) {
      const seen = Atomics.load(this.counter, 0);
      const out: { slot: number; reply: Reply }[] = [];
      this.slots.forEach((s, slot) => {
        for (let m = receiveMessageOnPort(s.port); m !== undefined; m = receiveMessageOnPort(s.port)) {
          const reply = m.message as Reply;
          if (reply.type === 'fatal') throw new Error(`${this.label} worker ${slot} failed to start: ${(reply as { message?: string }).message ?? '?'}`);
          s.busy = false;
          out.push({ slot, reply });
        }
      });
      const now = Date.now();
      if (out.length > 0) {
        this.lastReply = now;
        return out;
      }
      if (now >= deadline || this.busy() === 0) return out;
      if (now - this.lastReply > this.stallMs) throw new Error(`${this.label} workers stopped answering (${Math.round(this.stallMs / 1000)} s without a result)`);
      Atomics.wait(this.counter, 0, seen, Math.min(deadline - now, 1000));
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const s of this.slots) {
      s.port.close();
      void s.worker.terminate();
    }
  }
}
