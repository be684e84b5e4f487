/**
 * `apf check --handlers FILE`: is this set of guest async-PF handlers correct? Runs every shipped
 * scenario the handlers apply to (guest-kernel scenarios on the `current` guest profile, in this
 * process), then a fixed-seed fuzz campaign with the same handlers (on worker threads, each of
 * which loads the module), and prints one verdict table: case → PASS/FAIL → the diagnosis, then the
 * replay line of every failure. Exit 0 when everything passes, 1 when something fails, 2 on bad
 * input.
 */
import * as path from 'node:path';
import { runCampaign, type CampaignResult } from '../../fuzz/campaign';
import type { CaseOptions } from '../../fuzz/case';
import { defaultJobs } from '../../fuzz/pool';
import { writeFailures, type WrittenFailure } from '../../fuzz/report';
import { loadHandlers, type LoadedHandlers } from '../../handlers-file';
import { runScenario, type RunReport } from '../../runner';
import { loadScenarioFile } from '../../scenario/load';
import { replayLine, shellWord, UsageError } from '../../scenario/overrides';
import type { Scenario } from '../../scenario/types';
import { flag, helpText, parse, positiveIntArg, seedArg, str, type OptionSpecs, type Parsed } from '../args';
import type { CliDeps } from '../cli';
import { PACKAGE_ROOT, shownPath, type CliIo } from '../io';
import { scenarioFiles } from './list';
import { handlersMachine } from './run';

/** The campaign `apf check` runs unless told otherwise. */
export const CHECK_RUNS = 500;
export const CHECK_SEED = 1;
/** Shrinking is kept short: the replay of a small case matters more than the smallest one. */
const CHECK_SHRINK_BUDGET = 60;
/** The guest profile the shipped scenarios must use for a handler set to apply to them. */
export const CHECK_PROFILE = 'current';

const OPTIONS: OptionSpecs = {
  handlers: { type: 'string', value: 'FILE', help: 'the handlers to check: a .ts/.js module exporting `handlers: Partial<ApfHandlers>`, "stock" or "canary:NAME" (required)' },
  runs: { type: 'string', value: 'N', help: `fuzz runs (default ${CHECK_RUNS})` },
  seed: { type: 'string', value: 'S', help: `fuzz campaign seed (default ${CHECK_SEED})` },
  jobs: { type: 'string', value: 'J', help: 'fuzz worker threads (default: number of cores; 0 = this process)' },
  'no-fuzz': { type: 'boolean', help: 'run only the scenarios' },
  'fail-fast': { type: 'boolean', help: 'stop at the first failing case (scenarios written for handler changes run first)' },
  scenarios: { type: 'string', value: 'DIR', help: 'scenario directory (default: the shipped scenarios/)' },
  out: { type: 'string', value: 'DIR', help: 'where shrunk fuzz failures go (default ./runs/check, or $APF_RUNS_DIR/check)' },
  json: { type: 'boolean', help: 'print the verdicts as JSON' },
  help: { type: 'boolean', short: 'h', help: 'show this help' },
};

export const CHECK_HELP = helpText(
  'apf check --handlers FILE [--runs N] [--seed S] [--jobs J] [--no-fuzz] [--json]',
  [
    'Checks a set of guest async-PF handlers (docs/handlers.md): runs every shipped scenario they apply to',
    `(guest-kernel scenarios on the ${CHECK_PROFILE} guest profile) and a fixed-seed fuzz campaign with them, and prints`,
    'one verdict table: each scenario or fuzz failure kind, PASS or FAIL, and the diagnosis (the checker that',
    'fired names the guest-side rule that was broken), then a replay line for every failure. Exit status: 0 all',
    'pass, 1 something fails, 2 bad input.',
  ],
  OPTIONS,
  ['examples:', '  apf check --handlers stock', '  apf check --handlers test/handlers/mistakes/no-ack.ts', '  apf check --handlers canary:no-dummy --runs 200'],
);

/** One row of the verdict table. */
export interface CheckRow {
  readonly kind: 'scenario' | 'fuzz';
  /** The scenario file, or "fuzz: PROPERTY" / "fuzz campaign". */
  readonly name: string;
  readonly ok: boolean;
  /** Why it failed (the first checker that fired, or the first unmet expectation), or what passed. */
  readonly diagnosis: string;
  /** The command that reproduces a failure. */
  readonly replay?: string;
  /** For fuzz failure kinds: how many runs failed this way. */
  readonly count?: number;
}

export interface CheckResult {
  readonly handlers: string;
  readonly rows: readonly CheckRow[];
  readonly ok: boolean;
  readonly scenarios: number;
  readonly fuzzRuns: number;
  readonly fuzzSeed: string | null;
}

