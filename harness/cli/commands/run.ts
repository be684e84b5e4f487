/**
 * `apf run [FILE]`: run one scenario (default: scenarios/default.json), print the timeline,
 * summary, checker findings and verdict, stream the trace to a file, and on failure write a
 * failure file and print the replay line. Exit 0 when the expectations hold, 1 when not.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { nanoid } from 'nanoid';
import { formatTime } from '../../../sim/clock';
import { headerLines, reportLines, verdictLines } from '../../report/human';
import { toResult, type RunResult } from '../../report/result';
import { runScenario, type RunReport } from '../../runner';
import { loadScenarioFile, ScenarioError } from '../../scenario/load';
import { applyOverrides, parseToggle, replayLine, UsageError, type Overrides } from '../../scenario/overrides';
import type { Scenario } from '../../scenario/types';
import { JsonlSink } from '../../trace/jsonl';
import { PerfettoSink } from '../../trace/perfetto';
import { EXTENSION, FileOut, formatForFile, TRACE_FORMATS, type TextOut, type TraceFormat, type TraceSink } from '../../trace/sink';
import { TextSink } from '../../trace/text';
import { CollectSink, htmlReport, REPORT_RECORDS, writeReport, type CollectedRecords } from '../../report/html';
import { flag, helpText, list, parse, positiveIntArg, seedArg, str, timeArg, type OptionSpecs, type Parsed } from '../args';
import { ALL_ERRORS_OPTION, DEFAULT_SCENARIO, shownPath, type CliIo } from '../io';
import { errnoText, makeDir, outputDirProblem, outputFileProblem } from '../../util/files';
import type { CliDeps } from '../cli';
import { loadHandlers, STOCK, type LoadedHandlers } from '../../handlers-file';
import { buildMachine } from '../../machine';
import type { MachineFactory } from '../../machine-api';

/** Options shared by run and compare. */
export const COMMON_OPTIONS: OptionSpecs = {
  variant: { type: 'string', value: 'NAME', help: 'run a variant of a regression scenario, e.g. "buggy" (the run with the bug present; see the file\'s "regression.variants")' },
  seed: { type: 'string', value: 'N', help: 'seed of the run (default: the scenario\'s "seed", else 1)' },
  guest: { type: 'string', value: 'PROFILE', help: 'guest profile (see apf list)' },
  host: { type: 'string', value: 'PROFILE', help: 'host profile (see apf list)' },
  toggle: { type: 'string', multiple: true, value: 'NAME=on|off', help: 'set one host or guest toggle (repeatable; host.NAME / guest.NAME if ambiguous)' },
  json: { type: 'boolean', help: 'print the result as JSON (docs/cli.md) instead of the report' },
  quiet: { type: 'boolean', short: 'q', help: 'print only the verdict (and the replay line)' },
  'max-events': { type: 'string', value: 'N', help: 'event budget (default: the scenario\'s, else 5000000)' },
  'max-time': { type: 'string', value: 'TIME', help: 'virtual-time budget, e.g. 10s (default: the scenario\'s, else 10s)' },
  ...ALL_ERRORS_OPTION,
  handlers: { type: 'string', value: 'FILE', help: 'replace guest async-PF handlers with those a .ts/.js module exports as `handlers` (docs/handlers.md); also "stock" or "canary:NAME"' },
};

export const HELP_OPTION: OptionSpecs = { help: { type: 'boolean', short: 'h', help: 'show this help' } };

