/**
 * Generation and shrinking on top of fast-check.
 *
 * Run i of a campaign is `fc.check(property, {seed: runSeed(S, i), numRuns: 1})`: fast-check
 * draws one value from the arbitrary with that seed and evaluates it. For the campaign the run
 * stops at the first failure (`endOnFailure`); a failing run is then checked again without it, and
 * fast-check shrinks the value (fewer tasks, ops and events; smaller numbers; simpler choices),
 * keeping a candidate only when it still fails. Shrinking stops after `budget` evaluations: every
 * candidate after that counts as passing, so the result is the same on every machine.
 */
import fc from 'fast-check';
import { docSize, type JsonObject } from './doc';
import { runCase, type CaseOptions, type CaseResult } from './case';
import { scenarioDocArb, type GenOptions } from './generators';
import { untrustedDocArb } from './untrusted';
import { runSeed } from './seeds';

export interface SearchSpec {
  readonly gen: GenOptions;
  readonly case: CaseOptions;
}

/** Arbitraries built per generator options (a few per process): building one costs about as much as a small run's scenario generation. */
const ARBS = new Map<string, fc.Arbitrary<JsonObject>>();
const MAX_ARBS = 16;

/**
 * The documents of a search. Arbitraries are immutable values (all randomness comes from the
 * `Random` fast-check passes in), so one is built per distinct spec and reused by every run.
 */
export function docArb(spec: SearchSpec): fc.Arbitrary<JsonObject> {
  const key = JSON.stringify([spec.case.mode === 'untrusted', spec.gen]);
  let arb = ARBS.get(key);
  if (arb === undefined) {
    arb = spec.case.mode === 'untrusted' ? untrustedDocArb(spec.gen) : scenarioDocArb(spec.gen);
    if (ARBS.size >= MAX_ARBS) ARBS.clear();
    ARBS.set(key, arb);
  }
  return arb;
}

/** The document of run `index` of campaign `seed` (no run). */
export function caseDoc(spec: SearchSpec, seed: number | string, index: number): JsonObject {
  let doc: JsonObject | undefined;
  fc.check(
    fc.property(docArb(spec), (d) => {
      doc = d;
      return true;
    }),
    { seed: runSeed(seed, index), numRuns: 1 },
  );
  if (doc === undefined) throw new Error('fast-check produced no value');
  return doc;
}

export interface RunOutcome {
  readonly index: number;
  readonly result: CaseResult;
}

/** Generates and runs case `index` of campaign `seed`. */
export function runIndex(spec: SearchSpec, seed: number | string, index: number): RunOutcome {
  let result: CaseResult | undefined;
  fc.check(
    fc.property(docArb(spec), (doc) => {
      result = runCase(doc, spec.case);
      return result.ok;
    }),
    { seed: runSeed(seed, index), numRuns: 1, endOnFailure: true },
  );
  if (result === undefined) throw new Error('fast-check ran no case');
  return { index, result };
}

export interface ShrinkOutcome {
  readonly index: number;
  /** The generated (unshrunk) document and its result. */
  readonly original: { readonly doc: JsonObject; readonly result: CaseResult; readonly size: number };
  /** The smallest failing document found, and its result. */
  readonly shrunk: { readonly doc: JsonObject; readonly result: CaseResult; readonly size: number };
  /** Successful shrink steps and property evaluations spent. */
  readonly steps: number;
  readonly evaluations: number;
}

/**
 * Shrinks failing run `index`. `sameFailure` (default: same first property) decides whether a
 * smaller candidate still shows the failure; other failures count as passing, so the shrunk case
 * keeps the original's reason for failing.
 */
export function shrinkIndex(spec: SearchSpec, seed: number | string, index: number, budget: number): ShrinkOutcome {
  let evaluations = 0;
  let original: { doc: JsonObject; result: CaseResult } | undefined;
  let want: string | undefined;
  const details = fc.check(
    fc.property(docArb(spec), (doc) => {
      if (original !== undefined && evaluations >= budget) return true;
      evaluations++;
      const result = runCase(doc, spec.case);
      if (original === undefined) {
        original = { doc, result };
        want = result.failures[0]?.property;
        return result.ok;
      }
      return result.ok || result.failures[0]?.property !== want;
    }),
    { seed: runSeed(seed, index), numRuns: 1 },
  );
  if (original === undefined) throw new Error('fast-check ran no case');
  const shrunkDoc = details.counterexample?.[0] ?? original.doc;
  const shrunkResult = runCase(shrunkDoc, spec.case);
  return {
    index,
    original: { ...original, size: docSize(original.doc) },
    shrunk: { doc: shrunkDoc, result: shrunkResult, size: docSize(shrunkDoc) },
    steps: details.numShrinks,
    evaluations,
  };
}
