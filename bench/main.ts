/**
 * `npm run bench [-- --json] [-- --quick]`: every benchmark of the project, as medians over
 * repeated runs in one process after warm-up (the scaling table runs each point in its own
 * process for its peak memory). Wall-clock timing lives only here, never in tests.
 */
import os from 'node:os';
import { runSimMicro } from './sim-micro';
import { measureRoundTrips, type Median } from './roundtrip';
import { measureBaseline } from './baseline';
import { measureScaling, type ScaleResult } from './scaling';
import { measureThroughput } from '../harness/fuzz/campaign';

interface RoundTripRow extends Median {
  readonly vcpus: number;
  readonly tasks: number;
  readonly checkers: boolean;
}

interface BenchReport {
  machine: { node: string; cpus: number; cpuModel: string; memGiB: number; platform: string };
  simMicro: { name: string; nsPerOp: number }[];
  roundTrips: RoundTripRow[];
  baseline: { roundTripsPerSec: number; harnessOverhead: number };
  scaling: ScaleResult[];
  fuzz: { jobs: number; runs: number; runsPerSec: number }[];
}

function main(argv: readonly string[]): void {
  const json = argv.includes('--json');
  const quick = argv.includes('--quick');
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
    for (const checkers of [true, false]) {
      const m = measureRoundTrips({ ...w, checkers }, quick ? 3 : 5);
      roundTrips.push({ vcpus: w.vcpus, tasks: w.tasks, checkers, ...m });
      log(
        `  ${`${w.vcpus} vCPU x ${w.tasks} tasks, checkers ${checkers ? 'on' : 'off'}`.padEnd(36)} ` +
          `${m.roundTripsPerSec.toFixed(0).padStart(8)} round trips/s  ${(m.eventsPerSec / 1e6).toFixed(2).padStart(5)} M events/s  ` +
          `${m.eventsPerRoundTrip.toFixed(1).padStart(6)} events/round trip`,
      );
    }
  }

  const base = measureBaseline(2, quick ? 20_000 : 200_000);
  const harness1x2 = roundTrips.find((r) => r.vcpus === 1 && !r.checkers)?.roundTripsPerSec ?? 0;
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

  const report: BenchReport = { machine, simMicro, roundTrips, baseline, scaling, fuzz };
  if (json) process.stdout.write(JSON.stringify(report, null, 2) + '\n');
}

main(process.argv.slice(2));
