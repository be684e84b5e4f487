/**
 * Fuzz memory against campaign length: a campaign of N runs on 2 workers, in its own Node process,
 * reports its peak RSS (workers included: they are threads of the process). Results stream into
 * bounded tallies (harness/fuzz/campaign.ts), so the peak must not grow with N.
 */
import { execFileSync } from 'node:child_process';
import { runCampaign } from '../harness/fuzz/campaign';

export interface FuzzMemoryPoint {
  readonly runs: number;
  readonly jobs: number;
  readonly runsPerSec: number;
  readonly peakRssMiB: number;
  readonly heapUsedMiB: number;
}

const SPEC = { gen: { guest: 'current', host: 'current', hostToggles: {}, guestToggles: {}, size: 'small' }, case: { mode: 'trusted' } } as const;

/** One campaign in this process (used by the child process). */
export function runFuzzPoint(runs: number, jobs: number): FuzzMemoryPoint {
  const r = runCampaign({ runs, seed: 'bench-memory', jobs, spec: SPEC, maxShrink: 0 });
  return { runs, jobs, runsPerSec: r.runsPerSec, peakRssMiB: process.resourceUsage().maxRSS / 1024, heapUsedMiB: process.memoryUsage().heapUsed / 2 ** 20 };
}

/** Each campaign length in a fresh process. */
export function measureFuzzMemory(quick = false): FuzzMemoryPoint[] {
  return (quick ? [250, 1000] : [1000, 8000]).map((runs) => {
    const out = execFileSync(process.execPath, ['-r', 'ts-node/register/transpile-only', __filename, '--runs', String(runs), '--jobs', '2'], {
      encoding: 'utf8',
      cwd: __dirname + '/..',
      maxBuffer: 1 << 20,
    });
    return JSON.parse(out.trim().split('\n').pop() ?? '{}') as FuzzMemoryPoint;
  });
}

/** Start-up: wall time of `apf list` as a fresh process (Node, ts-node, the CLI), median of `reps`. */
export function measureStartup(reps = 5): number {
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = process.hrtime.bigint();
    execFileSync(process.execPath, [__dirname + '/../bin/apf', 'list'], { encoding: 'utf8', cwd: __dirname + '/..', maxBuffer: 1 << 22 });
    times.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)] ?? 0;
}

if (require.main === module) {
  const arg = (name: string, dflt: number): number => {
    const i = process.argv.indexOf(name);
    return i >= 0 ? Number(process.argv[i + 1]) : dflt;
  };
  process.stdout.write(JSON.stringify(runFuzzPoint(arg('--runs', 1000), arg('--jobs', 2))) + '\n');
}
