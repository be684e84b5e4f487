import { canonicalSeed, Prng, SimError } from '../../sim';

const draw = (p: Prng, n: number): number[] => Array.from({ length: n }, () => p.u32());

describe('xoshiro128** core', () => {
  test('matches the reference implementation (C, Blackman & Vigna)', () => {
    expect(draw(Prng.fromState([1, 2, 3, 4]), 8)).toEqual([11520, 0, 5927040, 70819200, 2031721883, 1637235492, 1287239034, 3734860849]);
    expect(draw(Prng.fromState([0x9e3779b9, 0x243f6a88, 0xb7e15162, 0xdeadbeef]), 8)).toEqual([
      2463954730, 5524658, 74256371, 1905451993, 3123413897, 314453775, 1263677054, 1531511215,
    ]);
  });

  test('state() and fromState() round-trip; all-zero state is rejected', () => {
    const p = new Prng(99);
    draw(p, 17);
    const q = Prng.fromState(p.state());
    expect(draw(q, 50)).toEqual(draw(p, 50));
    expect(() => Prng.fromState([0, 0, 0, 0])).toThrow(SimError);
  });

  test('u32 stays in [0, 2^32) and counts draws', () => {
    const p = new Prng(1);
    expect(draw(p, 10_000).every((x) => Number.isInteger(x) && x >= 0 && x < 2 ** 32)).toBe(true);
    expect(p.draws).toBe(10_000);
  });
});

describe('seeds', () => {
  test('same seed, same sequence; different seed, different sequence', () => {
    expect(draw(new Prng(42), 100)).toEqual(draw(new Prng(42), 100));
    expect(draw(new Prng(42), 100)).not.toEqual(draw(new Prng(43), 100));
    expect(draw(new Prng('abc'), 10)).not.toEqual(draw(new Prng('abd'), 10));
  });

  test('numeric seeds are canonical whatever their spelling', () => {
    const ref = draw(new Prng(42), 20);
    for (const seed of [42n, '42', '0042', '0x2a', '0X2A'] as const) {
      expect(draw(new Prng(seed), 20)).toEqual(ref);
      expect(new Prng(seed).seedString).toBe('42');
    }
    expect(canonicalSeed(2n ** 70n)).toBe('1180591620717411303424');
    expect(canonicalSeed('-7')).toBe('-7');
    expect(canonicalSeed('deadbeef-commit')).toBe('deadbeef-commit');
  });

  test('bad seeds are rejected', () => {
    expect(() => new Prng(1.5)).toThrow(SimError);
    expect(() => new Prng(NaN)).toThrow(SimError);
    expect(() => new Prng('')).toThrow(SimError);
  });

  test('a pinned first draw per seed (changing the derivation must be deliberate)', () => {
    expect(draw(new Prng(42), 3)).toEqual([1226178649, 1653756099, 4281223604]);
    expect(draw(new Prng(42).stream('host').stream('worker'), 3)).toEqual([3268701865, 1287806737, 3830386596]);
  });
});

describe('named streams', () => {
  test('drawing from one stream does not shift another', () => {
    const a = new Prng(7);
    const expectedB = draw(a.stream('B'), 20);

    const b = new Prng(7);
    draw(b.stream('A'), 1000);
    draw(b, 333); // the root too
    b.stream('C').stream('D').u32();
    expect(draw(b.stream('B'), 20)).toEqual(expectedB);
  });

  test('a stream does not depend on how much the parent has drawn', () => {
    const p = new Prng(7);
    draw(p, 5);
    const s1 = draw(p.stream('x'), 10);
    expect(draw(new Prng(7).stream('x'), 10)).toEqual(s1);
  });

  test('streams differ from each other, from the root and across seeds', () => {
    const p = new Prng(7);
    const root = draw(new Prng(7), 10);
    const a = draw(p.stream('a'), 10);
    const b = draw(p.stream('b'), 10);
    expect(a).not.toEqual(b);
    expect(a).not.toEqual(root);
    expect(draw(new Prng(8).stream('a'), 10)).not.toEqual(a);
    // Nesting is not concatenation.
    expect(draw(new Prng(7).stream('a').stream('b'), 10)).not.toEqual(draw(new Prng(7).stream('ab'), 10));
    expect(draw(new Prng(7).stream('a').stream('b'), 10)).not.toEqual(draw(new Prng(7).stream('a/b'), 10));
  });

  test('asking for the same name twice returns the same stream', () => {
    const p = new Prng(3);
    expect(p.stream('w')).toBe(p.stream('w'));
    const x = p.stream('w').u32();
    const y = p.stream('w').u32();
    expect(draw(new Prng(3).stream('w'), 2)).toEqual([x, y]);
    expect(p.stream('w').stream('v').path).toBe('w/v');
    expect(p.stream('w').seedString).toBe('3');
    expect(p.path).toBe('');
  });
});

