/**
 * `apf fuzz`: seeded interleaving exploration (docs/fuzzing.md). Generates random scenarios
 * (workloads, host behaviour, injected events, schedule perturbation), runs them on worker
 * threads, judges them by the checkers plus "the run ends" and "no panic", shrinks the first
 * failure of each kind and writes it as a scenario file with its replay line. Deterministic for a
 * given seed, run count and options, whatever the number of jobs.
 *
 *   apf fuzz --runs 2000 --seed 1 [--jobs J] [--guest P] [--host P] [--toggle NAME=on|off ...]
 *   apf fuzz --untrusted ...           the host against a hostile bare-metal guest
 *   apf fuzz --canary no-ack ...       against a deliberately broken guest (must fail)
 *   apf fuzz --replay FILE             judge one scenario file with the fuzz properties
 *   apf fuzz ... --shard I/N --json > shard-I.json   one shard of a campaign (CI matrix)
 *   apf fuzz merge shard-1.json ... shard-N.json     the shards' results as the whole campaign's
 */
import * as path from 'node:path';
import type { GuestProfileName, GuestToggle } from '../../../guest/profiles';
import type { HostProfileName, HostToggle } from '../../../host/config';
import { mergeTallies, resultFromTally, runCampaign, shrinkRuns, shrinkTargets, type CampaignResult, type CampaignTally } from '../../fuzz/campaign';
import { CANARY_NAMES, canaryByName } from '../../fuzz/canaries';
import { runScenarioCase, type FuzzMode } from '../../fuzz/case';
import { FUZZ_SIZES, type FuzzSize } from '../../fuzz/generators';
import { defaultJobs } from '../../fuzz/pool';
import { progressReporter } from '../../fuzz/progress';
import { writeFailures, writeHazards, type WrittenFailure, type WrittenHazard } from '../../fuzz/report';
import { caseDoc, type SearchSpec, type ShrinkOutcome } from '../../fuzz/search';
import { freshSeed } from '../../fuzz/seeds';
import { loadHandlers } from '../../handlers-file';
import { canonicalSeed } from '../../../sim/prng';
import { loadScenarioFile, ScenarioError } from '../../scenario/load';
import { APF_COMMAND, checkProfile, parseToggle, shellWord, UsageError, type ToggleSetting } from '../../scenario/overrides';
import { closest } from '../../util/names';
import { parseShard, type Shard } from '../../util/shard';
import { flag, helpText, list, parse, positiveIntArg, seedArg, str, type OptionSpecs, type Parsed } from '../args';
import type { CliDeps } from '../cli';
import { ALL_ERRORS_OPTION, shownPath, type CliIo } from '../io';
import { errnoText, outputDirProblem, readTextFile } from '../../util/files';

const OPTIONS: OptionSpecs = {
  runs: { type: 'string', value: 'N', help: 'number of random scenarios to run (default 500)' },
  seed: { type: 'string', value: 'S', help: 'campaign seed, integer or string (default: a fresh one, printed)' },
  jobs: { type: 'string', value: 'J', help: 'worker threads (default: number of cores; 0 = run in this process)' },
  guest: { type: 'string', value: 'PROFILE', help: 'guest profile of every run (default current)' },
  host: { type: 'string', value: 'PROFILE', help: 'host profile of every run (default current)' },
  toggle: { type: 'string', multiple: true, value: 'NAME=on|off', help: 'set a host or guest toggle in every run (repeatable)' },
  size: { type: 'string', value: 'SIZE', help: 'small (default), medium or large scenarios' },
  untrusted: { type: 'boolean', help: 'untrusted-guest mode: a hostile bare-metal guest, the host is the target' },
  canary: { type: 'string', value: 'NAME', help: `fuzz a deliberately broken guest (${CANARY_NAMES.join(', ')}): the campaign must fail` },
  handlers: { type: 'string', value: 'FILE', help: 'guest handlers from a .ts/.js module exporting `handlers` (docs/handlers.md), in every run; each worker loads it' },
  shard: { type: 'string', value: 'I/N', help: 'run only runs i with i % N == I-1 (a CI job of N); `apf fuzz merge` combines the --json results' },
  'fail-fast': { type: 'boolean', help: 'stop at the first failure (still the lowest failing run, for any --jobs)' },
  'shrink-budget': { type: 'string', value: 'N', help: 'runs a shrink may spend (default 300)' },
  out: { type: 'string', value: 'DIR', help: 'where shrunk failures go (default ./runs/fuzz, or $APF_RUNS_DIR/fuzz)' },
  replay: { type: 'string', value: 'FILE', help: 'judge one scenario file with the fuzz properties instead of running a campaign' },
  json: { type: 'boolean', help: 'print the result as JSON (docs/fuzzing.md)' },
  quiet: { type: 'boolean', short: 'q', help: 'no progress, only the verdict and the failures' },
  ...ALL_ERRORS_OPTION,
  help: { type: 'boolean', short: 'h', help: 'show this help' },
};

