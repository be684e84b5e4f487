/**
 * Seeded pseudo-random numbers: xoshiro128** (Blackman and Vigna) in 32-bit integer operations,
 * with named streams.
 *
 * Every generator has a 64-bit key. The root key is a hash of the canonical seed; a stream's key
 * is a hash of its parent's key and its name. A generator's state is expanded from its key with
 * SplitMix64, so a stream depends only on (seed, path of names): drawing from one stream never
 * shifts another, and adding a new stream changes nobody's numbers. Key derivation uses BigInt
 * (rare); drawing uses only int32 arithmetic (hot).
 *
 * Probabilities are integer ratios (`bool(1, 8)`), never floats, so a scenario's odds are exact.
 */
import { SimError } from './errors';

// Globals used on hot paths, bound once: inside a vm context (Jest) each global lookup goes
// through an interceptor and costs ~100 ns (docs/performance.md).
const { imul, log } = Math;
const { isSafeInteger, isInteger, isFinite: isFiniteNumber } = Number;

const MASK64 = (1n << 64n) - 1n;
const FNV64_OFFSET = 0xcbf29ce484222325n;
const FNV64_PRIME = 0x100000001b3n;
const GOLDEN64 = 0x9e3779b97f4a7c15n;
const TWO32 = 0x1_0000_0000;
const TWO53 = 2 ** 53;

/** SplitMix64's output function (Stafford variant 13). */
function mix64(z: bigint): bigint {
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return z ^ (z >> 31n);
}

/** FNV-1a 64 over a length-prefixed string (UTF-16 code units, two bytes each), starting from `h`. */
function hashString(h: bigint, str: string): bigint {
  const feed = (byte: number): void => {
    h = ((h ^ BigInt(byte)) * FNV64_PRIME) & MASK64;
  };
  const len = str.length;
  for (let i = 0; i < 4; i++) feed((len >>> (8 * i)) & 0xff);
  for (let i = 0; i < len; i++) {
    const c = str.charCodeAt(i);
    feed(c & 0xff);
    feed(c >>> 8);
  }
  return h;
}

/** The canonical text of a seed: integers (number, bigint, decimal or 0x-hex string) print in decimal; other strings stay as they are. */
export function canonicalSeed(seed: number | bigint | string): string {
  if (typeof seed === 'number') {
    if (!isSafeInteger(seed)) throw new SimError('prng', `seed must be a safe integer, a bigint or a string, got ${seed}`);
    return String(seed);
  }
  if (typeof seed === 'bigint') return seed.toString();
  if (seed.length === 0) throw new SimError('prng', 'seed must not be an empty string');
  if (/^-?[0-9]+$/.test(seed)) return BigInt(seed).toString();
  if (/^0x[0-9a-f]+$/i.test(seed)) return BigInt(seed).toString();
  return seed;
}

/** A seeded generator. `stream(name)` derives independent child generators. */
export class Prng {
  // xoshiro128** state, kept as int32 values (only results are made unsigned).
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;
  private n = 0;
  private key: bigint;
  private seedText: string;
  private streamPath: string;
  private readonly children = new Map<string, Prng>();

  constructor(seed: number | bigint | string) {
    this.seedText = canonicalSeed(seed);
    this.streamPath = '';
    this.key = mix64(hashString(FNV64_OFFSET, 'apf-prng/v1 seed ' + this.seedText));
    this.init();
  }

  /** Builds a generator from raw xoshiro128** state (tests, checkpoints). Its streams derive from the state. */
  static fromState(state: readonly [number, number, number, number]): Prng {
    const p = new Prng(0);
    p.streamPath = '(raw)';
    p.seedText = 'state:' + state.map((w) => (w >>> 0).toString(16).padStart(8, '0')).join('');
    p.key = mix64(BigInt(state[0] >>> 0) | (BigInt(state[1] >>> 0) << 32n)) ^ BigInt(state[2] >>> 0) ^ (BigInt(state[3] >>> 0) << 32n);
    p.s0 = state[0] | 0;
    p.s1 = state[1] | 0;
    p.s2 = state[2] | 0;
    p.s3 = state[3] | 0;
    if ((p.s0 | p.s1 | p.s2 | p.s3) === 0) throw new SimError('prng', 'xoshiro128** state must not be all zero');
    return p;
  }

  /** The canonical seed this generator descends from. */
  get seedString(): string {
    return this.seedText;
  }

  /** Slash-separated stream names from the root ('' for the root). */
  get path(): string {
    return this.streamPath;
  }

  /** Number of 32-bit words drawn so far (for divergence hunting). */
  get draws(): number {
    return this.n;
  }

