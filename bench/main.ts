/**
 * `npm run bench [-- --json] [-- --quick] [-- --out FILE]`: every benchmark of the project, as medians over
 * repeated runs in one process after warm-up (the scaling table runs each point in its own
 * process for its peak memory). Wall-clock timing lives only here, never in tests.
 */
import fs from 'node:fs';
import os from 'node:os';
import { runSimMicro } from './sim-micro';
import { measureRoundTrips, type Median } from './roundtrip';
import { measureBaseline } from './baseline';
import { measureScaling, type ScaleResult } from './scaling';
import { measureThroughput } from '../harness/fuzz/campaign';
import { measureFuzzMemory, measureStartup, type FuzzMemoryPoint } from './fuzz-memory';

interface RoundTripRow extends Median {
  readonly vcpus: number;
  readonly tasks: number;
  readonly checkers: boolean;
  readonly traceHash: boolean;
}

/** One target, as measured by this run. */
interface TargetRow {
  readonly target: string;
  readonly want: string;
  readonly measured: number;
  readonly met: boolean;
}

interface BenchReport {
  machine: { node: string; cpus: number; cpuModel: string; memGiB: number; platform: string };
  simMicro: { name: string; nsPerOp: number }[];
  roundTrips: RoundTripRow[];
  baseline: { roundTripsPerSec: number; harnessOverhead: number };
  scaling: ScaleResult[];
  fuzz: { jobs: number; runs: number; runsPerSec: number }[];
  fuzzMemory: FuzzMemoryPoint[];
  startupMs: number;
  targets: TargetRow[];
}

const USAGE = 'usage: npm run bench [-- --json] [-- --quick] [-- --out FILE]';

/** A bad flag: `main` prints `bench: MESSAGE` and the usage line, and exits with status 2. */
export class BenchUsageError extends Error {
  override name = 'BenchUsageError';
}

/** Parses the flags; a bad one throws BenchUsageError. */
export function parseArgs(argv: readonly string[]): { json: boolean; quick: boolean; out: string | undefined } {
  let json = false;
  let quick = false;
  let out: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--json') json = true;
    else if (a === '--quick') quick = true;
    else if (a === '--out') {
      out = argv[++i];
      if (out === undefined || out.startsWith('--')) fail('--out needs a file name');
    } else if (a === '-h' || a === '--help') {
      console.log(`${USAGE}\n  --json   print the report as JSON on stdout (use "npm run -s" to keep npm's banner out)\n  --quick  shorter runs (about a minute)\n  --out    also write the JSON report to FILE`);
      process.exit(0);
    } else fail(`unknown flag '${a}'`);
  }
  return { json, quick, out };
}

function fail(msg: string): never {
  throw new BenchUsageError(msg);
}

