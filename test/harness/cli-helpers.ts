/** Runs the CLI entry function in-process and captures its output. */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runCli as sandboxRunCli, type CliDeps } from '../../harness/cli/cli';
import { native } from '../support/native';

const { runCli: nativeRunCli } = native<typeof import('../../harness/cli/cli')>('harness/cli/cli');

export interface CliRun {
  code: number;
  out: string;
  err: string;
}

/**
 * The CLI runs outside Jest's sandbox (test/support/native.ts), at full speed; with `deps` (a fake
 * machine built from the sandbox's copy of the harness) it runs in the sandbox, with that copy.
 */
export function cli(argv: readonly string[], opts: { cwd?: string; deps?: CliDeps; env?: Record<string, string> } = {}): CliRun {
  const runCli = opts.deps === undefined ? nativeRunCli : sandboxRunCli;
  let out = '';
  let err = '';
  const code = runCli(argv, { out: (s) => (out += s), err: (s) => (err += s), cwd: opts.cwd ?? process.cwd(), env: opts.env ?? {} }, opts.deps ?? {});
  return { code, out, err };
}

/** A fresh temporary directory. */
export function tmpDir(prefix = 'apf-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

export const REPO = path.resolve(__dirname, '..', '..');

/** Runs the real `apf` executable (bin/apf: the cached swc start-up path) in a child process. */
export function spawnApf(argv: readonly string[], opts: { cwd?: string; env?: Record<string, string> } = {}): CliRun {
  const r = spawnSync(process.execPath, [path.join(REPO, 'bin', 'apf'), ...argv], {
    cwd: opts.cwd ?? REPO,
    env: { ...process.env, ...(opts.env ?? {}) },
    encoding: 'utf8',
  });
  return { code: r.status ?? 1, out: r.stdout, err: r.stderr };
}
