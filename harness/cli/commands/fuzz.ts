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
 */
import * as path from 'node:path';
import type { GuestProfileName, GuestToggle } from '../../../guest/profiles';
import type { HostProfileName, HostToggle } from '../../../host/config';
import { runCampaign, type CampaignResult } from '../../fuzz/campaign';
import { CANARY_NAMES, canaryByName } from '../../fuzz/canaries';
import { runScenarioCase, type FuzzMode } from '../../fuzz/case';
import { FUZZ_SIZES, type FuzzSize } from '../../fuzz/generators';
import { defaultJobs } from '../../fuzz/pool';
import { progressReporter } from '../../fuzz/progress';
import { writeFailures, type WrittenFailure } from '../../fuzz/report';
import type { SearchSpec } from '../../fuzz/search';
import { freshSeed } from '../../fuzz/seeds';
import { loadHandlers } from '../../handlers-file';
import { loadScenarioFile } from '../../scenario/load';
import { checkProfile, parseToggle, shellWord, UsageError, type ToggleSetting } from '../../scenario/overrides';
import { closest } from '../../util/names';
import { flag, helpText, list, parse, positiveIntArg, seedArg, str, type OptionSpecs, type Parsed } from '../args';
import type { CliIo } from '../io';

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
  'fail-fast': { type: 'boolean', help: 'stop at the first failure (still the lowest failing run, for any --jobs)' },
  'shrink-budget': { type: 'string', value: 'N', help: 'runs a shrink may spend (default 300)' },
  out: { type: 'string', value: 'DIR', help: 'where shrunk failures go (default ./runs/fuzz, or $APF_RUNS_DIR/fuzz)' },
  replay: { type: 'string', value: 'FILE', help: 'judge one scenario file with the fuzz properties instead of running a campaign' },
  json: { type: 'boolean', help: 'print the result as JSON (docs/fuzzing.md)' },
  quiet: { type: 'boolean', short: 'q', help: 'no progress, only the verdict and the failures' },
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

function settings(p: Parsed, io: CliIo): FuzzSettings {
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
  const jobs = nonNegativeInt(p, 'jobs') ?? defaultJobs();
  return {
    runs: positiveIntArg('fuzz', p, 'runs') ?? 500,
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
    out: path.resolve(io.cwd, str(p, 'out') ?? (io.env.APF_RUNS_DIR === undefined ? path.join('runs', 'fuzz') : path.join(io.env.APF_RUNS_DIR, 'fuzz'))),
  };
}

/** The command line that reproduces the campaign (every option that changes what runs). */
function campaignCommand(s: FuzzSettings): string {
  const g = s.spec.gen;
  const words = ['apf', 'fuzz', '--runs', String(s.runs), '--seed', String(s.seed)];
  if (s.spec.case.mode === 'untrusted') words.push('--untrusted');
  else if (g.guest !== 'current') words.push('--guest', g.guest);
  if (g.host !== 'current') words.push('--host', g.host);
  for (const t of s.toggles) words.push('--toggle', t.text);
  if (g.size !== 'small') words.push('--size', g.size);
  if (s.handlers !== undefined) words.push('--handlers', s.handlers);
  else if (s.spec.case.canary !== undefined) words.push('--canary', s.spec.case.canary);
  if (s.failFast) words.push('--fail-fast');
  if (s.shrinkBudget !== 300) words.push('--shrink-budget', String(s.shrinkBudget));
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

function summaryLines(r: CampaignResult, s: FuzzSettings, written: readonly WrittenFailure[]): string[] {
  const secs = (r.elapsedMs / 1000).toFixed(1);
  const speed = `${Math.round(r.runsPerSec)} runs/s`;
  const outcomes = Object.entries(r.outcomes)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  const lines: string[] = [];
  const hazards = Object.entries(r.hazards)
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  const hazardLine = hazards === '' ? [] : [`known hazards (what the modelled kernel really does; not failures, see docs/fuzzing.md): ${hazards}`];
  if (r.failed === 0) {
    lines.push(`PASS ${r.runs} runs, 0 failures (seed ${r.seed}; ${secs} s, ${speed} on ${r.jobs === 0 ? 'this thread' : `${r.jobs} worker${r.jobs === 1 ? '' : 's'}`})`);
    lines.push(`outcomes: ${outcomes}; campaign fingerprint ${r.fingerprint}`);
    lines.push(...hazardLine);
    return lines;
  }
  const kinds = Object.entries(r.byProperty)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  lines.push(`FAIL ${r.failed} of ${r.runs} runs failed (seed ${r.seed}; ${secs} s, ${speed}): ${kinds}`);
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
  lines.push(`reproduce the campaign: ${campaignCommand(s)}`);
  return lines;
}

export function fuzzCommand(argv: readonly string[], io: CliIo): number {
  const p = parse('fuzz', argv, OPTIONS, 0);
  if (flag(p, 'help')) {
    io.out(FUZZ_HELP);
    return 0;
  }
  const replay = str(p, 'replay');
  if (replay !== undefined) return replayOne(p, io, replay);
  const s = settings(p, io);
  const json = flag(p, 'json');
  const quiet = flag(p, 'quiet') || json;
  const g = s.spec.gen;
  const what =
    s.spec.case.mode === 'untrusted'
      ? `untrusted bare-metal guest, host ${g.host}`
      : `guest ${g.guest}${s.handlers !== undefined ? ` (handlers ${s.handlers})` : s.spec.case.canary === undefined ? '' : ` (canary ${s.spec.case.canary})`}, host ${g.host}`;
  if (!quiet) {
    io.err(`apf fuzz: ${s.runs} runs, seed ${String(s.seed)}${s.seedGiven ? '' : ' (fresh)'}, ${s.jobs === 0 ? 'in this process' : `${s.jobs} worker${s.jobs === 1 ? '' : 's'}`}, ${what}, size ${g.size}\n`);
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
      ...(bar === undefined ? {} : { onProgress: (pr: Parameters<typeof bar.update>[0]) => bar.update(pr) }),
    });
  } finally {
    bar?.end();
  }
  const ctx = {
    seed: result.seed,
    mode: s.spec.case.mode,
    command: campaignCommand(s),
    ...(s.handlers !== undefined ? { handlers: s.handlers } : s.spec.case.canary === undefined ? {} : { canary: s.spec.case.canary }),
  };
  const written = writeFailures(result.shrunk, s.out, io.cwd, ctx);
  if (json) {
    io.out(
      JSON.stringify(
        {
          format: 'apf-fuzz-result/1',
          command: ctx.command,
          seed: result.seed,
          mode: s.spec.case.mode,
          canary: s.spec.case.canary ?? null,
          guest: s.spec.case.mode === 'untrusted' ? null : g.guest,
          host: g.host,
          size: g.size,
          runs: result.runs,
          passed: result.passed,
          failed: result.failed,
          byProperty: result.byProperty,
          outcomes: result.outcomes,
          hazards: result.hazards,
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
        },
        null,
        2,
      ) + '\n',
    );
  } else {
    io.out(summaryLines(result, s, written).join('\n') + '\n');
  }
  return result.failed === 0 ? 0 : 1;
}

