/**
 * The event queue: a binary min-heap totally ordered by (time, priority, insertion sequence).
 *
 * Layout: struct-of-arrays. Keys live in typed arrays (`Float64Array` times, `Float64Array`
 * priority-and-sequence keys, `Int32Array` slot ids); the event objects sit in a slot table and are
 * never touched while sifting, so comparisons stay in flat memory and moves carry no GC write
 * barrier. Push and pop sift a hole instead of swapping. Measured against the object heap of the
 * toolchain check (docs/performance.md): about 25% faster at 1e3 queued events, 35% at 1e5.
 *
 * Cancellation is lazy: a cancelled event stays in the heap and is dropped when it reaches the top.
 * `size` counts live events only. When dead entries outnumber live ones (and there are at least
 * 64), the heap is compacted, so a component that keeps re-arming a timer cannot grow it unboundedly.
 */
import { SimError } from './errors';

// Globals used on hot paths, bound once: inside a vm context (Jest) each global lookup goes
// through an interceptor and costs ~100 ns (docs/performance.md).
const { isSafeInteger, isInteger } = Number;

/**
 * Who runs first among events due at the same virtual time (lower first). The gaps leave room
 * for finer levels; any integer in [0, MAX_PRIORITY] is accepted.
 */
export enum Priority {
  /** Hardware effects that must land before anyone looks: interrupt lines, timer expiry. */
  Hardware = 0,
  /** The host (KVM) reacting to exits and completions. */
  Host = 10,
  /** Host worker threads (async page-in work). */
  Worker = 20,
  /** Guest vCPU execution (one instruction per event; see `Simulation.continueInline`). */
  Guest = 30,
  /** The harness: checkers, fault injectors, stop conditions; runs after everything else at a time. */
  Harness = 40,
}

/** Largest accepted priority. Priority and sequence share one exact 53-bit key. */
export const MAX_PRIORITY = 1023;
const SEQ_BITS = 43;
const SEQ_LIMIT = 2 ** SEQ_BITS;

/** A scheduled event as seen by whoever scheduled it. */
export interface EventHandle {
  /** Cancels the event if it has not run yet; no-op otherwise. */
  cancel(): void;
  readonly cancelled: boolean;
  /** Virtual time (ns) the event is due. */
  readonly time: number;
}

const PENDING = 0;
const FIRED = 1;
const CANCELLED = 2;

/** An event in the queue. `schedule` returns it as its handle; `pop` returns it to be run. */
export class QueuedEvent implements EventHandle {
  /** @internal 0 pending, 1 popped, 2 cancelled. */
  st = PENDING;
  constructor(
    private readonly q: EventQueue,
    readonly time: number,
    readonly priority: number,
    /** Insertion sequence number: unique per queue, breaks ties FIFO. */
    readonly seq: number,
    readonly fn: () => void,
    readonly label: string,
    readonly owner: string | undefined,
  ) {}

  get cancelled(): boolean {
    return this.st === CANCELLED;
  }

  /** True until the event is popped or cancelled. */
  get pending(): boolean {
    return this.st === PENDING;
  }

  cancel(): void {
    if (this.st !== PENDING) return;
    this.st = CANCELLED;
    this.q.noteCancelled();
  }
}

const INITIAL_CAPACITY = 64;

/** Binary min-heap of events ordered by (time, priority, insertion sequence). */
export class EventQueue {
  private cap = INITIAL_CAPACITY;
  /** Heap arrays, index = heap position. */
  private ht = new Float64Array(INITIAL_CAPACITY);
  private hk = new Float64Array(INITIAL_CAPACITY);
  private hi = new Int32Array(INITIAL_CAPACITY);
  /** Number of heap entries, dead ones included. */
  private n = 0;
  /** Cancelled entries still in the heap. */
  private dead = 0;
  /** Slot table: slot id -> event. */
  private slots: Array<QueuedEvent | undefined> = [];
  private free = new Int32Array(INITIAL_CAPACITY);
  private nfree = 0;
  private seq = 0;

  /**
   * Schedules `fn` at absolute virtual time `time` (integer ns >= 0). `label` names the event in
   * traces and error messages; `owner` names the component, for debugging.
   */
  schedule(time: number, priority: number, fn: () => void, label: string, owner?: string): EventHandle {
    return this.push(time, priority, fn, label, owner);
  }