export const FUZZ_HELP = helpText(
  'apf fuzz --runs N --seed S [--jobs J] [--guest P] [--host P] [--toggle NAME=on|off ...] [--untrusted] [--out DIR]',
  [
    'Seeded interleaving exploration: random workloads, host behaviour (latencies, evictions, memory limits,',
    'allocation failures), injected events (NMI, SMI, CPU offline/online, INIT, APF and LAPIC off/on, migration,',
    'page-ready on another vCPU) and schedules (jittered vCPU steps), each judged by the checkers plus "the run',
    'ends" and "no panic". The first failure of each kind is shrunk and written as a scenario file with its replay',
    'line. Deterministic for a given seed and run count, whatever --jobs. Exit status: 0 no failure, 1 failures,',
    '2 bad input.',
  ],
  OPTIONS,
  [
    'examples:',
    '  apf fuzz --runs 2000 --seed 1',
    '  apf fuzz --runs 500 --seed 7 --host linux-5.8 --size medium',
    '  apf fuzz --untrusted --runs 1000 --seed 3',
    '  apf fuzz --canary no-ack --runs 300 --seed 1      # must find the broken ACK',
    '  apf fuzz --handlers my-handlers.ts --runs 500 --seed 1',
    '  apf fuzz --replay runs/fuzz/fuzz-1-14.json --canary no-ack',
    '  apf fuzz --runs 9000 --seed 1 --shard 2/3 --json > shard-2.json   # one of three CI jobs',
    '  apf fuzz merge shard-1.json shard-2.json shard-3.json         # the same report as one campaign',
  ],
);

interface FuzzSettings {
  readonly runs: number;
  readonly seed: number | string;
  readonly seedGiven: boolean;
  readonly jobs: number;
  readonly spec: SearchSpec;
  readonly toggles: readonly ToggleSetting[];
  readonly shrinkBudget: number;
  readonly failFast: boolean;
  readonly shard: Shard | undefined;
  readonly out: string;
  /** `--handlers` as given. */
  readonly handlers?: string;
}

function nonNegativeInt(p: Parsed, name: string): number | undefined {
  const v = str(p, name);
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(n)) throw new UsageError(`apf fuzz: --${name} ${v}: expected a whole number (0 or more)`);
  return n;
}

function sizeArg(p: Parsed): FuzzSize {
  const v = str(p, 'size');
  if (v === undefined) return 'small';
  if ((FUZZ_SIZES as readonly string[]).includes(v)) return v as FuzzSize;
  const h = closest(v, FUZZ_SIZES);
  throw new UsageError(`apf fuzz: --size ${v}: expected ${FUZZ_SIZES.join(', ')}${h === undefined ? '' : ` (did you mean ${h}?)`}`);
}

