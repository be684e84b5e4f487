/**
 * The simulation context: one virtual clock, one event queue, one seeded PRNG, one trace bus,
 * and the loop that runs events in (time, priority, sequence) order. Components get time and
 * randomness from here and nowhere else.
 *
 * A run ends when the queue is empty ('idle'), when the next event lies beyond `until`, when
 * someone calls `stop()`, or when `stopWhen()` says so. It fails loudly when it exceeds its event
 * or virtual-time budget (`BudgetExceededError`), or when the queue runs empty while a registered
 * waiter still waits (`DeadlockError`, naming the waiters).
 */
import { s, VirtualClock } from './clock';
import { BudgetExceededError, DeadlockError, SimError } from './errors';
import { Prng } from './prng';
import { EventQueue, type EventHandle, type QueuedEvent } from './queue';
import { TraceBus } from './trace';

// Globals used on hot paths, bound once: inside a vm context (Jest) each global lookup goes
// through an interceptor and costs ~100 ns (docs/performance.md).
const { isSafeInteger } = Number;

/** Something that may wait for an event that never comes (a sleeping task, a blocked vCPU). */
export interface Waiter {
  readonly name: string;
  /** True while it waits for something to happen. */
  waiting(): boolean;
  /** What it waits for, for the deadlock report. */
  describe(): string;
}

export interface SimulationOptions {
  seed: number | bigint | string;
  /** Event budget (default `DEFAULT_MAX_EVENTS`; `Infinity` for none). */
  maxEvents?: number;
  /** Virtual-time budget in ns (default `DEFAULT_MAX_TIME`; `Infinity` for none). */
  maxTime?: number;
  /** Keep the trace hash (default true). */
  traceHash?: boolean;
  /**
   * Let self-rescheduling components continue inline when nothing else is due first (default
   * true; see `continueInline`). Off, every step goes through the queue: slower, same run.
   */
  inlineContinuation?: boolean;
}

export interface RunOptions {
  /** Run events due at or before this time (ns), then set the clock to it. */
  until?: number;
  /** Checked before the first event and after every event; true ends the run. */
  stopWhen?: () => boolean;
}

export type RunEndReason = 'idle' | 'until' | 'stopped' | 'stopWhen';

/** How and where a run ended. `events` counts the events run by this `run()` call. */
export interface RunEnd {
  reason: RunEndReason;
  t: number;
  events: number;
  /** The reason given to `stop()`, for 'stopped'. */
  detail?: string;
}

/** Default event budget: ten million events. */
export const DEFAULT_MAX_EVENTS = 10_000_000;
/** Default virtual-time budget: one hour. */
export const DEFAULT_MAX_TIME = s(3600);

function checkBudget(name: string, v: number): number {
  if (v === Infinity || (isSafeInteger(v) && v >= 0)) return v;
  throw new SimError('engine', `${name} must be a non-negative integer or Infinity, got ${v}`);
}

/** The simulated world's clock, queue, randomness, trace and run loop. */
export class Simulation {
  readonly clock = new VirtualClock();
  readonly queue = new EventQueue();
  readonly prng: Prng;
  readonly trace: TraceBus;
  readonly maxEvents: number;
  readonly maxTime: number;
  private events = 0;
  private readonly waiters: Waiter[] = [];
  private stopRequest: string | undefined = undefined;
  private running = false;
  private cur: QueuedEvent | undefined = undefined;
  /** Inside `run()` (not `step()`): the end conditions `continueInline` must respect. */
  private inRun = false;
  private readonly inlineAllowed: boolean;
  private runUntil: number | undefined = undefined;
  private runStopWhen: (() => boolean) | undefined = undefined;

  constructor(opts: SimulationOptions) {
    this.prng = new Prng(opts.seed);
    this.trace = new TraceBus(this.clock, { hashEnabled: opts.traceHash ?? true });
    this.maxEvents = checkBudget('maxEvents', opts.maxEvents ?? DEFAULT_MAX_EVENTS);
    this.maxTime = checkBudget('maxTime', opts.maxTime ?? DEFAULT_MAX_TIME);
    this.inlineAllowed = opts.inlineContinuation ?? true;
  }

  /** Current virtual time, ns. */
  get now(): number {
    return this.clock.now;
  }

  /** The canonical seed. */
  get seed(): string {
    return this.prng.seedString;
  }

  /** Events run so far, over all runs. */
  get eventsRun(): number {
    return this.events;
  }

  /** The event running now (inside a callback), else the last one run (e.g. the one that threw). */
  get current(): QueuedEvent | undefined {
    return this.cur;
  }

  /** Schedules `fn` `delay` ns from now (integer >= 0). */
  schedule(delay: number, priority: number, fn: () => void, label: string, owner?: string): EventHandle {
    if (!isSafeInteger(delay) || delay < 0) {
      throw new SimError('engine', `schedule('${label}'): delay must be a non-negative integer number of ns, got ${delay}`);
    }
    return this.queue.push(this.clock.now + delay, priority, fn, label, owner);
  }

  /** Schedules `fn` at absolute time `time` (ns, not in the past). */
  scheduleAt(time: number, priority: number, fn: () => void, label: string, owner?: string): EventHandle {
    if (time < this.clock.now) {
      throw new SimError('engine', `scheduleAt('${label}'): time ${time} is in the past (now=${this.clock.now})`);
    }
    return this.queue.push(time, priority, fn, label, owner);
  }

  /** Registers something that may block forever; consulted when the queue runs empty. */
  registerWaiter(w: Waiter): void {
    this.waiters.push(w);
  }

