/**
 * Suite runs: `apf run DIR|FILE...` runs every scenario file given (directories are searched for
 * .json/.yaml files), on worker threads, and prints one verdict line per file in the order given,
 * like kvm-unit-tests' run_tests.sh:
 *
 *   PASS scenarios/default.json (the guest parked the faulting task, ...)
 *   FAIL scenarios/x.json (outcome "completed" — ...)
 *     replay: npx apf run scenarios/x.json --seed 1 --guest current --host current
 *   SKIP scenarios/y.json (no variant "buggy")
 *
 * then a count line. Exit 1 if any file failed (a file that does not load is a failure with the
 * loader's message), else 0. `--junit FILE` writes the verdicts as JUnit XML, `--shard I/N` runs
 * every N-th file starting with the I-th, `--report FILE` writes the HTML picture of every run.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { CliDeps } from '../cli/cli';
import { shownPath, type CliIo } from '../cli/io';
import { scenarioFiles } from '../cli/commands/list';
import type { RunRequest } from '../cli/commands/run';
import { defaultJobs, WorkerPool } from '../fuzz/pool';
import { htmlReport, REPORT_RECORDS, writeReport } from '../report/html';
import { UsageError, type Overrides } from '../scenario/overrides';
import { inShard, parseShard, type Shard } from '../util/shard';
import { runFile, type FileVerdict, type SuiteReply, type SuiteRequest } from './worker';

export interface SuiteOptions {
  readonly given: readonly string[];
  readonly overrides: Overrides;
  readonly runsDir: string;
  readonly junit: string | undefined;
  readonly shard: string | undefined;
  readonly report: string | undefined;
  readonly jobs: number | undefined;
  readonly json: boolean;
  readonly quiet: boolean;
}

/** The scenario files named by `given` (files as they are, directories searched), in order, without repeats. */
export function suiteFiles(cwd: string, given: readonly string[]): { file: string; shown: string }[] {
  const out: { file: string; shown: string }[] = [];
  const seen = new Set<string>();
  const add = (abs: string, shown: string): void => {
    if (seen.has(abs)) return;
    seen.add(abs);
    out.push({ file: abs, shown });
  };
  for (const g of given) {
    const abs = path.resolve(cwd, g);
    let st: fs.Stats;
    try {
      st = fs.statSync(abs);
    } catch {
      throw new UsageError(`apf run: ${g}: no such file or directory`);
    }
    if (st.isDirectory()) {
      const files = scenarioFiles(abs).sort();
      if (files.length === 0) throw new UsageError(`apf run: ${g}: no scenario files (.json, .yaml) in this directory`);
      for (const f of files) add(f, path.isAbsolute(g) ? f : shownPath(cwd, f));
    } else add(abs, g);
  }
  return out;
}

/** Runs the files, in worker threads when jobs > 0; verdicts come back in the order of `reqs`. */
function runAll(reqs: readonly RunRequest[], jobs: number, deps: CliDeps): FileVerdict[] {
  if (jobs === 0 || deps.machine !== undefined || reqs.length <= 1) return reqs.map((r) => runFile(r, deps));
  const pool = new WorkerPool<SuiteRequest, SuiteReply>({ size: Math.min(jobs, reqs.length), entry: path.join(__dirname, 'worker.ts'), label: 'suite' });
  const out: (FileVerdict | undefined)[] = reqs.map(() => undefined);
  const inFlight = new Map<number, number>();
  try {
    let next = 0;
    let done = 0;
    while (done < reqs.length) {
      for (let slot = pool.idle(); slot >= 0 && next < reqs.length; slot = pool.idle()) {
        const req = reqs[next];
        if (req === undefined) break;
        inFlight.set(slot, next);
        pool.send(slot, { type: 'file', req });
        next++;
      }
      for (const { slot, reply } of pool.collect(1000)) {
        const i = inFlight.get(slot);
        inFlight.delete(slot);
        if (i === undefined) continue;
        if (reply.type === 'error') throw new Error(`apf run: a suite worker failed on ${reqs[i]?.fileShown ?? '?'}: ${reply.message}`);
        if (reply.type === 'file') {
          out[i] = reply.verdict;
          done++;
        }
      }
    }
  } finally {
    pool.close();
  }
  return out.map((v, i) => {
    if (v === undefined) throw new Error(`apf run: no verdict for ${reqs[i]?.fileShown ?? '?'}`);
    return v;
  });
}