function canaryArg(p: Parsed): string | undefined {
  const v = str(p, 'canary');
  if (v === undefined) return undefined;
  if (CANARY_NAMES.includes(v)) return v;
  const h = closest(v, CANARY_NAMES);
  throw new UsageError(`apf fuzz: --canary ${v}: unknown canary${h === undefined ? '' : ` (did you mean "${h}"?)`}; canaries: ${CANARY_NAMES.join(', ')}`);
}

/** `--handlers FILE` (or canary:NAME / stock): checked here, loaded again by each worker. */
function handlersArg(p: Parsed, io: CliIo, canary: string | undefined, untrusted: boolean): { spec?: string; file?: string; canary?: string } {
  const spec = str(p, 'handlers');
  if (spec === undefined) return {};
  if (canary !== undefined) throw new UsageError('apf fuzz: --canary and --handlers both replace the guest handlers: use one (--handlers canary:NAME is --canary NAME)');
  if (untrusted) throw new UsageError('apf fuzz: --handlers has no effect with --untrusted (the guest is the hostile bare-metal script)');
  const loaded = loadHandlers('fuzz', spec, io.cwd);
  if (loaded.file !== undefined) return { spec, file: loaded.file };
  if (spec.startsWith('canary:')) return { spec, canary: spec.slice('canary:'.length) };
  return { spec };
}

function settings(p: Parsed, io: CliIo, deps: CliDeps): FuzzSettings {
  const untrusted = flag(p, 'untrusted');
  const canary0 = canaryArg(p);
  const hs = handlersArg(p, io, canary0, untrusted);
  const canary = canary0 ?? hs.canary;
  const guest = str(p, 'guest');
  const host = str(p, 'host');
  if (guest !== undefined) checkProfile('guest', guest);
  if (host !== undefined) checkProfile('host', host);
  const toggles = list(p, 'toggle').map(parseToggle);
  if (untrusted) {
    if (canary !== undefined) throw new UsageError('apf fuzz: --canary is a broken guest kernel; --untrusted runs the bare-metal guest instead: use one or the other');
    if (guest !== undefined) throw new UsageError('apf fuzz: --guest has no effect with --untrusted (the guest is the hostile bare-metal script)');
    const g = toggles.find((t) => t.side === 'guest');
    if (g !== undefined) throw new UsageError(`apf fuzz: --toggle ${g.text}: a guest toggle has no effect with --untrusted`);
  }
  const hostToggles: Partial<Record<HostToggle, boolean>> = {};
  const guestToggles: Partial<Record<GuestToggle, boolean>> = {};
  for (const t of toggles) {
    if (t.side === 'host') hostToggles[t.name as HostToggle] = t.value;
    else guestToggles[t.name as GuestToggle] = t.value;
  }
  const mode: FuzzMode = untrusted ? 'untrusted' : 'trusted';
  const seed = seedArg('fuzz', p);
  const shardText = str(p, 'shard');
  const shard = shardText === undefined ? undefined : parseShard(shardText);
  if (shard !== undefined && flag(p, 'fail-fast')) throw new UsageError('apf fuzz: --fail-fast cannot be combined with --shard (a shard cannot know where the other shards fail first)');
  const runs = positiveIntArg('fuzz', p, 'runs') ?? 500;
  const jobs = jobsArg('apf fuzz', p, io, runs, deps);
  const out = outArg('apf fuzz', p, io);
  return {
    runs,
    seed: seed ?? freshSeed(),
    seedGiven: seed !== undefined,
    jobs,
    spec: {
      gen: { guest: (guest ?? 'current') as GuestProfileName, host: (host ?? 'current') as HostProfileName, hostToggles, guestToggles, size: sizeArg(p) },
      case: { mode, ...(canary === undefined ? {} : { canary }), ...(hs.file === undefined ? {} : { handlersFile: hs.file }) },
    },
    ...(hs.spec === undefined ? {} : { handlers: hs.spec }),
    toggles,
    shrinkBudget: positiveIntArg('fuzz', p, 'shrink-budget') ?? 300,
    failFast: flag(p, 'fail-fast'),
    shard,
    out,
  };
}