  /** Current raw state, for checkpoints and `fromState`. */
  state(): [number, number, number, number] {
    return [this.s0 >>> 0, this.s1 >>> 0, this.s2 >>> 0, this.s3 >>> 0];
  }

  /**
   * The child stream called `name`, derived from this generator's key and `name` only. Asking
   * twice for the same name returns the same generator (so `prng.stream('x').u32()` in a loop
   * advances one stream rather than restarting it).
   */
  stream(name: string): Prng {
    let child = this.children.get(name);
    if (child === undefined) {
      child = new Prng(this.seedText);
      child.key = mix64(hashString(this.key ^ 0x5354_5245_414dn, name));
      child.streamPath = this.streamPath === '' ? name : this.streamPath + '/' + name;
      child.init();
      this.children.set(name, child);
    }
    return child;
  }

  /** Next 32-bit unsigned integer. */
  u32(): number {
    const s0 = this.s0;
    const s1 = this.s1;
    const m = imul(s1, 5);
    const result = imul((m << 7) | (m >>> 25), 9) >>> 0;
    const c = this.s2 ^ s0;
    const d = this.s3 ^ s1;
    this.s1 = s1 ^ c;
    this.s0 = s0 ^ d;
    this.s2 = c ^ (s1 << 9);
    this.s3 = (d << 11) | (d >>> 21);
    this.n++;
    return result;
  }

  /** Uniform integer in [lo, hi], both inclusive and safe integers, hi - lo < 2^53. Unbiased (rejection). */
  int(lo: number, hi: number): number {
    if (!isSafeInteger(lo) || !isSafeInteger(hi) || lo > hi) {
      throw new SimError('prng', `int(lo, hi) needs safe integers with lo <= hi, got int(${lo}, ${hi})`);
    }
    const n = hi - lo + 1;
    if (n <= TWO32) {
      // Accept x below the largest multiple of n that fits in 32 bits.
      const limit = TWO32 - (TWO32 % n);
      let x = this.u32();
      while (x >= limit) x = this.u32();
      return lo + (x % n);
    }
    if (!(n <= TWO53)) throw new SimError('prng', `int(${lo}, ${hi}): range wider than 2^53`);
    const limit = TWO53 - (TWO53 % n);
    for (;;) {
      const x = (this.u32() >>> 11) * TWO32 + this.u32();
      if (x < limit) return lo + (x % n);
    }
  }

  /** Uniform float in [0, 1) with 53 random bits. */
  float(): number {
    const a = this.u32() >>> 5;
    const b = this.u32() >>> 6;
    return (a * 67108864 + b) / TWO53;
  }

  /** True with probability numerator/denominator (integers, 0 <= numerator <= denominator <= 2^32). Always draws. */
  bool(pNumerator: number, pDenominator: number): boolean {
    if (
      !isInteger(pNumerator) ||
      !isInteger(pDenominator) ||
      pDenominator < 1 ||
      pDenominator > TWO32 ||
      pNumerator < 0 ||
      pNumerator > pDenominator
    ) {
      throw new SimError('prng', `bool(${pNumerator}, ${pDenominator}): need integers 0 <= numerator <= denominator, 1 <= denominator <= 2^32`);
    }
    return this.int(0, pDenominator - 1) < pNumerator;
  }

  /** A uniformly chosen element. Throws on an empty array. */
  pick<T>(xs: readonly T[]): T {
    if (xs.length === 0) throw new SimError('prng', 'pick() from an empty array');
    return xs[this.int(0, xs.length - 1)]!;
  }

  /** Shuffles `xs` in place (Fisher-Yates) and returns it. */
  shuffle<T>(xs: T[]): T[] {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = this.int(0, i);
      const tmp = xs[i]!;
      xs[i] = xs[j]!;
      xs[j] = tmp;
    }
    return xs;
  }

  /**
   * Exponentially distributed float with the given mean (>= 0). Round it yourself when you need
   * integer ns. Uses `log`, which V8 computes with its own portable fdlibm port.
   */
  exponential(mean: number): number {
    if (!(mean >= 0) || !isFiniteNumber(mean)) throw new SimError('prng', `exponential(mean): mean must be finite and >= 0, got ${mean}`);
    return -mean * log(1 - this.float());
  }

  private init(): void {
    let sm = this.key;
    sm = (sm + GOLDEN64) & MASK64;
    const a = mix64(sm);
    sm = (sm + GOLDEN64) & MASK64;
    const b = mix64(sm);
    this.s0 = Number(a & 0xffffffffn) | 0;
    this.s1 = Number(a >> 32n) | 0;
    this.s2 = Number(b & 0xffffffffn) | 0;
    this.s3 = Number(b >> 32n) | 0;
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }
}