function main(argv: readonly string[]): void {
  let flags: ReturnType<typeof parseArgs>;
  try {
    flags = parseArgs(argv);
  } catch (e) {
    if (!(e instanceof BenchUsageError)) throw e;
    console.error(`bench: ${e.message}\n${USAGE}`);
    process.exit(2);
  }
  const { json, quick, out } = flags;
  const log = (s: string): void => {
    if (!json) console.log(s);
  };
  const cpus = os.cpus();
  const machine = {
    node: process.version,
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? 'unknown',
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    platform: `${os.platform()} ${os.arch()}`,
  };
  log(`machine: ${machine.cpus} x ${machine.cpuModel}, ${machine.memGiB} GiB, ${machine.platform}, node ${machine.node}`);

  const simMicro = runSimMicro();
  log('\nsim/ hot paths (median ns/op):');
  for (const r of simMicro) log(`  ${r.name.padEnd(56)} ${r.nsPerOp.toFixed(2).padStart(9)}`);

  log('\nsteady-state async PF round trips (whole model; median of 5 runs after warm-up):');
  const roundTrips: RoundTripRow[] = [];
  for (const w of [
    { vcpus: 1, tasks: 2, loops: quick ? 250 : 2500 },
    { vcpus: 8, tasks: 64, loops: quick ? 4 : 40 },
  ]) {
    // The full harness (checkers and trace hash), without checkers, and without the trace hash either.
    for (const [checkers, traceHash] of [
      [true, true],
      [false, true],
      [false, false],
    ] as const) {
      const m = measureRoundTrips({ ...w, checkers, traceHash }, quick ? 3 : 5);
      roundTrips.push({ vcpus: w.vcpus, tasks: w.tasks, checkers, traceHash, ...m });
      log(
        `  ${`${w.vcpus} vCPU x ${w.tasks} tasks, checkers ${checkers ? 'on ' : 'off'}, hash ${traceHash ? 'on ' : 'off'}`.padEnd(44)} ` +
          `${m.roundTripsPerSec.toFixed(0).padStart(8)} round trips/s  ${(m.eventsPerSec / 1e6).toFixed(2).padStart(5)} M events/s  ` +
          `${m.eventsPerRoundTrip.toFixed(1).padStart(6)} events/round trip`,
      );
    }
  }

  const base = measureBaseline(2, quick ? 20_000 : 200_000);
  // Targets are judged on the whole model with its trace hash, checkers off (they are optional).
  const rate = (vcpus: number): number => roundTrips.find((r) => r.vcpus === vcpus && !r.checkers && r.traceHash)?.roundTripsPerSec ?? 0;
  const harness1x2 = rate(1);
  const baseline = { roundTripsPerSec: base, harnessOverhead: base / Math.max(1, harness1x2) };
  log(`\nminimal baseline (bare state machine, 1 vCPU x 2 tasks): ${base.toFixed(0)} round trips/s`);
  log(`  harness overhead: ${baseline.harnessOverhead.toFixed(0)}x (baseline / whole model without checkers)`);

  log('\nscaling (each point in its own process, no trace kept):');
  const scaling = measureScaling(quick);
  log(`  ${'axis'.padEnd(12)} ${'value'.padStart(9)} ${'vCPUs'.padStart(5)} ${'tasks'.padStart(5)} ${'events'.padStart(9)} ${'round trips'.padStart(11)} ${'us/round trip'.padStart(13)} ${'peak RSS MiB'.padStart(12)}`);
  for (const r of scaling) {
    log(
      `  ${r.axis.padEnd(12)} ${String(r.value).padStart(9)} ${String(r.vcpus).padStart(5)} ${String(r.tasks).padStart(5)} ${String(r.events).padStart(9)} ` +
        `${String(r.roundTrips).padStart(11)} ${r.usPerRoundTrip.toFixed(1).padStart(13)} ${r.peakRssMiB.toFixed(1).padStart(12)}`,
    );
  }

  log('\nfuzz throughput (apf fuzz, small scenarios on the current profiles, worker start-up excluded; docs/fuzzing.md):');
  const fuzz: BenchReport['fuzz'] = [];
  for (const jobs of [1, 2]) {
    const f = measureThroughput({ gen: { guest: 'current', host: 'current', hostToggles: {}, guestToggles: {}, size: 'small' }, case: { mode: 'trusted' } }, jobs, quick ? 300 : 2000);
    fuzz.push({ jobs, runs: f.runs, runsPerSec: f.runsPerSec });
    log(`  ${`${jobs} worker${jobs === 1 ? '' : 's'}`.padEnd(10)} ${f.runsPerSec.toFixed(0).padStart(6)} runs/s  (${f.runs} runs)`);
  }

  log('\nfuzz memory against campaign length (2 workers, each campaign in its own process, peak RSS of the process):');
  const fuzzMemory = measureFuzzMemory(quick);
  for (const f of fuzzMemory) log(`  ${String(f.runs).padStart(6)} runs  ${f.peakRssMiB.toFixed(0).padStart(6)} MiB peak RSS  ${f.heapUsedMiB.toFixed(0).padStart(5)} MiB heap at the end  ${f.runsPerSec.toFixed(0).padStart(6)} runs/s`);
  const startupMs = measureStartup(quick ? 3 : 5);
  log(`\nstart-up: \`apf list\` as a fresh process (node + ts-node + CLI), median: ${startupMs.toFixed(0)} ms`);

  const runLength = scaling.filter((r) => r.axis === 'events');
  const rss = runLength.map((r) => r.peakRssMiB);
  const rssGrowth = rss.length > 0 ? Math.max(...rss) / Math.min(...rss) : 0;
  const fuzz2 = fuzz.find((f) => f.jobs === 2)?.runsPerSec ?? 0;
  const fuzzRss = fuzzMemory.map((f) => f.peakRssMiB);
  const fuzzGrowth = fuzzRss.length > 1 ? (fuzzRss[fuzzRss.length - 1] ?? 0) / Math.max(1, fuzzRss[0] ?? 0) : 0;
  const targets: TargetRow[] = [
    { target: 'round trips/s, 1 vCPU x 2 tasks', want: '>= 150000', measured: harness1x2, met: harness1x2 >= 150_000 },
    { target: 'round trips/s, 8 vCPUs x 64 tasks', want: '>= 80000', measured: rate(8), met: rate(8) >= 80_000 },
    { target: 'peak RSS, longest / shortest run length', want: '<= 1.25', measured: rssGrowth, met: rss.length > 0 && rssGrowth <= 1.25 },
    { target: 'fuzz runs/s, small, 2 workers', want: '>= 1000', measured: fuzz2, met: fuzz2 >= 1000 },
    { target: 'fuzz peak RSS, longest / shortest campaign', want: '<= 1.25', measured: fuzzGrowth, met: fuzzRss.length > 0 && fuzzGrowth <= 1.25 },
  ];
  log('\ntargets (round trips: whole model, trace hash on, checkers off):');
  for (const t of targets) log(`  ${t.target.padEnd(44)} want ${t.want.padEnd(9)} measured ${t.measured.toFixed(t.measured < 100 ? 2 : 0).padStart(8)}  ${t.met ? 'met' : 'NOT met'}`);

  const report: BenchReport = { machine, simMicro, roundTrips, baseline, scaling, fuzz, fuzzMemory, startupMs, targets };
  const text = JSON.stringify(report, null, 2) + '\n';
  if (out !== undefined) fs.writeFileSync(out, text);
  if (json) process.stdout.write(text);
}

if (require.main === module) main(process.argv.slice(2));
