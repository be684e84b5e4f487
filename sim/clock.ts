/**
 * Virtual time. Time is an integer number of nanoseconds held in a `number` (exact below 2^53 ns,
 * about 104 days). Only the engine moves the clock; everyone else reads `now`.
 */
import { SimError } from './errors';

// Globals used on hot paths, bound once: inside a vm context (Jest) each global lookup goes
// through an interceptor and costs ~100 ns (docs/performance.md).
const { isSafeInteger } = Number;

export const NS_PER_US = 1_000;
export const NS_PER_MS = 1_000_000;
export const NS_PER_S = 1_000_000_000;

/** Monotonic virtual clock in integer nanoseconds, starting at 0. */
export class VirtualClock {
  private t = 0;

  /** Current virtual time, ns. */
  get now(): number {
    return this.t;
  }

  /** Moves the clock to `t` (ns). Throws `SimError` if `t` is in the past or not a safe integer. */
  advanceTo(t: number): void {
    if (t === this.t) return;
    if (!(t > this.t) || !isSafeInteger(t)) {
      throw new SimError(
        'clock',
        isSafeInteger(t)
          ? `virtual time cannot go backwards: advanceTo(${formatTime(t).trim()}) while now=${formatTime(this.t).trim()}`
          : `virtual time must be a safe integer number of ns, got ${t}`,
      );
    }
    this.t = t;
  }
}

/** Integer ns from a count of ns (rounds to the nearest ns). */
export const ns = (n: number): number => Math.round(n);
/** Integer ns from microseconds. */
export const us = (n: number): number => Math.round(n * NS_PER_US);
/** Integer ns from milliseconds. */
export const ms = (n: number): number => Math.round(n * NS_PER_MS);
/** Integer ns from seconds. */
export const s = (n: number): number => Math.round(n * NS_PER_S);

/**
 * Fixed-width trace timestamp: seconds with 9 decimals, right-aligned to `width` characters
 * (default 15, room for 99999 s), like trace-cmd's `1.234567890`. Exact for integer inputs.
 */
export function formatTime(t: number, width = 15): string {
  if (!Number.isFinite(t)) return String(t).padStart(width);
  const neg = t < 0;
  const a = Math.round(Math.abs(t));
  const whole = Math.floor(a / NS_PER_S);
  const frac = a - whole * NS_PER_S;
  return `${neg ? '-' : ''}${whole}.${String(frac).padStart(9, '0')}`.padStart(width);
}

/** Short human-readable duration with a unit, e.g. `850ns`, `12.5us`, `3.0017ms`, `2s`. */
export function formatDuration(d: number): string {
  const a = Math.abs(d);
  if (a < NS_PER_US) return `${d}ns`;
  if (a < NS_PER_MS) return `${trim(d / NS_PER_US)}us`;
  if (a < NS_PER_S) return `${trim(d / NS_PER_MS)}ms`;
  return `${trim(d / NS_PER_S)}s`;
}

function trim(x: number): string {
  return String(Number(x.toFixed(6)));
}
