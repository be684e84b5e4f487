/**
 * The trace bus: every component reports what happened as a flat record
 * `{t, cpu, src, event, ...fields}`. The bus stamps the virtual time, counts events per name, keeps
 * a running 64-bit hash of everything emitted and hands records to listeners (checkers, recorders,
 * printers). "Same scenario + same seed => identical trace" is one comparison of `hash`.
 *
 * The hash never serializes to text. Each record is turned into 32-bit words:
 *   RECORD, str(event), num(t), num(cpu), str(src), { str(key), value }*, END, fieldCount
 * where str(s) is the string's 64-bit fingerprint as two words (two murmur3-style lanes over its
 * length and UTF-16 code units, two per word, each finalized with fmix32; computed once per
 * distinct short string and cached); num(v) is INT32 + v when v is an int32, INT53 + low word +
 * high word for other safe integers, F64 + the two little-endian words of the double otherwise
 * (-0 hashes like 0); a string value is STRING + str(v); a bigint is BIGINT + str(hex); booleans,
 * null and undefined are one tag word each. Every item is of fixed length or tagged, so different
 * traces give different word streams (up to a fingerprint collision, about 2^-64 per pair of
 * distinct strings). The words go to two murmur3-style lanes with different constants. `hash`
 * finalizes copies of the lanes (fmix32 with the word count) into 16 hex digits; emitting
 * continues from the unfinalized state.
 */
import { EventEmitter } from 'eventemitter3';
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
const TAG_RECORD = 0x52454331;
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
  private readonly perEvent = new Map<string, number>();
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
   * record to listeners (the record is only built when someone listens).
   */
  emit<E extends TraceEventName>(src: TraceSourceOf<E>, cpu: number, event: E, fields: TraceFieldsOf<E>): void;
  emit<E extends FieldlessEventName>(src: TraceSourceOf<E>, cpu: number, event: E): void;
  emit(src: TraceSource, cpu: number, event: string, fields?: TraceFields): void {
    const t = this.clock.now;
    this.nrec++;
    const c = this.perEvent.get(event);
    this.perEvent.set(event, c === undefined ? 1 : c + 1);
    const hashing = this.hashEnabled;
    const rec: TraceRecord | null = this.listeners > 0 ? { t, cpu, src, event } : null;
    let w = this.buf;
    let n = 0;
    if (hashing) {
      w[0] = TAG_RECORD;
      n = putString(w, 1, event);
      n = putNumber(w, n, t);
      n = putNumber(w, n, cpu);
      n = putString(w, n, src);
    }
    let nf = 0;
    if (fields !== undefined && (hashing || rec !== null)) {
      // One pass over the fields feeds the hash and fills the record.
      for (const k in fields) {
        if (isReserved(k)) this.reserved(event, k);
        const v = fields[k];
        if (hashing) {
          if (n + MAX_FIELD_WORDS + 2 > w.length) w = this.grow();
          n = putString(w, n, k);
          n = putValue(w, n, v);
        }
        if (rec !== null) rec[k] = v;
        nf++;
      }
    }
    if (hashing) {
      w[n] = TAG_END;
      w[n + 1] = nf;
      this.mixWords(n + 2);
    }
    if (rec !== null) this.ee.emit('record', rec);
  }

  /** Subscribes to records. */
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
    for (const [k, v] of this.perEvent) out[k] = v;
    return out;
  }

  /** Records emitted so far with this event name. */
  countOf(event: string): number {
    return this.perEvent.get(event) ?? 0;
  }

  private reserved(event: string, k: string): never {
    throw new SimError('trace', `trace event '${event}': field name '${k}' is reserved (t, cpu, src and event are set by the bus)`);
  }

  /** Doubles the word buffer (records with many fields), keeping what is in it. */
  private grow(): Int32Array {
    const bigger = new Int32Array(this.buf.length * 2);
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
