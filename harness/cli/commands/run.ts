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
import { loadScenarioFile } from '../../scenario/load';
import { applyOverrides, parseToggle, replayLine, UsageError, type Overrides } from '../../scenario/overrides';
import type { Scenario } from '../../scenario/types';
import { JsonlSink } from '../../trace/jsonl';
import { PerfettoSink } from '../../trace/perfetto';
import { EXTENSION, FileOut, formatForFile, TRACE_FORMATS, type TraceFormat, type TraceSink } from '../../trace/sink';
import { TextSink } from '../../trace/text';
import { flag, helpText, list, parse, positiveIntArg, seedArg, str, timeArg, type OptionSpecs, type Parsed } from '../args';
import { DEFAULT_SCENARIO, shownPath, type CliIo } from '../io';
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
  handlers: { type: 'string', value: 'FILE', help: 'replace guest async-PF handlers with those a .ts/.js module exports as `handlers` (docs/handlers.md); also "stock" or "canary:NAME"' },
};

export const HELP_OPTION: OptionSpecs = { help: { type: 'boolean', short: 'h', help: 'show this help' } };

const RUN_OPTIONS: OptionSpecs = {
  ...COMMON_OPTIONS,
  trace: { type: 'string', value: 'FILE', help: 'write the trace to FILE (format from --trace-format, else from the extension)' },
  'trace-format': { type: 'string', value: 'FMT', help: 'text (trace-cmd style), jsonl or perfetto (Chrome trace JSON for ui.perfetto.dev)' },
  verbose: { type: 'boolean', short: 'v', help: 'show every timeline line and every record kind' },
  'runs-dir': { type: 'string', value: 'DIR', help: 'where failure files and automatic traces go (default: ./runs, or $APF_RUNS_DIR)' },
  ...HELP_OPTION,
};

export const RUN_HELP = helpText(
  'apf run [FILE] [options]',
  [
    'Runs one scenario (default: the built-in scenarios/default.json) and prints a per-vCPU timeline,',
    'a summary, the checkers\' findings and the verdict. Exit status: 0 expectations hold, 1 they do not',
    '(or a checker fired), 2 bad input. On failure the trace and a failure file are kept under runs/',
    'and a one-line replay command is printed.',
  ],
  RUN_OPTIONS,
  ['example:', '  apf run scenarios/default.json --seed 7 --host linux-4.19 --toggle nonzero_token=off --trace out.json --trace-format perfetto'],
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
export function traceSink(format: TraceFormat, file: string, s: Scenario, runId: string): { sink: TraceSink; out: FileOut } {
  const out = new FileOut(file);
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

export function runCommand(argv: readonly string[], io: CliIo, deps: CliDeps): number {
  const p = parse('run', argv, RUN_OPTIONS, 1);
  if (flag(p, 'help')) {
    io.out(RUN_HELP);
    return 0;
  }
  const given = p.positionals[0];
  const file = given === undefined ? DEFAULT_SCENARIO : path.resolve(io.cwd, given);
  const fileShown = given ?? shownPath(io.cwd, DEFAULT_SCENARIO);
  const hs = handlersFrom('run', p, io, deps);
  const overrides: Overrides = { ...overridesFrom('run', p), ...(hs.loaded === undefined ? {} : { handlers: hs.loaded.spec }) };
  const traceFile = str(p, 'trace');
  const format = traceFormatArg(p, traceFile);
  const json = flag(p, 'json');
  const quiet = flag(p, 'quiet');

  const loaded = loadScenarioFile(file, fileShown);
  const scenario = applyOverrides({ ...loaded, file: fileShown }, overrides);
  checkHandlersApply('run', hs.loaded, scenario, fileShown);
  const replay = replayLine(fileShown, scenario, overrides);
  const runId = nanoid(12);
  const runsDir = path.resolve(io.cwd, str(p, 'runs-dir') ?? io.env.APF_RUNS_DIR ?? 'runs');

  if (!json && !quiet) io.out(headerLines({ scenario }, { fileShown, warnings: scenario.warnings }).join('\n') + '\n');

  // The trace streams to --trace FILE, or to runs/<runId>.trace.jsonl (kept only if the run fails).
  let auto = false;
  let tracePath: string;
  const runsDirExisted = fs.existsSync(runsDir);
  if (traceFile !== undefined) tracePath = path.resolve(io.cwd, traceFile);
  else {
    auto = true;
    fs.mkdirSync(runsDir, { recursive: true });
    tracePath = path.join(runsDir, `${runId}${EXTENSION[format]}`);
  }
  let opened: { sink: TraceSink; out: FileOut };
  try {
    opened = traceSink(format, tracePath, scenario, runId);
  } catch (e) {
    throw new UsageError(`apf run: cannot write the trace to ${traceFile ?? tracePath}: ${(e as Error).message}`);
  }

  let report: RunReport | undefined;
  let crash: unknown;
  try {
    report = runScenario(scenario, { sinks: [opened.sink], keepRecords: json || quiet ? 0 : 20_000, ...(hs.machine === undefined ? {} : { machine: hs.machine }) });
  } catch (e) {
    crash = e;
  } finally {
    try {
      opened.sink.close(report?.endT ?? 0);
    } catch {
      opened.out.end();
    }
  }

  const failed = report === undefined || !report.ok;
  const traceShown = shownPath(io.cwd, tracePath);
  if (auto && !failed) removeQuietly(tracePath, runsDirExisted ? undefined : runsDir);
  let failureFile: string | undefined;
  if (failed) {
    fs.mkdirSync(runsDir, { recursive: true });
    failureFile = path.join(runsDir, `${runId}.failure.json`);
  }
  const ctx = {
    runId,
    replay,
    trace: !auto || failed ? { file: traceShown, format } : null,
    failureFile: failureFile === undefined ? null : shownPath(io.cwd, failureFile),
  };

  if (report === undefined) {
    // A bug in the harness itself: keep everything and say so.
    const err = crash instanceof Error ? crash : new Error(String(crash));
    if (failureFile !== undefined) {
      fs.writeFileSync(failureFile, JSON.stringify({ runId, scenario: fileShown, replay, internalError: { message: err.message, stack: err.stack ?? null }, trace: ctx.trace }, null, 2) + '\n');
    }
    io.err(`apf run: internal error: ${err.message}\nreplay: ${replay}\ntrace: ${traceShown}\nfailure details: ${ctx.failureFile ?? '-'}\n`);
    return 1;
  }

  const result = toResult(report, ctx);
  if (failureFile !== undefined) writeFailure(failureFile, result, report, loaded);
  if (json) io.out(JSON.stringify(result, null, 2) + '\n');
  else {
    const files = { ...(ctx.trace === null ? {} : { traceFile: ctx.trace.file }), ...(ctx.failureFile === null ? {} : { failureFile: ctx.failureFile }) };
    const lines = quiet ? verdictLines(report, { replay, ...files }) : reportLines(report, { fileShown, verbose: flag(p, 'verbose'), replay, ...files });
    io.out(lines.join('\n') + '\n');
  }
  return report.ok ? 0 : 1;
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

function writeFailure(file: string, result: RunResult, report: RunReport, loaded: Scenario): void {
  const body = {
    ...result,
    endDetail: report.endDetail ?? null,
    errorStack: report.error?.stack ?? null,
    endedAt: formatTime(report.endT).trim(),
    scenarioAsLoaded: { file: loaded.file ?? null, name: loaded.name, seed: loaded.seed },
  };
  fs.writeFileSync(file, JSON.stringify(body, (_k, v: unknown) => (typeof v === 'bigint' ? '0x' + v.toString(16) : v), 2) + '\n');
}
