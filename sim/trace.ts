/**
 * The trace bus: every component reports what happened as a flat record
 * `{t, cpu, src, event, ...fields}`. The bus stamps the virtual time, counts events per name, keeps
 * a running 64-bit hash of everything emitted and hands records to listeners (checkers, recorders,
 * printers). "Same scenario + same seed => identical trace" is one comparison of `hash`.
 *
 * The hash never serializes to text: each record becomes a short run of 32-bit words, fed to two
 * murmur3-style lanes (docs/trace-format.md#the-trace-hash describes the encoding in full). A
 * record of an event in the trace catalogue is hashed as its event's fingerprint (event name,
 * source and the catalogue's field names, computed once per event and source), one shape word per
 * eight values giving each value's kind, then the values themselves as integers: the time, the CPU
 * and the fields in the catalogue's order, whatever order the emit site wrote them in. A string
 * value is hashed by content, as its 64-bit fingerprint. Other records (names outside the
 * catalogue, fields it does not declare) take a generic, tagged encoding that hashes names too.
 * `hash` finalizes copies of the lanes into 16 hex digits; emitting continues from the
 * unfinalized state.
 */
import { EventEmitter } from 'eventemitter3';
import { specSources, TRACE_EVENT_SPECS } from '../shared-abi/trace-catalogue';
import type { FieldlessEventName, TraceEventFrom, TraceEventName, TraceFieldsOf, TraceSource, TraceSourceOf, TraceValue } from '../shared-abi/trace-catalogue';
import { formatTime } from './clock';
import { SimError } from './errors';

export type { AnyTraceRecord, FieldlessEventName, TraceEventFrom, TraceEventName, TraceFieldsOf, TraceRecordOf, TraceSource, TraceSourceOf, TraceValue } from '../shared-abi/trace-catalogue';

// Globals used on hot paths, bound once: inside a vm context (Jest) each global lookup goes
// through an interceptor and costs ~100 ns (docs/performance.md).
const { imul } = Math;
const { isSafeInteger } = Number;

/** Extra fields of a record, hashed in insertion order. Keys `t`, `cpu`, `src`, `event` are reserved. */
export type TraceFields = Readonly<Record<string, TraceValue>>;

/**
 * One trace record as the bus hands it to listeners, fields untyped (sinks that print any record).
 * Consumers that read fields subscribe through harness/trace/consumer.ts and get
 * `TraceRecordOf<E>` for the events they declare. `cpu` is -1 when the record is not per-CPU.
 */
export interface TraceRecord {
  t: number;
  cpu: number;
  src: TraceSource;
  event: string;
  [field: string]: unknown;
}

/** Events of the bus itself (eventemitter3 typed events). */
export interface TraceBusEvents {
  record: (rec: TraceRecord) => void;
}

export interface TraceBusOptions {
  /** Keep the running hash (default true). With false, `hash` throws. */
  hashEnabled?: boolean;
}

/**
 * Where trace records are emitted: the event must be in the trace catalogue
 * (shared-abi/trace-catalogue.ts), `src` one of its sources, and `fields` exactly its fields with
 * their types, so a misspelt event or field fails to compile at the emit site. Events without
 * fields may leave `fields` out. The order of the keys in `fields` is the order they are hashed in.
 */
export interface TraceEmitter {
  emit<E extends TraceEventName>(src: TraceSourceOf<E>, cpu: number, event: E, fields: TraceFieldsOf<E>): void;
  emit<E extends FieldlessEventName>(src: TraceSourceOf<E>, cpu: number, event: E): void;
}

/**
 * A typed emitter whose owner fixes the source and the CPU (a vCPU's host records, the guest kernel
 * on the CPU it runs on): the same compile-time checks as `TraceEmitter.emit`, for the events
 * source `S` may emit.
 */
export interface SourceTrace<S extends TraceSource> {
  <E extends TraceEventFrom<S>>(event: E, fields: TraceFieldsOf<E>): void;
  <E extends TraceEventFrom<S> & FieldlessEventName>(event: E): void;
}