/** --jobs: workers that really start, never more than the cores (said on stderr) nor than the runs to share out. */
function jobsArg(cmd: string, p: Parsed, io: CliIo, runs: number, deps: CliDeps): number {
  const cores = defaultJobs();
  const asked = nonNegativeInt(p, 'jobs');
  if (asked !== undefined && asked > cores) io.err(`${cmd}: --jobs ${asked}: using ${cores}, the number of cores (each worker holds its own copy of the simulator)\n`);
  return Math.min(asked ?? deps.jobs ?? cores, cores, Math.max(runs, 1));
}

/** --out, checked before any run so that results cannot be lost to a bad path at the end. */
function outArg(cmd: string, p: Parsed, io: CliIo): string {
  const given = str(p, 'out');
  const out = path.resolve(io.cwd, given ?? (io.env.APF_RUNS_DIR === undefined ? path.join('runs', 'fuzz') : path.join(io.env.APF_RUNS_DIR, 'fuzz')));
  const problem = outputDirProblem(out);
  if (problem !== undefined) throw new UsageError(`${cmd}: ${given === undefined ? `output directory ${out}` : `--out ${given}`}: ${problem}`);
  return out;
}

/** The command line that reproduces the campaign (every option that changes what runs); with its shard unless `whole`. */
function campaignCommand(s: FuzzSettings, whole = false): string {
  const g = s.spec.gen;
  const words = [...APF_COMMAND, 'fuzz', '--runs', String(s.runs), '--seed', String(s.seed)];
  if (s.spec.case.mode === 'untrusted') words.push('--untrusted');
  else if (g.guest !== 'current') words.push('--guest', g.guest);
  if (g.host !== 'current') words.push('--host', g.host);
  for (const t of s.toggles) words.push('--toggle', t.text);
  if (g.size !== 'small') words.push('--size', g.size);
  if (s.handlers !== undefined) words.push('--handlers', s.handlers);
  else if (s.spec.case.canary !== undefined) words.push('--canary', s.spec.case.canary);
  if (s.failFast) words.push('--fail-fast');
  if (s.shrinkBudget !== 300) words.push('--shrink-budget', String(s.shrinkBudget));
  if (s.shard !== undefined && !whole) words.push('--shard', `${s.shard.index}/${s.shard.count}`);
  return words.map(shellWord).join(' ');
}

function replayOne(p: Parsed, io: CliIo, file: string): number {
  const canary0 = canaryArg(p);
  const hs = handlersArg(p, io, canary0, false);
  const canary = canary0 ?? hs.canary;
  const abs = path.resolve(io.cwd, file);
  const scenario = loadScenarioFile(abs, file);
  const mode: FuzzMode = scenario.bare !== undefined ? 'untrusted' : 'trusted';
  if (canary !== undefined && mode === 'untrusted') throw new UsageError(`apf fuzz: --canary needs a guest-kernel scenario; ${file} runs the bare-metal guest`);
  if (hs.spec !== undefined && mode === 'untrusted') throw new UsageError(`apf fuzz: --handlers needs a guest-kernel scenario; ${file} runs the bare-metal guest`);
  const r = runScenarioCase(scenario, { mode, ...(canary === undefined ? {} : { canary }), ...(hs.file === undefined ? {} : { handlersFile: hs.file }) });
  if (r.outcome === 'bad_machine') throw new ScenarioError(file, '', r.failures[0]?.message.replace(/^.*?outcome bad_machine[^:]*: /, '') ?? 'the machine cannot be built from this scenario');
  if (flag(p, 'json')) {
    io.out(JSON.stringify({ format: 'apf-fuzz-replay/1', file, mode, canary: canary ?? null, ok: r.ok, outcome: r.outcome, hazard: r.hazard ?? null, failures: r.failures, traceHash: r.traceHash, events: r.events }, null, 2) + '\n');
    return r.ok ? 0 : 1;
  }
  const what = `${file} (${mode === 'untrusted' ? 'untrusted-guest properties' : 'fuzz properties'}${hs.file !== undefined ? `, handlers ${hs.spec ?? ''}` : canary === undefined ? '' : `, canary ${canaryByName(canary).name}`})`;
  if (r.ok) io.out(`PASS ${what}: outcome ${r.outcome}${r.hazard === undefined ? '' : ` (known hazard: ${r.hazard})`}, trace ${r.traceHash}\n`);
  else {
    io.out(`FAIL ${what}: outcome ${r.outcome}, trace ${r.traceHash}\n`);
    for (const f of r.failures) io.out(`  ${f.property}: ${f.message}\n`);
  }
  return r.ok ? 0 : 1;
}

