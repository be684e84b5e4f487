/** What a CLI command may touch: output streams, the working directory, the environment. */
import * as path from 'node:path';
import type { OptionSpecs } from './args';

export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  readonly cwd: string;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** stderr is a terminal (progress bars redraw in place); absent means no. */
  readonly errIsTTY?: boolean;
}

/** The process's stdout/stderr, cwd and environment. */
export function processIo(): CliIo {
  return {
    out: (t) => process.stdout.write(t),
    err: (t) => process.stderr.write(t),
    cwd: process.cwd(),
    env: process.env,
    errIsTTY: process.stderr.isTTY === true,
  };
}

/** The repository root (where scenarios/ and docs/ are). */
export const PACKAGE_ROOT = path.resolve(__dirname, '..', '..');

/** The built-in default scenario. */
export const DEFAULT_SCENARIO = path.join(PACKAGE_ROOT, 'scenarios', 'default.json');

/** A path as the user can type it from `cwd` (relative when inside it). */
export function shownPath(cwd: string, file: string): string {
  const abs = path.resolve(cwd, file);
  const rel = path.relative(cwd, abs);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : abs;
}

/** `--all-errors`: list every problem of a bad scenario, one per line, instead of the first one. */
export const ALL_ERRORS_OPTION: OptionSpecs = {
  'all-errors': { type: 'boolean', help: 'when a scenario file is invalid, list every problem (one per line, the first one first) instead of the first' },
};