/**
 * Emits without the catalogue's compile-time checks. Only for wrappers that forward a record
 * whose event and fields their own (typed) signature has already checked, and for tests of the
 * bus itself.
 */
export function forwardEmit(bus: TraceEmitter, src: TraceSource, cpu: number, event: string, fields?: TraceFields): void {
  (bus as unknown as { emit(src: TraceSource, cpu: number, event: string, fields?: TraceFields): void }).emit(src, cpu, event, fields);
}

/** A `SourceTrace` that emits on `bus` as `src`, on the CPU `cpu()` names at the time of the call. */
export function sourceTrace<S extends TraceSource>(bus: TraceEmitter, src: S, cpu: () => number): SourceTrace<S> {
  const emit = (event: string, fields?: TraceFields): void => forwardEmit(bus, src, cpu(), event, fields);
  return emit as SourceTrace<S>;
}

/** Anything with a virtual `now` in ns (a `VirtualClock`). */
export interface TimeSource {
  readonly now: number;
}

// Tag words of the canonical encoding.
const TAG_END = 0x454e4421;
const TAG_INT32 = 1;
const TAG_INT53 = 2;
const TAG_F64 = 3;
const TAG_BIGINT = 4;
const TAG_STRING = 5;
const TAG_TRUE = 6;
const TAG_FALSE = 7;
const TAG_NULL = 8;
const TAG_UNDEFINED = 9;

const TWO32 = 0x1_0000_0000;
const f64Scratch = new DataView(new ArrayBuffer(8));

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/** One murmur3 body step of the first lane: mix word `k` into state `h`. */
function lane1(h: number, k: number): number {
  let k1 = imul(k, 0xcc9e2d51);
  k1 = imul((k1 << 15) | (k1 >>> 17), 0x1b873593);
  h ^= k1;
  h = (h << 13) | (h >>> 19);
  return (imul(h, 5) + 0xe6546b64) | 0;
}

/** The second lane: the same step with other constants and rotations. */
function lane2(h: number, k: number): number {
  let k2 = imul(k, 0x85ebca77);
  k2 = imul((k2 << 17) | (k2 >>> 15), 0xc2b2ae3d);
  h ^= k2;
  h = (h << 19) | (h >>> 13);
  return (imul(h, 5) + 0x561ccd1b) | 0;
}

/** Strings up to this length have their fingerprint cached (event names, field names, short values). */
const FP_CACHE_MAX_LEN = 64;
/** Cache size bound: beyond it, fingerprints are computed every time (memory stays flat). */
const FP_CACHE_MAX_ENTRIES = 1 << 14;
/** string -> its two fingerprint words, interleaved: [lane1, lane2]. A pure function, so sharing it is safe. */
const fpCache = new Map<string, Int32Array>();

/** The 64-bit fingerprint of `s`: two murmur3-style lanes over length and code-unit pairs, finalized. */
function computeFingerprint(s: string): Int32Array {
  let a = 0x3c6ef372 | 0;
  let b = 0xa54ff53a | 0;
  const n = s.length;
  let k = n;
  let i = 0;
  for (;;) {
    a = lane1(a, k);
    b = lane2(b, k);
    if (i >= n) break;
    k = i + 1 < n ? s.charCodeAt(i) | (s.charCodeAt(i + 1) << 16) : s.charCodeAt(i);
    i += 2;
  }
  const out = new Int32Array(2);
  out[0] = fmix32(a ^ n);
  out[1] = fmix32(b ^ imul(n, 0x9e3779b1));
  return out;
}

/** Direct-mapped front cache of `fpCache`, indexed by a cheap function of the string. */
const FRONT_SIZE = 512;
const frontKeys: (string | undefined)[] = new Array<string | undefined>(FRONT_SIZE).fill(undefined);
const frontFps: Int32Array[] = new Array<Int32Array>(FRONT_SIZE).fill(new Int32Array(2));

