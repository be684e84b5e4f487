/**
 * Units of scenario files and command lines: virtual times ("10us", "1.5ms", 2000), sizes
 * ("64MiB", 4096) and hex numbers ("0x7f0000001000"). Parsers return a value or an error text
 * that completes "expected ..." so callers can put it behind a path.
 */
import { formatDuration } from '../../sim/clock';

const TIME_UNITS: Readonly<Record<string, number>> = { ns: 1, us: 1_000, 'µs': 1_000, ms: 1_000_000, s: 1_000_000_000 };
const SIZE_UNITS: Readonly<Record<string, number>> = {
  '': 1, b: 1, k: 1024, kb: 1024, kib: 1024, m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3,
};

/** Outcome of a unit parser: a value or the reason it is not one. */
export type Parsed<T> = { ok: true; value: T } | { ok: false; error: string };

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const bad = <T>(error: string): Parsed<T> => ({ ok: false, error });

/**
 * A virtual time or duration in integer nanoseconds: a non-negative integer (ns) or a string
 * `<number><unit>` with unit ns, us (µs), ms or s ("10us", "1.5ms", "2s").
 */
export function parseTime(v: unknown): Parsed<number> {
  if (typeof v === 'number') {
    if (Number.isSafeInteger(v) && v >= 0) return ok(v);
    return bad(`a time: a whole number of ns >= 0 or a string like "10us", "1.5ms", "2s" (got ${v})`);
  }
  if (typeof v !== 'string') return bad(`a time like "10us", "1.5ms", "2s" or a number of ns`);
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ns|us|µs|ms|s)\s*$/.exec(v);
  if (m === null) return bad(`a time like "10us", "1.5ms", "2s" or a number of ns (got "${v}")`);
  const unit = TIME_UNITS[m[2] ?? ''] ?? 1;
  const ns = Number(m[1]) * unit;
  const rounded = Math.round(ns);
  if (Math.abs(ns - rounded) > 1e-6) return bad(`a whole number of nanoseconds ("${v}" is ${ns}ns)`);
  if (!Number.isSafeInteger(rounded)) return bad(`a time below 2^53 ns (got "${v}")`);
  return ok(rounded);
}

/** A size in bytes: a positive integer or "<n><unit>" with K/KiB, M/MiB, G/GiB (powers of 1024). */
export function parseSize(v: unknown): Parsed<number> {
  if (typeof v === 'number') {
    if (Number.isSafeInteger(v) && v > 0) return ok(v);
    return bad(`a size: a positive whole number of bytes or a string like "64MiB" (got ${v})`);
  }
  if (typeof v !== 'string') return bad('a size like "64MiB" or a number of bytes');
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-z]*)\s*$/i.exec(v);
  const unit = m === null ? undefined : SIZE_UNITS[(m[2] ?? '').toLowerCase()];
  if (m === null || unit === undefined) return bad(`a size like "64MiB", "512KiB" or a number of bytes (got "${v}")`);
  const bytes = Number(m[1]) * unit;
  if (!Number.isSafeInteger(bytes) || bytes <= 0) return bad(`a whole positive number of bytes (got "${v}")`);
  return ok(bytes);
}

/** A hex string "0x..." as a bigint (any width). */
export function parseHexBig(v: unknown): Parsed<bigint> {
  if (typeof v !== 'string' || !/^0x[0-9a-f]+(?:_[0-9a-f]+)*$/i.test(v)) return bad('a hex string like "0x1000"');
  return ok(BigInt(v.replace(/_/g, '')));
}

/** A hex string "0x..." below 2^53, or (when `allowNumber`) a plain non-negative integer. */
export function parseHexNumber(v: unknown, allowNumber = false): Parsed<number> {
  if (allowNumber && typeof v === 'number') {
    return Number.isSafeInteger(v) && v >= 0 ? ok(v) : bad(`a non-negative integer or a hex string like "0x1000" (got ${v})`);
  }
  const big = parseHexBig(v);
  if (!big.ok) return allowNumber ? bad('a non-negative integer or a hex string like "0x1000"') : big;
  if (big.value > BigInt(Number.MAX_SAFE_INTEGER)) return bad(`a value below 2^53 (got ${String(v)})`);
  return ok(Number(big.value));
}

/** Formats integer ns as a short duration ("850ns", "12.5us", "3ms"). */
export const fmtDuration = (ns: number): string => formatDuration(ns);

/** Hex with 0x prefix for numbers and bigints (shared-abi's, re-exported for the CLI's formatting). */
export { hex } from '../../shared-abi/addr';
