/**
 * `--shard I/N`: split a list of work items over N machines (CI jobs). Shard I (1-based) takes
 * the items whose 0-based position i satisfies i % N === I - 1, so the shards are disjoint, cover
 * every item, and differ in size by at most one.
 */
import { UsageError } from '../scenario/overrides';

export interface Shard {
  readonly index: number;
  readonly count: number;
}

/** Parses `I/N` with 1 <= I <= N; anything else is a UsageError with a one-line message. */
export function parseShard(arg: string): Shard {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(arg);
  const index = m === null ? NaN : Number(m[1]);
  const count = m === null ? NaN : Number(m[2]);
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(count) || index < 1 || count < 1 || index > count) {
    throw new UsageError(`--shard: expected I/N with 1 <= I <= N, got "${arg}"`);
  }
  return { index, count };
}

/** Whether the 0-based item `i` belongs to shard `s`. */
export function inShard(i: number, s: Shard): boolean {
  return i % s.count === s.index - 1;
}
