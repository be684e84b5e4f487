/**
 * How many cases the randomized tests run. `npm test` (CI) runs the short version; with
 * APF_THOROUGH=1 in the environment every such test runs its long version, the case counts the
 * suite always ran before. Seeds are fixed either way, so a short run checks a prefix of the cases
 * of the long one (fast-check draws the same sequence; fuzz run i depends only on seed and i).
 */
export const THOROUGH = process.env.APF_THOROUGH === '1';

/** `ci` cases normally, `thorough` with APF_THOROUGH=1. */
export function cases(ci: number, thorough: number): number {
  return THOROUGH ? thorough : ci;
}