  /** Like `schedule`, typed as the concrete event. */
  push(time: number, priority: number, fn: () => void, label: string, owner?: string): QueuedEvent {
    if (!isSafeInteger(time) || time < 0) {
      throw new SimError('queue', `event '${label}': time must be a non-negative safe integer (ns), got ${time}`);
    }
    if (!isInteger(priority) || priority < 0 || priority > MAX_PRIORITY) {
      throw new SimError('queue', `event '${label}': priority must be an integer in [0, ${MAX_PRIORITY}], got ${priority}`);
    }
    const seq = this.seq++;
    if (seq >= SEQ_LIMIT) throw new SimError('queue', `event queue sequence space exhausted (${SEQ_LIMIT} events)`);
    const ev = new QueuedEvent(this, time, priority, seq, fn, label, owner);
    if (this.n === this.cap) this.grow();
    let id: number;
    if (this.nfree > 0) {
      id = this.free[--this.nfree]!;
      this.slots[id] = ev;
    } else {
      id = this.slots.length;
      this.slots.push(ev);
    }
    const key = priority * SEQ_LIMIT + seq;
    const T = this.ht;
    const K = this.hk;
    const I = this.hi;
    let i = this.n++;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const pt = T[p]!;
      if (pt < time || (pt === time && K[p]! < key)) break;
      T[i] = pt;
      K[i] = K[p]!;
      I[i] = I[p]!;
      i = p;
    }
    T[i] = time;
    K[i] = key;
    I[i] = id;
    return ev;
  }

  /**
   * Whether an event pushed now at (`time`, `priority`) would be the next one popped: no live
   * event is ordered before it. (A new event's sequence number is the largest, so a queued event
   * with the same time and priority comes first.)
   */
  wouldRunFirst(time: number, priority: number): boolean {
    this.dropDeadTop();
    if (this.n === 0) return true;
    const t0 = this.ht[0]!;
    return t0 > time || (t0 === time && this.hk[0]! >= (priority + 1) * SEQ_LIMIT);
  }

  /** Time of the earliest live event, or undefined when none is queued. */
  peekTime(): number | undefined {
    this.dropDeadTop();
    return this.n > 0 ? this.ht[0] : undefined;
  }

  /** The earliest live event without removing it. */
  peek(): QueuedEvent | undefined {
    this.dropDeadTop();
    return this.n > 0 ? this.slots[this.hi[0]!] : undefined;
  }

  /** Removes and returns the earliest live event (marking it no longer pending). */
  pop(): QueuedEvent | undefined {
    for (;;) {
      if (this.n === 0) return undefined;
      const ev = this.removeTop();
      if (ev.st === PENDING) {
        ev.st = FIRED;
        return ev;
      }
      this.dead--;
    }
  }

  /** Live (not cancelled, not yet popped) events. */
  get size(): number {
    return this.n - this.dead;
  }

  /** Heap entries including cancelled ones not yet dropped (diagnostics). */
  get heapSize(): number {
    return this.n;
  }

  /** Live events in run order (allocates and sorts; for debugging and reports). */
  list(): QueuedEvent[] {
    const out: QueuedEvent[] = [];
    for (let j = 0; j < this.n; j++) {
      const ev = this.slots[this.hi[j]!]!;
      if (ev.st === PENDING) out.push(ev);
    }
    return out.sort((a, b) => a.time - b.time || a.priority - b.priority || a.seq - b.seq);
  }

  /** @internal Called by `QueuedEvent.cancel`. */
  noteCancelled(): void {
    this.dead++;
    if (this.dead >= 64 && this.dead > this.n - this.dead) this.compact();
  }

  private dropDeadTop(): void {
    while (this.n > 0 && this.slots[this.hi[0]!]!.st !== PENDING) {
      this.removeTop();
      this.dead--;
    }
  }

  /** Removes the heap root (n > 0) and returns its event. */
  private removeTop(): QueuedEvent {
    const I = this.hi;
    const id = I[0]!;
    const m = --this.n;
    if (m > 0) this.siftDown(0, this.ht[m]!, this.hk[m]!, I[m]!, m);
    const ev = this.slots[id]!;
    this.slots[id] = undefined;
    this.free[this.nfree++] = id;
    return ev;
  }

  /** Places entry (t, k, id) into the hole at `i`, sifting it down within the first `m` entries. */
  private siftDown(i: number, t: number, k: number, id: number, m: number): void {
    const T = this.ht;
    const K = this.hk;
    const I = this.hi;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= m) break;
      let c = l;
      const r = l + 1;
      if (r < m) {
        const tr = T[r]!;
        const tl = T[l]!;
        if (tr < tl || (tr === tl && K[r]! < K[l]!)) c = r;
      }
      const tc = T[c]!;
      if (t < tc || (t === tc && k < K[c]!)) break;
      T[i] = tc;
      K[i] = K[c]!;
      I[i] = I[c]!;
      i = c;
    }
    T[i] = t;
    K[i] = k;
    I[i] = id;
  }

  private grow(): void {
    const cap = this.cap * 2;
    const t = new Float64Array(cap);
    t.set(this.ht);
    const k = new Float64Array(cap);
    k.set(this.hk);
    const i = new Int32Array(cap);
    i.set(this.hi);
    const f = new Int32Array(cap);
    f.set(this.free);
    this.ht = t;
    this.hk = k;
    this.hi = i;
    this.free = f;
    this.cap = cap;
  }

  /** Drops every cancelled entry and rebuilds the heap (Floyd). Pop order is unchanged: keys are unique. */
  private compact(): void {
    const T = this.ht;
    const K = this.hk;
    const I = this.hi;
    let w = 0;
    for (let j = 0; j < this.n; j++) {
      const id = I[j]!;
      if (this.slots[id]!.st === PENDING) {
        T[w] = T[j]!;
        K[w] = K[j]!;
        I[w] = id;
        w++;
      } else {
        this.slots[id] = undefined;
        this.free[this.nfree++] = id;
      }
    }
    this.n = w;
    this.dead = 0;
    for (let j = (w >> 1) - 1; j >= 0; j--) this.siftDown(j, T[j]!, K[j]!, I[j]!, w);
  }
}