/** What a report is made of: the campaign's result and how to name and reproduce it. */
interface ReportInput {
  readonly result: CampaignResult;
  readonly spec: SearchSpec;
  /** The command that reproduces what this report covers (the shard's, or the whole campaign's). */
  readonly command: string;
  /** The whole campaign's command, without --shard. */
  readonly campaign: string;
  readonly out: string;
  /** `--handlers` as given (replay and judge lines repeat it). */
  readonly handlers?: string;
}

function summaryLines(r: CampaignResult, command: string, written: readonly WrittenFailure[], hazardsWritten: readonly WrittenHazard[]): string[] {
  const secs = (r.elapsedMs / 1000).toFixed(1);
  const speed = `${Math.round(r.runsPerSec)} runs/s`;
  const of = r.shard === undefined ? '' : `shard ${r.shard.index}/${r.shard.count} of ${r.total} runs; `;
  const outcomes = Object.entries(r.outcomes)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  const lines: string[] = [];
  const hazards = Object.entries(r.hazards)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  const more = Object.values(r.hazards).reduce((a, b) => a + b, 0) - hazardsWritten.length;
  const hazardLine =
    hazards === ''
      ? []
      : [
          `known hazards (what the modelled kernel really does; not failures, see docs/fuzzing.md): ${hazards}`,
          ...hazardsWritten.flatMap((h) => [`  run ${h.index}: ${h.hazard}: ${h.file}`, `    replay: ${h.replay}`, `    judge:  ${h.judge}`]),
          ...(more > 0 ? [`  (${more} more hazard run${more === 1 ? '' : 's'} not listed)`] : []),
        ];
  if (r.failed === 0) {
    lines.push(`PASS ${r.runs} runs, 0 failures (seed ${r.seed}; ${of}${secs} s, ${speed} on ${r.jobs === 0 ? 'this thread' : `${r.jobs} worker${r.jobs === 1 ? '' : 's'}`})`);
    lines.push(`outcomes: ${outcomes}; campaign fingerprint ${r.fingerprint}`);
    lines.push(...hazardLine);
    return lines;
  }
  const kinds = Object.entries(r.byProperty)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  lines.push(`FAIL ${r.failed} of ${r.runs} runs failed (seed ${r.seed}; ${of}${secs} s, ${speed}): ${kinds}`);
  const first = r.failures[0];
  if (first !== undefined) lines.push(`first failure: run ${first.index}: ${first.failures[0]?.property ?? '?'}: ${first.failures[0]?.message ?? ''}`);
  for (const sh of r.shrunk) {
    const w = written.find((x) => x.index === sh.index);
    const f = sh.shrunk.result.failures[0];
    lines.push('');
    lines.push(`run ${sh.index}, shrunk from ${sh.original.size} to ${sh.shrunk.size} nodes (${sh.steps} steps, ${sh.evaluations} runs)${w === undefined ? '' : `: ${w.file}`}`);
    if (f !== undefined) lines.push(`  ${f.property}: ${f.message}`);
    if (w !== undefined) {
      lines.push(`  replay: ${w.replay}`);
      lines.push(`  judge:  ${w.judge}`);
    }
  }
  lines.push('');
  lines.push(`outcomes: ${outcomes}; campaign fingerprint ${r.fingerprint}`);
  lines.push(...hazardLine);
  lines.push(`reproduce the campaign: ${command}`);
  return lines;
}