const RUN_OPTIONS: OptionSpecs = {
  ...COMMON_OPTIONS,
  trace: { type: 'string', value: 'FILE', help: 'write the trace to FILE (format from --trace-format, else from the extension; - is stdout, as text)' },
  'trace-format': { type: 'string', value: 'FMT', help: 'text (trace-cmd style), jsonl or perfetto (Chrome trace JSON for ui.perfetto.dev)' },
  verbose: { type: 'boolean', short: 'v', help: 'show every timeline line and every record kind' },
  'runs-dir': { type: 'string', value: 'DIR', help: 'where failure files and automatic traces go (default: ./runs, or $APF_RUNS_DIR)' },
  report: { type: 'string', value: 'FILE', help: 'write a self-contained HTML picture of the run(s): per-vCPU swim lanes, protocol arrows, violations, summary' },
  junit: { type: 'string', value: 'FILE', help: 'suite runs: write the verdicts as JUnit XML (for CI)' },
  shard: { type: 'string', value: 'I/N', help: 'suite runs: run only the I-th of N interleaved slices of the files (CI sharding)' },
  jobs: { type: 'string', value: 'N', help: 'suite runs: worker threads (default: the cores, at most the files; 0 runs in this thread)' },
  ...HELP_OPTION,
};

export const RUN_HELP = helpText(
  'apf run [FILE|DIR ...] [options]',
  [
    'Runs one scenario (default: the built-in scenarios/default.json) and prints a per-vCPU timeline,',
    'a summary, the checkers\' findings and the verdict. Exit status: 0 expectations hold, 1 they do not',
    '(or a checker fired), 2 bad input. On failure the trace and a failure file are kept under runs/',
    'and a one-line replay command is printed.',
    '',
    'Given a directory or several files it runs a suite: every scenario file, on worker threads, and',
    'prints one verdict line per file (PASS, FAIL or SKIP with the reason) and the replay line of each',
    'failure. Exit 1 if any failed.',
  ],
  RUN_OPTIONS,
  [
    'examples:',
    '  apf run scenarios/default.json --seed 7 --host linux-4.19 --toggle nonzero_token=off --trace out.json --trace-format perfetto',
    '  apf run scenarios/ --junit junit.xml --shard 1/4',
    '  apf run scenarios/regressions --variant buggy --report buggy.html',
  ],
);

/** Reads the overrides shared by run and compare. */
export function overridesFrom(cmd: string, p: Parsed): Overrides {
  const seed = seedArg(cmd, p);
  const guest = str(p, 'guest');
  const host = str(p, 'host');
  const maxEvents = positiveIntArg(cmd, p, 'max-events');
  const maxTime = timeArg(cmd, p, 'max-time');
  const variant = str(p, 'variant');
  return {
    ...(variant === undefined ? {} : { variant }),
    ...(seed === undefined ? {} : { seed }),
    ...(guest === undefined ? {} : { guest }),
    ...(host === undefined ? {} : { host }),
    toggles: list(p, 'toggle').map(parseToggle),
    ...(maxEvents === undefined ? {} : { maxEvents }),
    ...(maxTime === undefined ? {} : { maxTime }),
  };
}

/** `--handlers SPEC` of run/compare: the loaded handlers and the machine factory that uses them. */
export function handlersFrom(cmd: string, p: Parsed, io: CliIo, deps: CliDeps): { loaded?: LoadedHandlers; machine?: MachineFactory } {
  const spec = str(p, 'handlers');
  if (spec === undefined) return deps.machine === undefined ? {} : { machine: deps.machine };
  const loaded = loadHandlers(cmd, spec, io.cwd);
  return { loaded, machine: deps.machine ?? handlersMachine(loaded.handlers) };
}

/** The real machine with replacement guest handlers. */
export function handlersMachine(handlers: LoadedHandlers['handlers']): MachineFactory {
  return (s, sim) => buildMachine(s, sim, { handlers });
}

/** Refuses handlers on a scenario that does not run the guest kernel. */
export function checkHandlersApply(cmd: string, loaded: LoadedHandlers | undefined, s: Scenario, fileShown: string): void {
  if (loaded !== undefined && loaded.spec !== STOCK && s.bare !== undefined) {
    throw new UsageError(`apf ${cmd}: --handlers ${loaded.spec}: ${fileShown} runs the bare-metal guest script, which has no kvm.c handlers to replace`);
  }
}

