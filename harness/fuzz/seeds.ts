/**
 * Seeds of a campaign. Run i of campaign seed S draws its case from a seed that depends only on
 * (S, i), never on which worker runs it or when, so a campaign is the same for any number of jobs.
 */
import { canonicalSeed, Prng } from '../../sim/prng';

/** The fast-check seed (a 32-bit integer) of run `index` of campaign `seed`. */
export function runSeed(seed: number | string, index: number): number {
  return new Prng(`apf-fuzz/v1 ${canonicalSeed(seed)} run ${index}`).u32() | 0;
}

/** A fresh campaign seed when none is given (the only nondeterministic input, and it is printed). */
export function freshSeed(): number {
  return Math.floor(Math.random() * 0x7fffffff);
}