function fingerprint(s: string): Int32Array {
  const n = s.length;
  const slot = n === 0 ? 0 : (n * 31 + s.charCodeAt(n >> 1) * 7 + s.charCodeAt(n - 1)) & (FRONT_SIZE - 1);
  if (frontKeys[slot] === s) return frontFps[slot]!;
  let fp = fpCache.get(s);
  if (fp === undefined) {
    fp = computeFingerprint(s);
    if (n > FP_CACHE_MAX_LEN) return fp;
    if (fpCache.size < FP_CACHE_MAX_ENTRIES) fpCache.set(s, fp);
  }
  frontKeys[slot] = s;
  frontFps[slot] = fp;
  return fp;
}

/** Most words one field can take: key (2) + a tagged value (at most 3). */
const MAX_FIELD_WORDS = 5;

// Word writers: each stores its item at w[n..] and returns the next free index. The caller makes
// sure there is room (the fixed part of a record fits the initial buffer; fields are checked).

function putString(w: Int32Array, n: number, s: string): number {
  const fp = fingerprint(s);
  w[n] = fp[0]!;
  w[n + 1] = fp[1]!;
  return n + 2;
}

function putNumber(w: Int32Array, n: number, v: number): number {
  if ((v | 0) === v) {
    w[n] = TAG_INT32;
    w[n + 1] = v;
    return n + 2;
  }
  if (isSafeInteger(v)) {
    const lo = v >>> 0;
    w[n] = TAG_INT53;
    w[n + 1] = lo;
    w[n + 2] = (v - lo) / TWO32;
    return n + 3;
  }
  f64Scratch.setFloat64(0, v, true);
  w[n] = TAG_F64;
  w[n + 1] = f64Scratch.getInt32(0, true);
  w[n + 2] = f64Scratch.getInt32(4, true);
  return n + 3;
}

function putValue(w: Int32Array, n: number, v: TraceValue): number {
  switch (typeof v) {
    case 'number':
      return putNumber(w, n, v);
    case 'string':
      w[n] = TAG_STRING;
      return putString(w, n + 1, v);
    case 'boolean':
      w[n] = v ? TAG_TRUE : TAG_FALSE;
      return n + 1;
    case 'bigint':
      w[n] = TAG_BIGINT;
      return putString(w, n + 1, v.toString(16));
    case 'undefined':
      w[n] = TAG_UNDEFINED;
      return n + 1;
    default:
      if (v === null) {
        w[n] = TAG_NULL;
        return n + 1;
      }
      throw new SimError('trace', `trace field value of type ${typeof v} cannot be hashed`);
  }
}

function isReserved(k: string): boolean {
  return k === 't' || k === 'cpu' || k === 'src' || k === 'event';
}

// Value kinds of the catalogue encoding, four bits each in a record's shape words.
const K_ABSENT = 0;
const K_INT32 = 1;
const K_INT53 = 2;
const K_F64 = 3;
const K_STRING = 4;
const K_BIGINT = 5;
const K_TRUE = 6;
const K_FALSE = 7;
const K_NULL = 8;
const K_UNDEFINED = 9;

/**
 * Writes value `v` at w[n..] with no tag and returns `(next index << 4) | kind`: the kind goes to
 * the record's shape word instead (int32: 1 word; other safe integers and doubles: 2; strings and
 * bigints: their 2-word fingerprint; booleans, null, undefined: none).
 */