function traceFormatArg(p: Parsed, file: string | undefined): TraceFormat {
  const f = str(p, 'trace-format');
  if (f === undefined) return file === undefined ? 'jsonl' : formatForFile(file);
  if (!(TRACE_FORMATS as readonly string[]).includes(f)) throw new UsageError(`apf run: --trace-format ${f}: expected text, jsonl or perfetto`);
  return f as TraceFormat;
}

/** Creates the trace sink for a file. */
export function traceSink(format: TraceFormat, file: string | TextOut, s: Scenario, runId: string): { sink: TraceSink; out: TextOut } {
  const out = typeof file === 'string' ? new FileOut(file) : file;
  const meta = { scenario: s.name, seed: String(s.seed), guest: s.machine.guest.profile, host: s.machine.host.profile, runId };
  switch (format) {
    case 'jsonl':
      return { sink: new JsonlSink(out), out };
    case 'perfetto':
      return { sink: new PerfettoSink(out, { cpus: s.machine.vcpus, meta }), out };
    case 'text':
      return {
        sink: new TextSink(out, {
          cpus: s.machine.vcpus,
          comment: [`kvm-apf-harness trace of scenario ${s.name}`, `run ${runId}: seed ${String(s.seed)}, guest ${s.machine.guest.profile}, host ${s.machine.host.profile}`],
        }),
        out,
      };
  }
}

/** One scenario run as `apf run FILE` does it (also what each suite worker does per file). */
export interface RunRequest {
  /** Absolute path of the scenario file. */
  readonly file: string;
  /** The path as the user typed it (goes into the replay line). */
  readonly fileShown: string;
  readonly overrides: Overrides;
  readonly cwd: string;
  /** Absolute runs directory (failure files, automatic traces). */
  readonly runsDir: string;
  /** How the runs directory was named, for messages ("--runs-dir out"); default: the path. */
  readonly runsWhat?: string;
  /** The runs directory was named (--runs-dir, APF_RUNS_DIR): a failure file that cannot be written there is bad input. */
  readonly runsNamed?: boolean;
  /** --trace FILE (absolute), or undefined for the automatic trace kept only on failure. */
  readonly traceFile?: string;
  readonly traceShownArg?: string;
  readonly format: TraceFormat;
  readonly json: boolean;
  readonly quiet: boolean;
  readonly verbose: boolean;
  /** Also print the header (scenario, machine) before the run. */
  readonly header: boolean;
  /** Keep up to this many records (as jsonl objects with their text line) for the HTML report. */
  readonly collect?: number;
  /** `--handlers`: replacement guest handlers (the spec is also in `overrides.handlers`). */
  readonly handlers?: LoadedHandlers;
}

/** What a run printed and produced. */
export interface RunDone {
  readonly code: number;
  readonly out: string;
  readonly err: string;
  /** The first line of the verdict ("PASS name: ..." / "FAIL name: ..."). */
  readonly verdict: string;
  readonly result: RunResult | null;
  readonly collected: CollectedRecords;
}

