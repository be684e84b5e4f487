/**
 * The regression suite's files: every `scenarios/regressions/*.json` is a historical bug (or a
 * hazard without a kernel fix) written as a scenario whose own run is the fixed one, with a
 * `regression` header and at least a `buggy` variant (docs/regressions.md, generated from these
 * headers by `regressions-doc.ts`). Subdirectories hold material that is not a regression of its
 * own (the SEND_ALWAYS matrix contexts in `send-always/`).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PACKAGE_ROOT } from '../cli/io';
import { loadScenarioFile } from '../scenario/load';
import type { Regression, Scenario } from '../scenario/types';

export const REGRESSIONS_DIR = path.join(PACKAGE_ROOT, 'scenarios', 'regressions');

/** The regression scenario files (top level of scenarios/regressions), sorted, as absolute paths. */
export function regressionFiles(dir: string = REGRESSIONS_DIR): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isFile() && e.name.endsWith('.json'))
    .map((e) => path.join(dir, e.name))
    .sort();
}

/** A loaded regression: the scenario (its own run is the fixed one) and its header. */
export interface RegressionScenario {
  /** Path relative to the repository root, with forward slashes. */
  readonly file: string;
  readonly scenario: Scenario;
  readonly header: Regression;
}

/** Loads a regression file and checks it has a header with a `buggy` variant. */
export function loadRegression(abs: string): RegressionScenario {
  const file = path.relative(PACKAGE_ROOT, abs).split(path.sep).join('/');
  const scenario = loadScenarioFile(abs, file);
  const header = scenario.regression;
  if (header === undefined) throw new Error(`${file}: a regression scenario needs a "regression" header`);
  if (header.variants.buggy === undefined) throw new Error(`${file}: a regression scenario needs a "buggy" variant (regression.variants.buggy)`);
  return { file, scenario, header };
}