function putKinded(w: Int32Array, n: number, v: TraceValue): number {
  switch (typeof v) {
    case 'number':
      if ((v | 0) === v) {
        w[n] = v;
        return ((n + 1) << 4) | K_INT32;
      }
      if (isSafeInteger(v)) {
        const lo = v >>> 0;
        w[n] = lo;
        w[n + 1] = (v - lo) / TWO32;
        return ((n + 2) << 4) | K_INT53;
      }
      f64Scratch.setFloat64(0, v, true);
      w[n] = f64Scratch.getInt32(0, true);
      w[n + 1] = f64Scratch.getInt32(4, true);
      return ((n + 2) << 4) | K_F64;
    case 'string':
      return (putString(w, n, v) << 4) | K_STRING;
    case 'boolean':
      return (n << 4) | (v ? K_TRUE : K_FALSE);
    case 'bigint':
      return (putString(w, n, v.toString(16)) << 4) | K_BIGINT;
    case 'undefined':
      return (n << 4) | K_UNDEFINED;
    default:
      if (v === null) return (n << 4) | K_NULL;
      throw new SimError('trace', `trace field value of type ${typeof v} cannot be hashed`);
  }
}

/** What the bus keeps per catalogue event: its fields in catalogue order and its fingerprints. */
interface EventEntry {
  /** Index into a bus's per-event arrays. */
  readonly id: number;
  readonly fields: readonly string[];
  readonly fieldSet: ReadonlySet<string>;
  readonly open: boolean;
  /** Shape words: one per eight values (time, CPU, then the fields). */
  readonly shapeWords: number;
  readonly srcs: readonly string[];
  /** Fingerprint of (event, srcs[i], fields, open) as two words each. */
  readonly fpA: readonly number[];
  readonly fpB: readonly number[];
}

const ENTRIES = new Map<string, EventEntry>();
for (const [name, spec] of Object.entries(TRACE_EVENT_SPECS)) {
  const fields = Object.keys(spec.fields);
  const srcs = specSources(spec);
  const open = spec.open === true;
  const fps = srcs.map((src) => computeFingerprint(JSON.stringify(['apf-trace-record/2', name, src, fields, open])));
  ENTRIES.set(name, {
    id: ENTRIES.size,
    fields,
    fieldSet: new Set(fields),
    open,
    shapeWords: Math.ceil((fields.length + 2) / 8),
    srcs,
    fpA: fps.map((f) => f[0]!),
    fpB: fps.map((f) => f[1]!),
  });
}
const N_ENTRIES = ENTRIES.size;
/** The two words that open a record in the generic encoding (a fingerprint no event can have, up to 2^-64). */
const GENERIC = computeFingerprint('apf-trace-record/2 generic');
const GENERIC_A = GENERIC[0]!;
const GENERIC_B = GENERIC[1]!;

/** A record listener. */
export type TraceListener = (rec: TraceRecord) => void;

/** Trace bus with running hash and per-event counts. */
export class TraceBus implements TraceEmitter {
  private readonly ee = new EventEmitter<TraceBusEvents>();
  private listeners = 0;
  private h1 = 0x243f6a88 | 0;
  private h2 = 0x85a308d3 | 0;
  private words = 0;
  /** The words of the record being hashed (reused; grows for records with many fields). */
  private buf: Int32Array = new Int32Array(64);
  private nrec = 0;
  /** Records per catalogue event (by entry id); other names in `otherCounts`. */
  private readonly cnt: number[] = new Array<number>(N_ENTRIES).fill(0);
  private readonly otherCounts = new Map<string, number>();
  /** Event names in order of first appearance. */
  private readonly order: string[] = [];
  /** Per-event subscribers (by entry id; `undefined`: none); other names in `otherSubs`. */
  private readonly subs: (TraceListener[] | undefined)[] = new Array<TraceListener[] | undefined>(N_ENTRIES).fill(undefined);
  private readonly otherSubs = new Map<string, TraceListener[]>();
  /** Whether the running hash is kept. */
  readonly hashEnabled: boolean;

  constructor(
    private readonly clock: TimeSource,
    opts: TraceBusOptions = {},
  ) {
    this.hashEnabled = opts.hashEnabled ?? true;
  }