/** Runs one scenario file; input problems throw ScenarioError / UsageError. */
export function executeRun(req: RunRequest, deps: CliDeps = {}): RunDone {
  let out = '';
  let err = '';
  const loaded = loadScenarioFile(req.file, req.fileShown);
  const scenario = applyOverrides({ ...loaded, file: req.fileShown }, req.overrides);
  checkHandlersApply('run', req.handlers, scenario, req.fileShown);
  const machine = deps.machine ?? (req.handlers === undefined ? undefined : handlersMachine(req.handlers.handlers));
  const replay = replayLine(req.fileShown, scenario, req.overrides);
  const runId = nanoid(12);
  const { runsDir, json, quiet } = req;
  const runsWhat = req.runsWhat ?? `runs directory ${shownPath(req.cwd, runsDir)}`;

  // Every place this run may write is checked before it starts: a run is never lost to a bad path at its end.
  // The runs directory is needed for the automatic trace, or when named (--runs-dir, APF_RUNS_DIR); with
  // --trace and the default ./runs, a run in a read-only directory still works and only a failure file is missed.
  const runsProblem = req.runsNamed === true || req.traceFile === undefined ? outputDirProblem(runsDir) : undefined;
  if (runsProblem !== undefined) throw new UsageError(`apf run: ${runsWhat}: ${runsProblem}`);
  if (req.traceFile !== undefined && req.traceShownArg !== '-') {
    const traceProblem = sameFile(req.file, req.traceFile) ? 'is the scenario file itself (it would be overwritten)' : outputFileProblem(req.traceFile);
    if (traceProblem !== undefined) throw new UsageError(`apf run: --trace ${req.traceShownArg ?? req.traceFile}: ${traceProblem}`);
  }

  // The trace streams to --trace FILE, or to runs/<runId>.trace.jsonl (kept only if the run fails).
  let auto = false;
  let tracePath: string;
  const runsDirExisted = fs.existsSync(runsDir);
  if (req.traceFile !== undefined) tracePath = req.traceFile;
  else {
    auto = true;
    const why = makeDir(runsDir);
    if (why !== undefined) throw new UsageError(`apf run: ${runsWhat}: ${why}`);
    tracePath = path.join(runsDir, `${runId}${EXTENSION[req.format]}`);
  }
  // `--trace -`: the trace goes to stdout, ahead of the report.
  const toStdout = req.traceFile !== undefined && req.traceShownArg === '-';
  let opened: { sink: TraceSink; out: TextOut };
  try {
    opened = traceSink(req.format, toStdout ? { write: (t) => (out += t), end: () => undefined } : tracePath, scenario, runId);
  } catch (e) {
    throw new UsageError(`apf run: cannot write the trace to ${req.traceShownArg ?? shownPath(req.cwd, tracePath)}: ${errnoText(e)}`);
  }
  const collector = new CollectSink(req.collect ?? 0);

  let report: RunReport | undefined;
  let crash: unknown;
  try {
    report = runScenario(scenario, {
      sinks: req.collect === undefined ? [opened.sink] : [opened.sink, collector],
      keepRecords: json || quiet ? 0 : 20_000,
      // The header comes once the machine is built: a scenario it cannot be built from prints only its one line.
      onBuilt: () => {
        if (req.header && !json && !quiet) out += headerLines({ scenario }, { fileShown: req.fileShown, warnings: scenario.warnings }).join('\n') + '\n';
      },
      ...(machine === undefined ? {} : { machine }),
    });
  } catch (e) {
    crash = e;
  } finally {
    try {
      opened.sink.close(report?.endT ?? 0);
    } catch {
      opened.out.end();
    }
  }

  if (report?.outcome === 'bad_machine') {
    // Known before the first instruction ran: bad input, reported like a validation problem.
    if (auto) removeQuietly(tracePath, runsDirExisted ? undefined : runsDir);
    throw new ScenarioError(req.fileShown, '', report.endDetail ?? 'the machine cannot be built from this scenario');
  }
  const failed = report === undefined || !report.ok;
  const traceShown = toStdout ? '-' : shownPath(req.cwd, tracePath);
  if (auto && !failed) removeQuietly(tracePath, runsDirExisted ? undefined : runsDir);
  let failureFile: string | undefined;
  if (failed && makeDir(runsDir) === undefined) failureFile = path.join(runsDir, `${runId}.failure.json`);
  const ctx = {
    runId,
    replay,
    trace: !auto || failed ? { file: traceShown, format: req.format } : null,
    failureFile: failureFile === undefined ? null : shownPath(req.cwd, failureFile),
  };

  if (report === undefined) {
    // A bug in the harness itself: keep everything and say so.
    const e = crash instanceof Error ? crash : new Error(String(crash));
    if (failureFile !== undefined) {
      writeQuietly(failureFile, JSON.stringify({ runId, scenario: req.fileShown, replay, internalError: { message: e.message, stack: e.stack ?? null }, trace: ctx.trace }, null, 2) + '\n');
    }
    err += `apf run: internal error: ${e.message}\nreplay: ${replay}\ntrace: ${traceShown}\nfailure details: ${ctx.failureFile ?? '-'}\n`;
    return { code: 1, out, err, verdict: `FAIL ${scenario.name}: internal error: ${e.message}`, result: null, collected: collector.done() };
  }

  const result = toResult(report, ctx);
  const failureProblem = failureFile === undefined ? undefined : writeFailure(failureFile, result, report, loaded);
  const files = { ...(ctx.trace === null || toStdout ? {} : { traceFile: ctx.trace.file }), ...(ctx.failureFile === null ? {} : { failureFile: ctx.failureFile }) };
  const verdict = verdictLines(report, { replay })[0] ?? '';
  if (json) out += JSON.stringify(result, null, 2) + '\n';
  else {
    const lines = quiet ? verdictLines(report, { replay, ...files }) : reportLines(report, { fileShown: req.fileShown, verbose: req.verbose, replay, ...files });
    out += lines.join('\n') + '\n';
  }
  // The run itself is reported above; an output that could not be written is bad input (exit 2), named last.
  let code = report.ok ? 0 : 1;
  const traceFailure = opened.out instanceof FileOut ? opened.out.failure : undefined;
  if (traceFailure !== undefined) {
    err += `apf run: ${req.traceFile === undefined ? 'the automatic trace' : `--trace ${req.traceShownArg ?? req.traceFile}`}: writing failed (${errnoText(traceFailure)}); the trace file is incomplete\n`;
    code = 2;
  }
  if (failureProblem !== undefined || (failed && failureFile === undefined)) {
    err += `apf run: ${runsWhat}: the failure file could not be written (${failureProblem ?? outputDirProblem(runsDir) ?? 'cannot create the directory'})\n`;
    if (req.runsNamed === true) code = 2;
  }
  return { code, out, err, verdict, result, collected: collector.done() };
}

