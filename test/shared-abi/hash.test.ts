import { GOLDEN_RATIO_32, GOLDEN_RATIO_PRIME_32, hash32, hash32Pre47 } from '../../shared-abi/hash';

/** Independent reference: u32 multiply with BigInt, then shift. */
function ref(val: number, bits: number, mult: bigint): number {
  return Number(((BigInt(val >>> 0) * mult) & 0xffffffffn) >> BigInt(32 - bits));
}

const VALUES = [0, 1, 2, 3, 0x1000, 0x1001, 0x2000, 0xfff, 0x100000, 0x12345678, 0x7fffffff, 0x80000000, 0xfffff000, 0xffffffff];

describe('hash_32 (spec §1.6)', () => {
  test('multipliers', () => {
    expect(GOLDEN_RATIO_32).toBe(0x61c88647);
    expect(GOLDEN_RATIO_PRIME_32).toBe(0x9e370001);
  });
  test.each([
    [0, 6, 0],
    [1, 6, 24],
    [2, 6, 48],
    [0x1000, 6, 34],
    [0x1001, 6, 58],
    [0xffffffff, 6, 39],
    [0x12345678, 6, 29],
    [0x100000, 6, 25],
    [1, 8, 97],
    [2, 8, 195],
    [0x1000, 8, 136],
    [0x1001, 8, 234],
    [0xffffffff, 8, 158],
    [0x12345678, 8, 119],
    [1, 32, 1640531527],
    [0x1000, 32, 2288283648],
    [0x12345678, 32, 2005322568],
  ])('hash32(%i, %i) = %i', (val, bits, want) => {
    expect(hash32(val, bits)).toBe(want);
  });
  test.each([
    [1, 6, 39],
    [0x1000, 6, 28],
    [0x1001, 8, 14],
    [0x12345678, 8, 181],
    [0x100000, 8, 0],
  ])('hash32Pre47(%i, %i) = %i', (val, bits, want) => {
    expect(hash32Pre47(val, bits)).toBe(want);
  });
  test('agrees with a BigInt reference for every width', () => {
    for (const v of VALUES) {
      for (let bits = 1; bits <= 32; bits++) {
        expect(hash32(v, bits)).toBe(ref(v, bits, 0x61c88647n));
        expect(hash32Pre47(v, bits)).toBe(ref(v, bits, 0x9e370001n));
      }
    }
  });
  test('results are in range', () => {
    for (const v of VALUES) {
      expect(hash32(v, 6)).toBeLessThan(64);
      expect(hash32(v, 8)).toBeLessThan(256);
      expect(hash32(v, 32)).toBeGreaterThanOrEqual(0);
    }
  });
  test('values wider than 32 bits use their low 32 bits', () => {
    expect(hash32(0x1_0000_1000, 6)).toBe(hash32(0x1000, 6));
  });
  test('rejects bad widths', () => {
    expect(() => hash32(1, 0)).toThrow(RangeError);
    expect(() => hash32(1, 33)).toThrow(RangeError);
    expect(() => hash32Pre47(1, 0)).toThrow(RangeError);
  });
});