describe('derived draws', () => {
  test('int() is inclusive, stays in bounds and hits every value', () => {
    const p = new Prng(11);
    const seen = new Set<number>();
    for (let i = 0; i < 2000; i++) seen.add(p.int(-3, 3));
    expect([...seen].sort((a, b) => a - b)).toEqual([-3, -2, -1, 0, 1, 2, 3]);
    expect(p.int(5, 5)).toBe(5);
    let ok = true;
    for (let i = 0; i < 1000; i++) {
      const x = p.int(0, 2 ** 32 - 1);
      const y = p.int(-(2 ** 40), 2 ** 40);
      ok &&= x >= 0 && x < 2 ** 32 && Number.isSafeInteger(y) && Math.abs(y) <= 2 ** 40;
    }
    expect(ok).toBe(true);
    const z = p.int(0, 2 ** 53 - 1);
    expect(Number.isSafeInteger(z)).toBe(true);
  });

  test('int() is unbiased where plain modulo would be biased', () => {
    // n = 3 * 2^30: with `u32 % n`, [0, 2^30) would come up 1/2 of the time instead of 1/3.
    const p = new Prng(12);
    const n = 3 * 2 ** 30;
    let low = 0;
    const N = 30_000;
    for (let i = 0; i < N; i++) if (p.int(0, n - 1) < 2 ** 30) low++;
    expect(low / N).toBeGreaterThan(0.32);
    expect(low / N).toBeLessThan(0.347);
  });

  test('int() is roughly uniform (chi-square, 10 buckets)', () => {
    const p = new Prng(13);
    const counts = new Array<number>(10).fill(0);
    const N = 100_000;
    for (let i = 0; i < N; i++) counts[p.int(0, 9)]!++;
    const e = N / 10;
    const chi2 = counts.reduce((acc, c) => acc + (c - e) ** 2 / e, 0);
    expect(chi2).toBeLessThan(27.9); // p = 0.001 for 9 degrees of freedom
  });

  test('int() rejects bad bounds', () => {
    const p = new Prng(1);
    expect(() => p.int(2, 1)).toThrow(SimError);
    expect(() => p.int(0.5, 1)).toThrow(SimError);
    expect(() => p.int(-(2 ** 53) + 1, 2 ** 53 - 1)).toThrow(/2\^53/);
  });

  test('float() is in [0, 1) with mean near 1/2', () => {
    const p = new Prng(14);
    let sum = 0;
    let inRange = true;
    for (let i = 0; i < 50_000; i++) {
      const x = p.float();
      inRange &&= x >= 0 && x < 1;
      sum += x;
    }
    expect(inRange).toBe(true);
    expect(Math.abs(sum / 50_000 - 0.5)).toBeLessThan(0.01);
  });

  test('bool() takes an integer ratio', () => {
    const p = new Prng(15);
    let hits = 0;
    for (let i = 0; i < 40_000; i++) if (p.bool(1, 4)) hits++;
    expect(Math.abs(hits / 40_000 - 0.25)).toBeLessThan(0.015);
    for (let i = 0; i < 100; i++) {
      expect(p.bool(0, 7)).toBe(false);
      expect(p.bool(7, 7)).toBe(true);
    }
    expect(() => p.bool(0.25, 1)).toThrow(SimError);
    expect(() => p.bool(2, 1)).toThrow(SimError);
    expect(() => p.bool(0, 0)).toThrow(SimError);
  });

  test('pick() and shuffle()', () => {
    const p = new Prng(16);
    const xs = ['a', 'b', 'c'] as const;
    const seen = new Set<string>();
    for (let i = 0; i < 100; i++) seen.add(p.pick(xs));
    expect(seen.size).toBe(3);
    expect(() => p.pick([])).toThrow(/empty/);

    const arr = Array.from({ length: 50 }, (_, i) => i);
    const out = p.shuffle(arr);
    expect(out).toBe(arr);
    expect([...out].sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(out).not.toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(new Prng(16).shuffle([1, 2, 3, 4, 5, 6])).toEqual(new Prng(16).shuffle([1, 2, 3, 4, 5, 6]));
  });

  test('exponential() has the requested mean and is never negative', () => {
    const p = new Prng(17);
    let sum = 0;
    let min = Infinity;
    const N = 50_000;
    for (let i = 0; i < N; i++) {
      const x = p.exponential(1000);
      min = Math.min(min, x);
      sum += x;
    }
    expect(min).toBeGreaterThanOrEqual(0);
    expect(Math.abs(sum / N - 1000)).toBeLessThan(25);
    expect(p.exponential(0)).toBe(0);
    expect(() => p.exponential(-1)).toThrow(SimError);
  });
});