export function runCommand(argv: readonly string[], io: CliIo, deps: CliDeps): number {
  const p = parse('run', argv, RUN_OPTIONS, Infinity);
  if (flag(p, 'help')) {
    io.out(RUN_HELP);
    return 0;
  }
  const hs = handlersFrom('run', p, io, deps);
  const overrides: Overrides = { ...overridesFrom('run', p), ...(hs.loaded === undefined ? {} : { handlers: hs.loaded.spec }) };
  const runsGiven = str(p, 'runs-dir');
  const runsDir = path.resolve(io.cwd, runsGiven ?? io.env.APF_RUNS_DIR ?? 'runs');
  const runsWhat = runsGiven !== undefined ? `--runs-dir ${runsGiven}` : io.env.APF_RUNS_DIR !== undefined ? `APF_RUNS_DIR ${io.env.APF_RUNS_DIR}` : `runs directory ${shownPath(io.cwd, runsDir)}`;
  const runsNamed = runsGiven !== undefined || io.env.APF_RUNS_DIR !== undefined;
  const reportFile = str(p, 'report');
  // The report is written after the runs: its path is checked before them.
  const reportProblem = reportFile === undefined || reportFile === '-' ? undefined : outputFileProblem(path.resolve(io.cwd, reportFile));
  if (reportProblem !== undefined) throw new UsageError(`apf run: --report ${reportFile ?? ''}: ${reportProblem}`);
  const given = p.positionals;
  const single = given.length <= 1 && (given[0] === undefined || !isDirectory(path.resolve(io.cwd, given[0]))) && str(p, 'junit') === undefined && str(p, 'shard') === undefined;
  if (!single) {
    if (str(p, 'trace') !== undefined) throw new UsageError('apf run: --trace names one file; with several scenarios use --report FILE (or run them one by one)');
    if (hs.loaded !== undefined) throw new UsageError('apf run: --handlers with a suite: use apf check --handlers FILE (every applicable scenario plus a fuzz campaign)');
    // Loaded only for suites: a single run does not pay for the worker pool (and run.ts, which the
    // suite's workers load, does not load the suite back).
    const { suiteCommand } = require('../../suite/suite') as typeof import('../../suite/suite');
    return suiteCommand({ given, overrides, runsDir, junit: str(p, 'junit'), shard: str(p, 'shard'), report: reportFile, jobs: nonNegativeIntArg(p, 'jobs'), json: flag(p, 'json'), quiet: flag(p, 'quiet') }, io, deps);
  }
  const first = given[0];
  const file = first === undefined ? DEFAULT_SCENARIO : path.resolve(io.cwd, first);
  const fileShown = first ?? shownPath(io.cwd, DEFAULT_SCENARIO);
  const traceArg = str(p, 'trace');
  const done = executeRun(
    {
      file,
      fileShown,
      overrides,
      cwd: io.cwd,
      runsDir,
      runsWhat,
      runsNamed,
      ...(traceArg === undefined ? {} : { traceFile: traceArg === '-' ? '-' : path.resolve(io.cwd, traceArg), traceShownArg: traceArg }),
      format: traceArg === '-' && str(p, 'trace-format') === undefined ? 'text' : traceFormatArg(p, traceArg),
      json: flag(p, 'json'),
      quiet: flag(p, 'quiet'),
      verbose: flag(p, 'verbose'),
      header: true,
      ...(reportFile === undefined ? {} : { collect: REPORT_RECORDS }),
      ...(hs.loaded === undefined ? {} : { handlers: hs.loaded }),
    },
    deps,
  );
  if (done.out !== '') io.out(done.out);
  if (done.err !== '') io.err(done.err);
  if (reportFile !== undefined && done.result !== null) {
    writeReport(io, reportFile, htmlReport({ title: `apf run ${fileShown}`, runs: [{ file: fileShown, verdict: done.verdict, result: done.result, collected: done.collected }] }));
  }
  return done.code;
}