  /**
   * Records one event at the current virtual time. Hashes and counts it, and hands a fresh
   * record to listeners (the record is only built when someone listens to it: a `record`
   * listener, or a subscriber of this event).
   */
  emit<E extends TraceEventName>(src: TraceSourceOf<E>, cpu: number, event: E, fields: TraceFieldsOf<E>): void;
  emit<E extends FieldlessEventName>(src: TraceSourceOf<E>, cpu: number, event: E): void;
  emit(src: TraceSource, cpu: number, event: string, fields?: TraceFields): void {
    const t = this.clock.now;
    this.nrec++;
    const e = ENTRIES.get(event);
    let subs: TraceListener[] | undefined;
    if (e !== undefined) {
      const id = e.id;
      const c = this.cnt[id]!;
      if (c === 0) this.order.push(event);
      this.cnt[id] = c + 1;
      subs = this.subs[id];
    } else {
      const c = this.otherCounts.get(event);
      if (c === undefined) this.order.push(event);
      this.otherCounts.set(event, c === undefined ? 1 : c + 1);
      subs = this.otherSubs.size === 0 ? undefined : this.otherSubs.get(event);
    }
    const hashing = this.hashEnabled;
    const rec: TraceRecord | null = this.listeners > 0 || subs !== undefined ? { t, cpu, src, event } : null;
    let nf = 0;
    if (fields !== undefined && (hashing || rec !== null)) {
      for (const k in fields) {
        if (isReserved(k)) this.reserved(event, k);
        if (rec !== null) rec[k] = fields[k];
        nf++;
      }
    }
    if (hashing) {
      let n = e === undefined ? -1 : this.encodeCatalogued(e, src, cpu, t, fields, nf);
      if (n < 0) n = this.encodeGeneric(src, cpu, event, t, fields);
      this.mixWords(n);
    }
    if (rec !== null) {
      if (this.listeners > 0) this.ee.emit('record', rec);
      if (subs !== undefined) for (let i = 0; i < subs.length; i++) subs[i]!(rec);
    }
  }

  /**
   * The catalogue encoding of a record into `buf`; returns its word count, or -1 when the record
   * does not fit its catalogue entry (a source or field the entry does not declare), which then
   * takes the generic encoding.
   */
  private encodeCatalogued(e: EventEntry, src: string, cpu: number, t: number, fields: TraceFields | undefined, nf: number): number {
    let s = 0;
    const srcs = e.srcs;
    while (s < srcs.length && srcs[s] !== src) s++;
    if (s === srcs.length) return -1;
    const names = e.fields;
    const nv = names.length;
    let w = this.buf;
    if (2 + e.shapeWords + 3 * (nv + 2) + 1 > w.length) w = this.grow(2 + e.shapeWords + 3 * (nv + 2) + 1);
    w[0] = e.fpA[s]!;
    w[1] = e.fpB[s]!;
    const shape0 = 2;
    let n = shape0 + e.shapeWords;
    let r = putKinded(w, n, t);
    let shape = r & 15;
    r = putKinded(w, r >>> 4, cpu);
    shape |= (r & 15) << 4;
    n = r >>> 4;
    let present = 0;
    for (let i = 0; i < nv; i++) {
      const name = names[i]!;
      const v = fields === undefined ? undefined : fields[name];
      let kind: number;
      if (v === undefined && (fields === undefined || !(name in fields))) {
        kind = K_ABSENT;
      } else {
        present++;
        r = putKinded(w, n, v);
        n = r >>> 4;
        kind = r & 15;
      }
      const slot = i + 2;
      shape |= kind << ((slot & 7) << 2);
      if ((slot & 7) === 7) {
        w[shape0 + (slot >>> 3)] = shape;
        shape = 0;
      }
    }
    if (((nv + 2) & 7) !== 0) w[shape0 + ((nv + 2) >>> 3)] = shape;
    if (present !== nf || e.open) {
      if (!e.open) return -1;
      // Further fields of an open event, in the order they were written: a count, then (name, tagged value) each.
      w[n++] = nf - present;
      if (fields !== undefined && nf > present) {
        for (const k in fields) {
          if (e.fieldSet.has(k)) continue;
          if (n + MAX_FIELD_WORDS > w.length) w = this.grow(n + MAX_FIELD_WORDS);
          n = putString(w, n, k);
          n = putValue(w, n, fields[k]);
        }
      }
    }
    return n;
  }