/** What `apf fuzz merge` needs from a shard's --json result, besides the report itself. */
interface MergeData {
  /** The whole campaign's command (without --shard): shards of one campaign share it. */
  readonly campaign: string;
  readonly total: number;
  readonly shard: Shard;
  readonly seedInput: number | string;
  readonly spec: SearchSpec;
  readonly shrinkBudget: number;
  readonly tally: CampaignTally;
  /** The shard's shrunk failures in full (merge reuses them instead of shrinking again). */
  readonly shrunk: readonly ShrinkOutcome[];
}

/** Prints the report (text or --json) and writes the shrunk failures; returns the exit status. */
function report(io: CliIo, json: boolean, input: ReportInput, merge: MergeData | undefined): number {
  const { result, spec } = input;
  const g = spec.gen;
  const ctx = {
    seed: result.seed,
    mode: spec.case.mode,
    command: input.campaign,
    ...(input.handlers !== undefined ? { handlers: input.handlers } : spec.case.canary === undefined ? {} : { canary: spec.case.canary }),
  };
  let written: WrittenFailure[] = [];
  let hazardsWritten: ReturnType<typeof writeHazards> = [];
  let writeProblem: string | undefined;
  try {
    written = writeFailures(result.shrunk, input.out, io.cwd, ctx);
    // result.seed is canonical, so it generates the same documents as the seed given.
    hazardsWritten = writeHazards(result.hazardRuns, (index) => caseDoc(spec, result.seed, index), input.out, io.cwd, ctx);
  } catch (e) {
    // The report below still carries every failure and its replay data.
    writeProblem = errnoText(e);
  }
  if (json) {
    io.out(
      JSON.stringify(
        {
          format: 'apf-fuzz-result/1',
          command: input.command,
          seed: result.seed,
          mode: spec.case.mode,
          canary: spec.case.canary ?? null,
          guest: spec.case.mode === 'untrusted' ? null : g.guest,
          host: g.host,
          size: g.size,
          ...(result.shard === undefined ? {} : { shard: `${result.shard.index}/${result.shard.count}`, total: result.total }),
          runs: result.runs,
          passed: result.passed,
          failed: result.failed,
          byProperty: result.byProperty,
          outcomes: result.outcomes,
          hazards: result.hazards,
          hazardRuns: hazardsWritten.map((h) => ({ index: h.index, hazard: h.hazard, file: h.file, replay: h.replay, judge: h.judge })),
          failures: result.failures.map((f) => ({ index: f.index, outcome: f.outcome, failures: f.failures })),
          shrunk: result.shrunk.map((sh) => {
            const w = written.find((x) => x.index === sh.index);
            return {
              index: sh.index,
              file: w?.file ?? null,
              originalFile: w?.originalFile ?? null,
              originalSize: sh.original.size,
              size: sh.shrunk.size,
              steps: sh.steps,
              evaluations: sh.evaluations,
              failures: sh.shrunk.result.failures,
              replay: w?.replay ?? null,
              judge: w?.judge ?? null,
            };
          }),
          fingerprint: result.fingerprint,
          jobs: result.jobs,
          elapsedMs: result.elapsedMs,
          runsPerSec: result.runsPerSec,
          ...(merge === undefined ? {} : { merge }),
        },
        null,
        2,
      ) + '\n',
    );
  } else {
    io.out(summaryLines(result, input.command, written, hazardsWritten).join('\n') + '\n');
  }
  if (writeProblem !== undefined) {
    io.err(`apf fuzz: --out ${shownPath(io.cwd, input.out)}: writing the shrunk failures failed (${writeProblem})\n`);
    return 2;
  }
  return result.failed === 0 ? 0 : 1;
}