function isDirectory(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

function nonNegativeIntArg(p: Parsed, name: string): number | undefined {
  const v = str(p, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(n)) throw new UsageError(`apf run: --${name} ${v}: expected a whole number (0 or more)`);
  return n;
}

/** Removes the automatic trace of a passing run, and the runs directory if this run created it and it is empty. */
function removeQuietly(file: string, createdDir: string | undefined): void {
  try {
    fs.unlinkSync(file);
    if (createdDir !== undefined && fs.readdirSync(createdDir).length === 0) fs.rmdirSync(createdDir);
  } catch {
    // Leaving a trace file behind is harmless.
  }
}

/** Whether two paths name the same existing file. */
function sameFile(a: string, b: string): boolean {
  try {
    const sa = fs.statSync(a);
    const sb = fs.statSync(b);
    return sa.dev === sb.dev && sa.ino === sb.ino;
  } catch {
    return false;
  }
}

/** Writes a file; the reason in words when that fails. */
function writeQuietly(file: string, text: string): string | undefined {
  try {
    fs.writeFileSync(file, text);
    return undefined;
  } catch (e) {
    return errnoText(e);
  }
}

function writeFailure(file: string, result: RunResult, report: RunReport, loaded: Scenario): string | undefined {
  const body = {
    ...result,
    endDetail: report.endDetail ?? null,
    errorStack: report.error?.stack ?? null,
    endedAt: formatTime(report.endT).trim(),
    scenarioAsLoaded: { file: loaded.file ?? null, name: loaded.name, seed: loaded.seed },
  };
  return writeQuietly(file, JSON.stringify(body, (_k, v: unknown) => (typeof v === 'bigint' ? '0x' + v.toString(16) : v), 2) + '\n');
}
