/**
 * Errors raised by the simulation core. Every one is a `SimError` with a machine-readable `kind`,
 * so the harness can tell "the run was cut short" (budget), "the model is stuck" (deadlock) and
 * "something touched memory that does not exist" (guest-memory) apart without parsing messages.
 */

/** What went wrong, coarsely. Subclasses fix their own kind; plain `SimError`s use the others. */
export type SimErrorKind =
  | 'budget'
  | 'deadlock'
  | 'guest-memory'
  | 'clock'
  | 'queue'
  | 'prng'
  | 'trace'
  | 'engine'
  | 'value';

/** Base class of every error thrown by `sim/`. */
export class SimError extends Error {
  override name = 'SimError';
  constructor(
    readonly kind: SimErrorKind,
    message: string,
  ) {
    super(message);
  }
}

/** Which budget ran out. */
export type BudgetKind = 'events' | 'time';

/** Formats integer nanoseconds as seconds with 9 decimals (kept local: errors.ts imports nothing). */
function secs(t: number): string {
  if (!Number.isFinite(t)) return String(t);
  const neg = t < 0;
  const a = Math.abs(t);
  const whole = Math.floor(a / 1e9);
  const frac = String(a - whole * 1e9).padStart(9, '0');
  return `${neg ? '-' : ''}${whole}.${frac}`;
}

/**
 * A run hit its event budget or its virtual-time budget before it finished. Carries the budget, its
 * limit and where the run was (virtual time, events run, the event that would have broken it).
 */
export class BudgetExceededError extends SimError {
  override name = 'BudgetExceededError';
  constructor(
    readonly budget: BudgetKind,
    readonly limit: number,
    /** Virtual time (ns) when the budget ran out. */
    readonly t: number,
    /** Events run so far. */
    readonly events: number,
    /** Label of the next event, the one that would have exceeded the budget. */
    readonly nextLabel: string,
    /** Time (ns) of that event. */
    readonly nextTime: number,
  ) {
    super(
      'budget',
      budget === 'events'
        ? `event budget of ${limit} events exhausted at t=${secs(t)}s (next event '${nextLabel}' at t=${secs(nextTime)}s); ` +
            'the run did not finish (raise --max-events or look for a livelock)'
        : `virtual-time budget of ${secs(limit)}s exhausted at t=${secs(t)}s after ${events} events ` +
            `(next event '${nextLabel}' at t=${secs(nextTime)}s); ` +
            'the run did not finish (raise --max-time or look for a timer that keeps re-arming)',
    );
  }
}

/**
 * The event queue ran empty while something still waits for an event that can never come.
 * `waiters` holds each waiting waiter's name and `describe()` text.
 */
export class DeadlockError extends SimError {
  override name = 'DeadlockError';
  constructor(
    readonly t: number,
    readonly waiters: ReadonlyArray<{ readonly name: string; readonly description: string }>,
  ) {
    super(
      'deadlock',
      `deadlock at t=${secs(t)}s: the event queue is empty but ${waiters.length} waiter${waiters.length === 1 ? '' : 's'} still wait:\n` +
        waiters.map((w) => `  - ${w.name}: ${w.description}`).join('\n'),
    );
  }
}

/**
 * An access outside guest-physical memory. `gpa` is the first byte of the access, `size` its length
 * in bytes, `memorySize` the size of guest memory; the message shows the address in hex.
 */
export class GuestMemoryError extends SimError {
  override name = 'GuestMemoryError';
  constructor(
    readonly gpa: number,
    readonly size: number,
    readonly memorySize: number,
    /** The operation, e.g. `readU32`. */
    readonly op: string,
  ) {
    super(
      'guest-memory',
      `guest memory access out of range: ${op} of ${size} byte${size === 1 ? '' : 's'} at gpa ${hexOf(gpa)} ` +
        `(guest memory is ${hexOf(memorySize)} bytes, gpa 0x0..${hexOf(memorySize - 1)})`,
    );
  }
}

function hexOf(n: number): string {
  return Number.isSafeInteger(n) && n >= 0 ? '0x' + n.toString(16) : String(n);
}