  /** The generic encoding: GENERIC, str(event), num(t), num(cpu), str(src), { str(key), value }*, END, field count. */
  private encodeGeneric(src: string, cpu: number, event: string, t: number, fields: TraceFields | undefined): number {
    let w = this.buf;
    w[0] = GENERIC_A;
    w[1] = GENERIC_B;
    let n = putString(w, 2, event);
    n = putNumber(w, n, t);
    n = putNumber(w, n, cpu);
    n = putString(w, n, src);
    let nf = 0;
    if (fields !== undefined) {
      for (const k in fields) {
        if (n + MAX_FIELD_WORDS + 2 > w.length) w = this.grow(n + MAX_FIELD_WORDS + 2);
        n = putString(w, n, k);
        n = putValue(w, n, fields[k]);
        nf++;
      }
    }
    w[n] = TAG_END;
    w[n + 1] = nf;
    return n + 2;
  }

  /** Subscribes to every record. */
  on<E extends keyof TraceBusEvents>(event: E, fn: TraceBusEvents[E]): this {
    this.ee.on(event, fn);
    this.listeners = this.ee.listenerCount('record');
    return this;
  }

  /** Unsubscribes. */
  off<E extends keyof TraceBusEvents>(event: E, fn: TraceBusEvents[E]): this {
    this.ee.off(event, fn);
    this.listeners = this.ee.listenerCount('record');
    return this;
  }

  /**
   * Subscribes `fn` to the records of `events` only: records of other events are not even built
   * for it. Records reach `record` listeners first, then the subscribers of their event in the
   * order they subscribed. Returns the function that unsubscribes.
   */
  subscribe(events: Iterable<string>, fn: TraceListener): () => void {
    const lists: TraceListener[][] = [];
    for (const ev of new Set(events)) {
      const e = ENTRIES.get(ev);
      let list = e === undefined ? this.otherSubs.get(ev) : this.subs[e.id];
      if (list === undefined) {
        list = [];
        if (e === undefined) this.otherSubs.set(ev, list);
        else this.subs[e.id] = list;
      }
      list.push(fn);
      lists.push(list);
    }
    return () => {
      for (const list of lists) {
        const i = list.indexOf(fn);
        if (i >= 0) list.splice(i, 1);
      }
      for (let id = 0; id < N_ENTRIES; id++) if (this.subs[id]?.length === 0) this.subs[id] = undefined;
      for (const [ev, list] of [...this.otherSubs]) if (list.length === 0) this.otherSubs.delete(ev);
    };
  }

  /** Running hash of every record so far: 16 hex digits. Throws if hashing is disabled. */
  get hash(): string {
    if (!this.hashEnabled) throw new SimError('trace', 'trace hashing is disabled (TraceBus was built with hashEnabled: false)');
    const n = this.words | 0;
    let a = fmix32(this.h1 ^ n);
    let b = fmix32(this.h2 ^ imul(n, 0x9e3779b1));
    a = (a + b) | 0;
    b = (b + a) | 0;
    return (a >>> 0).toString(16).padStart(8, '0') + (b >>> 0).toString(16).padStart(8, '0');
  }

  /** Records emitted so far. */
  get recordCount(): number {
    return this.nrec;
  }