/** Does a handler set apply to this scenario? A guest-kernel run on the profile handlers are written for. */
export function handlersApply(s: Scenario): boolean {
  return s.bare === undefined && s.machine.guest.profile === CHECK_PROFILE;
}

/** Checkers by how directly they name a guest-side rule (the rest follow, in time order). */
const DIAGNOSIS_ORDER = ['guest-rules', 'sleep-context', 'interrupts', 'slot-busy', 'guest-warn', 'lost-wakeup', 'hung-task'];

/** The one-line reason a scenario run failed: the checker that fired (it names the rule), else the first unmet expectation. */
export function diagnosis(r: RunReport): string {
  const bad = r.expectations.filter((e) => !e.ok);
  // A checker that the scenario expected quiet names the broken rule better than any count; the
  // checkers that name guest-side rules come first, the ones that see consequences (hangs, lost events) last.
  const rank = (c: string): number => {
    const i = DIAGNOSIS_ORDER.indexOf(c);
    return i < 0 ? DIAGNOSIS_ORDER.length : i;
  };
  const named = r.violations.filter((v) => bad.some((e) => e.what.includes(v.checker)));
  const best = [...named].sort((a, b) => rank(a.checker) - rank(b.checker) || a.t - b.t)[0];
  if (best !== undefined) return `${best.checker}: ${best.message}`;
  const first = bad[0];
  if (first === undefined) return `outcome ${r.outcome}`;
  const v = r.violations[0];
  const detail = `${first.what}: ${first.detail}`;
  return v === undefined ? detail : `${detail} (${v.checker}: ${v.message})`;
}

function oneLine(s: string, max = 400): string {
  const l = s.replace(/\s+/g, ' ').trim();
  return l.length > max ? l.slice(0, max - 1) + '…' : l;
}

/** The scenario files, those written for handler changes (a `handlers` folder) first. */
export function checkOrder(dir: string): string[] {
  const files = scenarioFiles(dir);
  const first = (f: string): number => (f.split(path.sep).includes('handlers') ? 0 : 1);
  return [...files].sort((a, b) => first(a) - first(b) || (a < b ? -1 : a > b ? 1 : 0));
}

/** Runs the shipped scenarios the handlers apply to, in this process. */
export function checkScenarios(loaded: LoadedHandlers, dir: string, cwd: string, failFast = false): CheckRow[] {
  const machine = handlersMachine(loaded.handlers);
  const rows: CheckRow[] = [];
  for (const abs of checkOrder(dir)) {
    if (failFast && rows.some((r) => !r.ok)) break;
    const shown = shownPath(cwd, abs);
    const s = loadScenarioFile(abs, shown);
    if (!handlersApply(s)) continue;
    const r = runScenario({ ...s, file: shown }, { machine });
    rows.push({
      kind: 'scenario',
      name: shown,
      ok: r.ok,
      diagnosis: oneLine(r.ok ? `outcome ${r.outcome}; ${r.expectations.length} expectations hold` : diagnosis(r)),
      ...(r.ok ? {} : { replay: replayLine(shown, s, { handlers: loaded.spec }) }),
    });
  }
  return rows;
}

function caseOptions(loaded: LoadedHandlers): CaseOptions {
  if (loaded.file !== undefined) return { mode: 'trusted', handlersFile: loaded.file };
  if (loaded.spec.startsWith('canary:')) return { mode: 'trusted', canary: loaded.spec.slice('canary:'.length) };
  return { mode: 'trusted' };
}

/** The fixed-seed campaign: one row when it passes, one per kind of failure otherwise. */
export function checkFuzz(loaded: LoadedHandlers, o: { runs: number; seed: number | string; jobs: number; out: string; cwd: string }): { rows: CheckRow[]; result: CampaignResult; written: WrittenFailure[] } {
  const result = runCampaign({
    runs: o.runs,
    seed: o.seed,
    jobs: o.jobs,
    spec: { gen: { guest: CHECK_PROFILE, host: 'current', hostToggles: {}, guestToggles: {}, size: 'small' }, case: caseOptions(loaded) },
    shrinkBudget: CHECK_SHRINK_BUDGET,
  });
  const command = ['apf', 'fuzz', '--runs', String(o.runs), '--seed', String(o.seed), '--handlers', loaded.spec].map(shellWord).join(' ');
  const written = writeFailures(result.shrunk, o.out, o.cwd, { seed: result.seed, mode: 'trusted', command, handlers: loaded.spec });
  const rows: CheckRow[] = [];
  if (result.failed === 0) {
    rows.push({ kind: 'fuzz', name: `fuzz campaign (${result.runs} runs, seed ${result.seed})`, ok: true, diagnosis: 'no property failed' });
    return { rows, result, written };
  }
  for (const [property, count] of Object.entries(result.byProperty).sort((a, b) => b[1] - a[1])) {
    const sh = result.shrunk.find((x) => x.original.result.failures[0]?.property === property);
    const first = result.failures.find((f) => f.failures[0]?.property === property);
    const f = sh?.shrunk.result.failures[0] ?? first?.failures[0];
    const w = sh === undefined ? undefined : written.find((x) => x.index === sh.index);
    rows.push({
      kind: 'fuzz',
      name: `fuzz: ${property}`,
      ok: false,
      count,
      diagnosis: oneLine(`${count} of ${result.runs} runs${first === undefined ? '' : `, first run ${first.index}`}: ${f?.message ?? property}`),
      replay: w?.replay ?? `${command}  # run ${first?.index ?? '?'}`,
    });
  }
  return { rows, result, written };
}