const MERGE_HELP = helpText(
  'apf fuzz merge FILE... [--jobs J] [--out DIR] [--json]',
  [
    'Combines the --json results of the shards of one campaign (apf fuzz ... --shard I/N --json > FILE) into',
    'the report a single run of the whole campaign gives: the same counts, failures, shrunk files and campaign',
    'fingerprint. Every shard 1..N must be given exactly once. Exit status: 0 no failure, 1 failures, 2 bad input.',
  ],
  {
    jobs: OPTIONS.jobs!,
    out: OPTIONS.out!,
    json: OPTIONS.json!,
    help: OPTIONS.help!,
  },
);

/** Largest shard result `apf fuzz merge` reads (they carry the shard's tally and shrunk failures). */
const MAX_SHARD_BYTES = 256 * 1024 * 1024;

function readShard(io: CliIo, file: string): MergeData {
  const abs = path.resolve(io.cwd, file);
  const read = readTextFile(abs, MAX_SHARD_BYTES);
  if (!read.ok) throw new UsageError(`${file}: ${read.why}`);
  const text = read.text;
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new UsageError(`${file}: not JSON (expected the output of apf fuzz --shard I/N --json)`);
  }
  const d = doc as { format?: unknown; merge?: Partial<MergeData> };
  const m = d.merge;
  if (d.format !== 'apf-fuzz-result/1' || typeof m !== 'object' || m === null || typeof m.campaign !== 'string' || m.tally === undefined || m.shard === undefined || m.spec === undefined) {
    throw new UsageError(`${file}: not a shard result (expected the output of apf fuzz --shard I/N --json)`);
  }
  return m as MergeData;
}

/** `apf fuzz merge FILE...`. */
function mergeCommand(argv: readonly string[], io: CliIo, deps: CliDeps): number {
  const specs: OptionSpecs = { jobs: OPTIONS.jobs!, out: OPTIONS.out!, json: OPTIONS.json!, help: OPTIONS.help! };
  const p = parse('fuzz merge', argv, specs, Number.MAX_SAFE_INTEGER);
  if (flag(p, 'help')) {
    io.out(MERGE_HELP);
    return 0;
  }
  if (p.positionals.length === 0) throw new UsageError('apf fuzz merge: expected the shard result files (apf fuzz ... --shard I/N --json > FILE)');
  const out = outArg('apf fuzz merge', p, io);
  const parts = p.positionals.map((f) => ({ file: f, data: readShard(io, f) }));
  const first = parts[0]!;
  const count = first.data.shard.count;
  const seen = new Map<number, string>();
  for (const { file, data } of parts) {
    if (data.campaign !== first.data.campaign || data.total !== first.data.total) {
      throw new UsageError(`apf fuzz merge: ${file} is from another campaign ("${data.campaign}", not "${first.data.campaign}" as in ${first.file})`);
    }
    if (data.shard.count !== count) throw new UsageError(`apf fuzz merge: ${file} is shard ${data.shard.index}/${data.shard.count}, but ${first.file} is one of ${count}`);
    const dup = seen.get(data.shard.index);
    if (dup !== undefined) throw new UsageError(`apf fuzz merge: ${file} and ${dup} are both shard ${data.shard.index}/${count}`);
    seen.set(data.shard.index, file);
  }
  const missing: number[] = [];
  for (let i = 1; i <= count; i++) if (!seen.has(i)) missing.push(i);
  if (missing.length > 0) throw new UsageError(`apf fuzz merge: shard${missing.length === 1 ? '' : 's'} ${missing.map((i) => `${i}/${count}`).join(', ')} missing`);

  const start = Date.now();
  const d = first.data;
  const tally = mergeTallies(parts.map((x) => x.data.tally));
  // The single run shrinks the first failure of each of the earliest kinds: reuse what the shards
  // shrank (the same deterministic shrink), and shrink here what no shard did.
  const targets = shrinkTargets(tally, 3);
  const have = new Map<number, ShrinkOutcome>();
  for (const x of parts) for (const sh of x.data.shrunk) have.set(sh.index, sh);
  const todo = targets.filter((i) => !have.has(i));
  const jobs = jobsArg('apf fuzz merge', p, io, todo.length, deps);
  for (const sh of shrinkRuns({ spec: d.spec, seed: d.seedInput, jobs, shrinkBudget: d.shrinkBudget }, todo)) have.set(sh.index, sh);
  const shrunk = targets.map((i) => have.get(i)).filter((x): x is ShrinkOutcome => x !== undefined);
  const result = resultFromTally(tally, { seed: canonicalSeed(d.seedInput), total: d.total, shrunk, jobs, elapsedMs: Date.now() - start, runsPerSec: 0 });
  return report(io, flag(p, 'json'), { result, spec: d.spec, command: d.campaign, campaign: d.campaign, out, ...(d.spec.case.handlersFile === undefined ? {} : { handlers: d.spec.case.handlersFile }) }, undefined);
}