function xmlEsc(s: string): string {
  // XML 1.0 forbids most control characters even when escaped.
  const legal = [...s].filter((c) => c.charCodeAt(0) >= 0x20 || c === '\t' || c === '\n' || c === '\r').join('');
  return legal
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

/** The verdicts as JUnit XML (one testsuite, one testcase per file; SKIP as <skipped/>). */
export function junitXml(verdicts: readonly FileVerdict[], name = 'apf run'): string {
  const secs = (ms: number): string => (ms / 1000).toFixed(3);
  const failures = verdicts.filter((v) => v.status === 'FAIL').length;
  const skipped = verdicts.filter((v) => v.status === 'SKIP').length;
  const total = verdicts.reduce((a, v) => a + v.ms, 0);
  const cases = verdicts.map((v) => {
    const dir = path.dirname(v.file).split(path.sep).join('.');
    const head = `    <testcase classname="${xmlEsc(dir === '.' ? 'scenarios' : dir)}" name="${xmlEsc(v.file)}" time="${secs(v.ms)}"`;
    const out = [`${v.status} ${v.file} (${v.reason})`, ...(v.replay === null ? [] : [`replay: ${v.replay}`]), ...(v.failureFile === null ? [] : [`failure details: ${v.failureFile}`])].join('\n');
    if (v.status === 'PASS') return `${head}>\n      <system-out>${xmlEsc(out)}</system-out>\n    </testcase>`;
    if (v.status === 'SKIP') return `${head}>\n      <skipped message="${xmlEsc(v.reason)}"/>\n    </testcase>`;
    return `${head}>\n      <failure message="${xmlEsc(v.reason)}" type="FAIL">${xmlEsc(out)}</failure>\n    </testcase>`;
  });
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites name="${xmlEsc(name)}" tests="${verdicts.length}" failures="${failures}" errors="0" skipped="${skipped}" time="${secs(total)}">`,
    `  <testsuite name="${xmlEsc(name)}" tests="${verdicts.length}" failures="${failures}" errors="0" skipped="${skipped}" time="${secs(total)}">`,
    ...cases,
    '  </testsuite>',
    '</testsuites>',
    '',
  ].join('\n');
}

/** The verdict table and the count line. */
export function verdictTable(verdicts: readonly FileVerdict[], shard: Shard | undefined, ofTotal: number): string[] {
  const lines: string[] = [];
  for (const v of verdicts) {
    lines.push(`${v.status} ${v.file} (${v.reason})`);
    if (v.status === 'FAIL' && v.replay !== null) lines.push(`  replay: ${v.replay}`);
  }
  const n = (s: string): number => verdicts.filter((v) => v.status === s).length;
  const where = shard === undefined ? '' : `; shard ${shard.index}/${shard.count}: ${verdicts.length} of ${ofTotal} files`;
  lines.push(`${n('PASS')} passed, ${n('FAIL')} failed, ${n('SKIP')} skipped${where}`);
  return lines;
}

export function suiteCommand(o: SuiteOptions, io: CliIo, deps: CliDeps): number {
  const shard = o.shard === undefined ? undefined : parseShard(o.shard);
  const all = suiteFiles(io.cwd, o.given);
  const files = shard === undefined ? all : all.filter((_f, i) => inShard(i, shard));
  const reqs: RunRequest[] = files.map((f) => ({
    file: f.file,
    fileShown: f.shown,
    overrides: o.overrides,
    cwd: io.cwd,
    runsDir: o.runsDir,
    format: 'jsonl',
    json: true,
    quiet: true,
    verbose: false,
    header: false,
    ...(o.report === undefined ? {} : { collect: REPORT_RECORDS }),
  }));
  const verdicts = runAll(reqs, o.jobs ?? deps.jobs ?? Math.min(defaultJobs(), files.length), deps);
  if (o.junit !== undefined) {
    const abs = path.resolve(io.cwd, o.junit);
    try {
      fs.writeFileSync(abs, junitXml(verdicts));
    } catch (e) {
      throw new UsageError(`--junit ${o.junit}: cannot write the JUnit file: ${(e as Error).message}`);
    }
  }
  if (o.report !== undefined) {
    const runs = verdicts.flatMap((v) => (v.result === null || v.collected === null ? [] : [{ file: v.file, verdict: `${v.status} ${v.file} (${v.reason})`, result: v.result, collected: v.collected }]));
    writeReport(io, o.report, htmlReport({ title: `apf run ${o.given.join(' ')}`, runs, table: verdicts.map((v) => ({ status: v.status, file: v.file, reason: v.reason })) }));
  }
  if (o.json) {
    const strip = verdicts.map(({ result: _r, collected: _c, ms: _ms, ...rest }) => rest);
    io.out(JSON.stringify({ format: 'apf-suite-result/1', shard: shard ?? null, files: strip, passed: strip.filter((v) => v.status === 'PASS').length, failed: strip.filter((v) => v.status === 'FAIL').length, skipped: strip.filter((v) => v.status === 'SKIP').length }, null, 2) + '\n');
  } else {
    const lines = verdictTable(verdicts, shard, all.length);
    io.out((o.quiet ? lines.filter((l) => !l.startsWith('PASS ') && !l.startsWith('SKIP ')) : lines).join('\n') + '\n');
  }
  return verdicts.some((v) => v.status === 'FAIL') ? 1 : 0;
}
