/**
 * The scaling table: time per round trip and peak memory as one dimension grows at a time
 * (vCPUs, tasks, outstanding faults per vCPU, run length). Each point runs in its own Node
 * process so that its peak RSS is its own; no trace is kept (the trace bus only hashes), so
 * memory must stay flat as the run gets longer.
 */
import { execFileSync } from 'node:child_process';
import { PAGES_PER_TASK, runRoundTrips, type RoundTripWorkload } from './roundtrip';

export interface ScalePoint {
  readonly axis: 'vcpus' | 'tasks' | 'outstanding' | 'events';
  readonly value: number;
  readonly workload: RoundTripWorkload;
}

export interface ScaleResult {
  readonly axis: ScalePoint['axis'];
  readonly value: number;
  readonly vcpus: number;
  readonly tasks: number;
  readonly events: number;
  readonly roundTrips: number;
  readonly usPerRoundTrip: number;
  readonly peakRssMiB: number;
  readonly heapUsedMiB: number;
  readonly outcome: string;
}

/** Loops per task for about `roundTrips` round trips in all (every touch is one). */
const loopsFor = (roundTrips: number, tasks: number): number => Math.max(1, Math.ceil(roundTrips / (tasks * PAGES_PER_TASK)));
/** About 37 simulation events per round trip on 1 vCPU x 2 tasks (measured). */
const EVENTS_PER_RT_1X2 = 37;

export function scalePoints(quick = false): ScalePoint[] {
  const pts: ScalePoint[] = [];
  const rts = quick ? 500 : 5000;
  for (const v of quick ? [1, 4] : [1, 4, 16, 64]) pts.push({ axis: 'vcpus', value: v, workload: { vcpus: v, tasks: 2 * v, loops: loopsFor(rts, 2 * v), checkers: false } });
  for (const t of quick ? [1, 64] : [1, 64, 512, 4096]) pts.push({ axis: 'tasks', value: t, workload: { vcpus: 8, tasks: t, loops: loopsFor(rts, t), checkers: false } });
  // One vCPU, n tasks, page-in latency long enough that all n faults are outstanding at once.
  for (const n of quick ? [1, 8] : [1, 8, 64]) pts.push({ axis: 'outstanding', value: n, workload: { vcpus: 1, tasks: n, loops: loopsFor(rts, n), swapLatencyNs: 2_000_000, checkers: false } });
  for (const e of quick ? [1e4, 1e5] : [1e4, 1e5, 1e6, 1e7]) pts.push({ axis: 'events', value: e, workload: { vcpus: 1, tasks: 2, loops: loopsFor(e / EVENTS_PER_RT_1X2, 2), checkers: false } });
  return pts;
}

/** Runs one point in this process and reports it (used by the child process). */
export function runPoint(p: ScalePoint): ScaleResult {
  runRoundTrips({ vcpus: 1, tasks: 2, loops: 300, checkers: false }); // JIT warm-up
  const r = runRoundTrips(p.workload);
  const mem = process.memoryUsage();
  return {
    axis: p.axis,
    value: p.value,
    vcpus: p.workload.vcpus,
    tasks: p.workload.tasks,
    events: r.events,
    roundTrips: r.roundTrips,
    usPerRoundTrip: (r.wallMs * 1000) / Math.max(1, r.roundTrips),
    peakRssMiB: process.resourceUsage().maxRSS / 1024,
    heapUsedMiB: mem.heapUsed / 2 ** 20,
    outcome: r.outcome,
  };
}

/** Every point, each in a fresh process. */
export function measureScaling(quick = false): ScaleResult[] {
  return scalePoints(quick).map((p) => {
    const out = execFileSync(process.execPath, ['-r', 'ts-node/register/transpile-only', __filename, '--point', JSON.stringify(p)], {
      encoding: 'utf8',
      cwd: __dirname + '/..',
      maxBuffer: 1 << 20,
    });
    return JSON.parse(out.trim().split('\n').pop() ?? '{}') as ScaleResult;
  });
}

if (require.main === module) {
  const i = process.argv.indexOf('--point');
  if (i >= 0) {
    process.stdout.write(JSON.stringify(runPoint(JSON.parse(process.argv[i + 1] ?? '{}') as ScalePoint)) + '\n');
  } else {
    for (const r of measureScaling(process.argv.includes('--quick'))) console.log(JSON.stringify(r));
  }
}
