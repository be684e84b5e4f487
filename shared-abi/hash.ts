/**
 * Linux's multiplicative hash_32, used by the host gfn hash and the guest sleeper hash (spec §1.6).
 */

/** spec §1.6: GOLDEN_RATIO_32, the hash_32 multiplier since v4.7. */
export const GOLDEN_RATIO_32 = 0x61c88647;

/**
 * spec §1.6/§8.4: GOLDEN_RATIO_PRIME_32, the hash_32 multiplier before v4.7.
 * [unverified] the spec gives this value from memory; it only affects bucket placement.
 */
export const GOLDEN_RATIO_PRIME_32 = 0x9e370001;

function mulHash(val: number, bits: number, mult: number): number {
  if (!Number.isInteger(bits) || bits < 1 || bits > 32) throw new RangeError(`hash_32: bits must be 1..32: ${bits}`);
  return (Math.imul(val >>> 0, mult) >>> 0) >>> (32 - bits);
}

/** spec §1.6: hash_32 (≥ v4.7): (val * GOLDEN_RATIO_32) >> (32 - bits) in u32 arithmetic. */
export const hash32 = (val: number, bits: number): number => mulHash(val, bits, GOLDEN_RATIO_32);

/** spec §1.6/§8.4: hash_32 before v4.7, same form with GOLDEN_RATIO_PRIME_32 [unverified constant]. */
export const hash32Pre47 = (val: number, bits: number): number => mulHash(val, bits, GOLDEN_RATIO_PRIME_32);