function nonNegativeInt(p: Parsed, name: string): number | undefined {
  const v = str(p, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(n)) throw new UsageError(`apf check: --${name} ${v}: expected a whole number (0 or more)`);
  return n;
}

/** Runs `apf check` and returns the result (the command prints it). */
export function runCheck(loaded: LoadedHandlers, o: { dir: string; cwd: string; fuzz: boolean; runs: number; seed: number | string; jobs: number; out: string; failFast?: boolean }): CheckResult {
  const rows = checkScenarios(loaded, o.dir, o.cwd, o.failFast === true);
  const scenarios = rows.length;
  let fuzzSeed: string | null = null;
  if (o.fuzz && !(o.failFast === true && rows.some((r) => !r.ok))) {
    const f = checkFuzz(loaded, o);
    rows.push(...f.rows);
    fuzzSeed = f.result.seed;
  }
  return { handlers: loaded.spec, rows, ok: rows.every((r) => r.ok), scenarios, fuzzRuns: o.fuzz ? o.runs : 0, fuzzSeed };
}

/** The verdict table and the replay lines of the failures. */
export function checkLines(r: CheckResult): string[] {
  const failed = r.rows.filter((x) => !x.ok);
  const width = Math.max(4, ...r.rows.map((x) => x.name.length));
  const lines = [`apf check --handlers ${r.handlers}: ${r.scenarios} scenarios${r.fuzzRuns > 0 ? `, fuzz campaign of ${r.fuzzRuns} runs (seed ${r.fuzzSeed ?? '?'})` : ''}`, ''];
  lines.push(`${'case'.padEnd(width)}  verdict  diagnosis`);
  lines.push(`${'─'.repeat(width)}  ───────  ${'─'.repeat(9)}`);
  for (const x of r.rows) lines.push(`${x.name.padEnd(width)}  ${x.ok ? 'PASS   ' : 'FAIL   '}  ${x.diagnosis}`);
  lines.push('');
  if (failed.length === 0) lines.push(`PASS all ${r.rows.length} cases`);
  else {
    lines.push(`FAIL ${failed.length} of ${r.rows.length} cases; replay:`);
    for (const x of failed) lines.push(`  ${x.replay ?? '-'}`);
  }
  return lines;
}

export function checkCommand(argv: readonly string[], io: CliIo, deps: CliDeps): number {
  const p = parse('check', argv, OPTIONS, 0);
  if (flag(p, 'help')) {
    io.out(CHECK_HELP);
    return 0;
  }
  const spec = str(p, 'handlers');
  if (spec === undefined) throw new UsageError('apf check: which handlers? (apf check --handlers FILE; "stock" checks the profile\'s own)');
  const loaded = loadHandlers('check', spec, io.cwd);
  const given = str(p, 'scenarios');
  const dir = given === undefined ? path.join(PACKAGE_ROOT, 'scenarios') : path.resolve(io.cwd, given);
  if (given !== undefined && scenarioFiles(dir).length === 0) throw new UsageError(`apf check: --scenarios ${given}: no scenario files there`);
  const result = runCheck(loaded, {
    dir,
    cwd: io.cwd,
    fuzz: !flag(p, 'no-fuzz'),
    runs: positiveIntArg('check', p, 'runs') ?? CHECK_RUNS,
    seed: seedArg('check', p) ?? CHECK_SEED,
    jobs: nonNegativeInt(p, 'jobs') ?? deps.jobs ?? defaultJobs(),
    failFast: flag(p, 'fail-fast'),
    out: path.resolve(io.cwd, str(p, 'out') ?? (io.env.APF_RUNS_DIR === undefined ? path.join('runs', 'check') : path.join(io.env.APF_RUNS_DIR, 'check'))),
  });
  if (flag(p, 'json')) io.out(JSON.stringify({ format: 'apf-check-result/1', ...result, handlersSpec: spec, description: loaded.description ?? null }, null, 2) + '\n');
  else io.out(checkLines(result).join('\n') + '\n');
  return result.ok ? 0 : 1;
}
