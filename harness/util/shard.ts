/**
 * Splitting a list of items across CI jobs or machines: `--shard I/N` takes every item whose
 * 0-based position i satisfies i % N === I - 1, so N shards together cover every item exactly once.
 */
import { UsageError } from '../scenario/overrides';

/** Shard `index` of `count` (index is 1-based: 1 <= index <= count). */
export interface Shard {
  readonly index: number;
  readonly count: number;
}

/** Parses "I/N"; bad input is a one-line UsageError. */
export function parseShard(arg: string): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(arg);
  const index = m === null ? NaN : Number(m[1]);
  const count = m === null ? NaN : Number(m[2]);
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(count) || index < 1 || index > count) {
    throw new UsageError(`--shard: expected I/N with 1 <= I <= N, got ${JSON.stringify(arg)}`);
  }
  return { index, count };
}

/** Whether the 0-based item `i` belongs to shard `s`. */
export function inShard(i: number, s: Shard): boolean {
  return i % s.count === s.index - 1;
}