  /** Records per event name, in order of first appearance. */
  counts(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const k of this.order) out[k] = this.countOf(k);
    return out;
  }

  /** Records emitted so far with this event name. */
  countOf(event: string): number {
    const e = ENTRIES.get(event);
    return e === undefined ? (this.otherCounts.get(event) ?? 0) : this.cnt[e.id]!;
  }

  private reserved(event: string, k: string): never {
    throw new SimError('trace', `trace event '${event}': field name '${k}' is reserved (t, cpu, src and event are set by the bus)`);
  }

  /** Grows the word buffer to at least `min` words (records with many fields), keeping what is in it. */
  private grow(min: number): Int32Array {
    let size = this.buf.length * 2;
    while (size < min) size *= 2;
    const bigger = new Int32Array(size);
    bigger.set(this.buf);
    this.buf = bigger;
    return bigger;
  }

  /** Feeds the record's words to both lanes (murmur3 body steps, two constant sets). */
  private mixWords(n: number): void {
    const w = this.buf;
    let h1 = this.h1;
    let h2 = this.h2;
    for (let i = 0; i < n; i++) {
      const k = w[i]!;
      h1 = lane1(h1, k);
      h2 = lane2(h2, k);
    }
    this.h1 = h1;
    this.h2 = h2;
    this.words += n;
  }
}

/** A record pattern: each key must equal the record's value, or satisfy the predicate given. */
export type TracePattern = Readonly<Record<string, TraceValue | ((value: unknown) => boolean)>>;

/** True when every key of `pattern` matches `rec` (strict equality, NaN matches NaN, functions are predicates). */
export function matchRecord(rec: TraceRecord, pattern: TracePattern): boolean {
  for (const k in pattern) {
    const want = pattern[k];
    const got = rec[k];
    if (typeof want === 'function') {
      if (!want(got)) return false;
    } else if (want !== got && !(want !== want && got !== got)) {
      return false;
    }
  }
  return true;
}

/** One line per record: `     0.000001234 cpu0 host    kvm_async_pf_not_present token=1 gpa=0x1000`. */
export function formatRecord(rec: TraceRecord): string {
  let line = `${formatTime(rec.t)} ${rec.cpu >= 0 ? ('cpu' + rec.cpu).padEnd(5) : '-'.padEnd(5)} ${rec.src.padEnd(7)} ${rec.event}`;
  for (const k in rec) {
    if (isReserved(k)) continue;
    line += ` ${k}=${formatValue(rec[k])}`;
  }
  return line;
}

function formatValue(v: unknown): string {
  if (typeof v === 'bigint') return '0x' + v.toString(16);
  if (typeof v === 'string') return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  return String(v);
}

/** Collects records from a bus into `records` (tests, CLI). Optionally keeps only matching ones. */
export class TraceRecorder {
  readonly records: TraceRecord[] = [];
  private attached = true;
  private readonly listener = (rec: TraceRecord): void => {
    if (this.keep === undefined || (typeof this.keep === 'function' ? this.keep(rec) : matchRecord(rec, this.keep))) {
      this.records.push(rec);
    }
  };

  constructor(
    private readonly bus: TraceBus,
    private readonly keep?: TracePattern | ((rec: TraceRecord) => boolean),
  ) {
    bus.on('record', this.listener);
  }

  /** Stops recording (records so far stay). */
  detach(): void {
    if (!this.attached) return;
    this.attached = false;
    this.bus.off('record', this.listener);
  }

  /** First recorded record matching `pattern`. */
  find(pattern: TracePattern): TraceRecord | undefined {
    return this.records.find((r) => matchRecord(r, pattern));
  }

  /** All recorded records matching `pattern`. */
  filter(pattern: TracePattern): TraceRecord[] {
    return this.records.filter((r) => matchRecord(r, pattern));
  }

  /** Number of recorded records matching `pattern`. */
  count(pattern: TracePattern): number {
    let n = 0;
    for (const r of this.records) if (matchRecord(r, pattern)) n++;
    return n;
  }

  /** Forgets recorded records. */
  clear(): void {
    this.records.length = 0;
  }

  /** The records formatted one per line (`formatRecord`). */
  lines(): string[] {
    return this.records.map(formatRecord);
  }
}