export function fuzzCommand(argv: readonly string[], io: CliIo, deps: CliDeps = {}): number {
  if (argv[0] === 'merge') return mergeCommand(argv.slice(1), io, deps);
  const p = parse('fuzz', argv, OPTIONS, 0);
  if (flag(p, 'help')) {
    io.out(FUZZ_HELP);
    return 0;
  }
  const replay = str(p, 'replay');
  if (replay !== undefined) return replayOne(p, io, replay);
  const s = settings(p, io, deps);
  const json = flag(p, 'json');
  const quiet = flag(p, 'quiet') || json;
  const g = s.spec.gen;
  const what =
    s.spec.case.mode === 'untrusted'
      ? `untrusted bare-metal guest, host ${g.host}`
      : `guest ${g.guest}${s.handlers !== undefined ? ` (handlers ${s.handlers})` : s.spec.case.canary === undefined ? '' : ` (canary ${s.spec.case.canary})`}, host ${g.host}`;
  if (!quiet) {
    const shard = s.shard === undefined ? '' : ` (shard ${s.shard.index}/${s.shard.count})`;
    io.err(`apf fuzz: ${s.runs} runs${shard}, seed ${String(s.seed)}${s.seedGiven ? '' : ' (fresh)'}, ${s.jobs === 0 ? 'in this process' : `${s.jobs} worker${s.jobs === 1 ? '' : 's'}`}, ${what}, size ${g.size}\n`);
  }
  const bar = quiet ? undefined : progressReporter((t) => io.err(t), io.errIsTTY === true);
  let result: CampaignResult;
  try {
    result = runCampaign({
      runs: s.runs,
      seed: s.seed,
      jobs: s.jobs,
      spec: s.spec,
      shrinkBudget: s.shrinkBudget,
      failFast: s.failFast,
      ...(s.shard === undefined ? {} : { shard: s.shard }),
      ...(bar === undefined ? {} : { onProgress: (pr: Parameters<typeof bar.update>[0]) => bar.update(pr) }),
    });
  } finally {
    bar?.end();
  }
  const campaign = campaignCommand(s, true);
  const merge: MergeData | undefined =
    s.shard === undefined ? undefined : { campaign, total: s.runs, shard: s.shard, seedInput: s.seed, spec: s.spec, shrinkBudget: s.shrinkBudget, tally: result.tally, shrunk: result.shrunk };
  return report(io, json, { result, spec: s.spec, command: campaignCommand(s), campaign, out: s.out, ...(s.handlers === undefined ? {} : { handlers: s.handlers }) }, merge);
}