  /** Removes a waiter registered earlier (no-op if unknown). */
  unregisterWaiter(w: Waiter): void {
    const i = this.waiters.indexOf(w);
    if (i >= 0) this.waiters.splice(i, 1);
  }

  /**
   * Asks the current run to end after the event now running (or, outside a run, the next run to
   * end before its first event). The run returns `{reason: 'stopped', detail: reason}`.
   */
  stop(reason: string): void {
    this.stopRequest = reason;
  }

  /**
   * Runs the next event. Returns false when the queue is empty (after checking for a deadlock).
   * Enforces the budgets like `run`.
   */
  step(): boolean {
    this.enter('step');
    try {
      const t = this.queue.peekTime();
      if (t === undefined) {
        this.checkDeadlock();
        return false;
      }
      this.checkBudgets(t);
      this.exec(this.queue.pop()!);
      return true;
    } finally {
      this.running = false;
    }
  }

  /** Runs events until one of the end conditions; see `RunEnd`. */
  run(opts: RunOptions = {}): RunEnd {
    const until = opts.until;
    const stopWhen = opts.stopWhen;
    if (until !== undefined && (!isSafeInteger(until) || until < this.clock.now)) {
      throw new SimError('engine', `run({until: ${until}}): until must be an integer time (ns) not before now (${this.clock.now})`);
    }
    this.enter('run');
    const start = this.events;
    this.inRun = this.inlineAllowed;
    this.runUntil = until;
    this.runStopWhen = stopWhen;
    try {
      for (;;) {
        if (this.stopRequest !== undefined) {
          const detail = this.stopRequest;
          this.stopRequest = undefined;
          return { reason: 'stopped', t: this.clock.now, events: this.events - start, detail };
        }
        if (stopWhen !== undefined && stopWhen()) return { reason: 'stopWhen', t: this.clock.now, events: this.events - start };
        const t = this.queue.peekTime();
        if (t === undefined) {
          this.checkDeadlock();
          return { reason: 'idle', t: this.clock.now, events: this.events - start };
        }
        if (until !== undefined && t > until) {
          this.clock.advanceTo(until);
          return { reason: 'until', t: until, events: this.events - start };
        }
        this.checkBudgets(t);
        this.exec(this.queue.pop()!);
      }
    } finally {
      this.running = false;
      this.inRun = false;
      this.runStopWhen = undefined;
    }
  }

  /**
   * Fast path for a component that ends its event by rescheduling itself (a vCPU running one
   * instruction per event). Call it as the very last thing the current event does, with the
   * delay and priority it would pass to `schedule`. When an event scheduled now would be the next
   * one `run()` runs, with nothing in between (no stop request, `stopWhen` false, no queued event
   * ordered before it, within `until` and the budgets), the clock advances to its time, it counts
   * as one event run, and this returns true: the caller runs its body inline instead of
   * scheduling it. Otherwise it returns false and changes nothing; the caller schedules as usual.
   *
   * The observable run is identical either way: the same events at the same times in the same
   * order, the same event count, so the same trace. Only the queue round trip is saved. (Sequence
   * numbers of later events differ, but only their relative order matters, and that is kept.)
   * Outside `run()` (in `step()`, or not running), or with `inlineContinuation: false`, it always
   * returns false.
   */
  continueInline(delay: number, priority: number): boolean {
    if (!this.inRun || this.stopRequest !== undefined) return false;
    const time = this.clock.now + delay;
    if (!this.queue.wouldRunFirst(time, priority)) return false;
    const until = this.runUntil;
    if (until !== undefined && time > until) return false;
    if (this.events >= this.maxEvents || time > this.maxTime) return false;
    const stopWhen = this.runStopWhen;
    if (stopWhen !== undefined && stopWhen()) return false;
    this.clock.advanceTo(time);
    this.events++;
    return true;
  }

  /** Runs for `duration` ns of virtual time from now (`run({until: now + duration})`). */
  runFor(duration: number, stopWhen?: () => boolean): RunEnd {
    return this.run({ until: this.clock.now + duration, stopWhen });
  }

  /** Names and descriptions of the registered waiters that wait right now. */
  waitingNow(): Array<{ name: string; description: string }> {
    const out: Array<{ name: string; description: string }> = [];
    for (const w of this.waiters) if (w.waiting()) out.push({ name: w.name, description: w.describe() });
    return out;
  }

  private enter(what: string): void {
    if (this.running) {
      const inside = this.cur === undefined ? '' : ` (inside event '${this.cur.label}')`;
      throw new SimError('engine', `${what}() called while the simulation is already running${inside}; schedule an event instead`);
    }
    this.running = true;
  }

  private exec(ev: QueuedEvent): void {
    this.cur = ev;
    this.clock.advanceTo(ev.time);
    this.events++;
    ev.fn();
  }

  private checkBudgets(t: number): void {
    if (this.events >= this.maxEvents || t > this.maxTime) {
      const next = this.queue.peek();
      const label = next?.label ?? '?';
      if (this.events >= this.maxEvents) throw new BudgetExceededError('events', this.maxEvents, this.clock.now, this.events, label, t);
      throw new BudgetExceededError('time', this.maxTime, this.clock.now, this.events, label, t);
    }
  }

  private checkDeadlock(): void {
    if (this.waiters.length === 0) return;
    const stuck = this.waitingNow();
    if (stuck.length > 0) throw new DeadlockError(this.clock.now, stuck);
  }
}
