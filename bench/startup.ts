/**
 * `apf` start-up and `apf check` cost, measured in child processes: the CPU time (user + system,
 * every thread) of `apf run scenarios/default.json --quiet` through bin/apf (the cached swc path),
 * of the same run through ts-node, and of a bare `node -e ''`, medians of a few runs; and the
 * wall and CPU time of `apf check --handlers stock --jobs 2` (every applicable scenario plus the
 * 500-run campaign).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const REPO = path.resolve(__dirname, '..');
const PRELOAD = path.join(__dirname, 'cpu-report.js');

export interface ChildCost {
  readonly cpuMs: number;
  readonly wallMs: number;
}

function child(args: readonly string[]): ChildCost {
  const file = path.join(os.tmpdir(), `apf-bench-cpu-${process.pid}-${Math.random().toString(36).slice(2)}.json`);
  const r = spawnSync(process.execPath, ['-r', PRELOAD, ...args], { cwd: REPO, env: { ...process.env, APF_BENCH_CPU_FILE: file }, encoding: 'utf8' });
  if (r.status !== 0 && r.status !== 1) throw new Error(`bench: ${args.join(' ')} exited ${String(r.status)}: ${r.stderr}`);
  const cost = JSON.parse(fs.readFileSync(file, 'utf8')) as ChildCost;
  fs.rmSync(file, { force: true });
  return cost;
}

const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;

function medianCost(args: readonly string[], n: number): ChildCost {
  const runs = Array.from({ length: n }, () => child(args));
  return { cpuMs: median(runs.map((r) => r.cpuMs)), wallMs: median(runs.map((r) => r.wallMs)) };
}

export interface StartupReport {
  readonly bareNode: ChildCost;
  readonly apfRun: ChildCost;
  readonly apfRunTsNode: ChildCost;
  readonly check?: ChildCost;
}

export function measureStartup(quick: boolean): StartupReport {
  const n = quick ? 3 : 5;
  const run = ['scenarios/default.json', '--quiet'];
  const bareNode = medianCost(['-e', ''], n);
  child([path.join(REPO, 'bin', 'apf'), 'run', ...run]); // fill the compile cache
  const apfRun = medianCost([path.join(REPO, 'bin', 'apf'), 'run', ...run], n);
  const apfRunTsNode = medianCost([require.resolve('ts-node/dist/bin.js'), '--transpile-only', path.join(REPO, 'harness', 'cli', 'main.ts'), 'run', ...run], quick ? 1 : 3);
  const check = quick ? undefined : child([path.join(REPO, 'bin', 'apf'), 'check', '--handlers', 'stock', '--jobs', '2']);
  return { bareNode, apfRun, apfRunTsNode, ...(check === undefined ? {} : { check }) };
}
