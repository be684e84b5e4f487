/**
 * The benchmarks measure what they say they measure (timings themselves are never asserted:
 * `npm run bench` reports them). Every touch of the round-trip workload is one full async PF round
 * trip, the baseline state machine completes the round trips it is asked for, and the bench
 * command refuses a bad flag with exit status 2.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { runBaseline } from '../bench/baseline';
import { PAGES_PER_TASK, runRoundTrips } from '../bench/roundtrip';
import { REPO } from './harness/cli-helpers';

describe('bench workloads', () => {
  it.each([
    [1, 2, 6],
    [2, 6, 3],
    [8, 64, 1],
  ])('%d vCPU(s) x %d tasks: every touch is one async PF round trip (not-present, sleep, page-ready, wake, retry)', (vcpus, tasks, loops) => {
    for (const traceHash of [true, false]) {
      const r = runRoundTrips({ vcpus, tasks, loops, checkers: false, traceHash });
      expect(r.outcome).toBe('completed');
      expect(r.roundTrips).toBe(tasks * loops * PAGES_PER_TASK);
      expect(r.events).toBeGreaterThan(r.roundTrips * 10);
    }
  });

  it('the checkers stay quiet on the workload', () => {
    const r = runRoundTrips({ vcpus: 2, tasks: 4, loops: 2, checkers: true });
    expect(r.outcome).toBe('completed');
    expect(r.roundTrips).toBe(4 * 2 * PAGES_PER_TASK);
  });

  it('the minimal baseline completes exactly the round trips asked for', () => {
    expect(runBaseline(2, 1000).roundTrips).toBe(2000);
    expect(runBaseline(5, 7).roundTrips).toBe(35);
  });
});

describe('npm run bench flags', () => {
  const bench = (args: string[]): ReturnType<typeof spawnSync> =>
    spawnSync(process.execPath, [require.resolve('ts-node/dist/bin.js'), '--transpile-only', path.join(REPO, 'bench/main.ts'), ...args], {
      cwd: REPO,
      encoding: 'utf8',
    });

  it.each([[['--bogus'], "unknown flag '--bogus'"], [['--out'], '--out needs a file name']])('%j: one-line message, usage, exit 2, no stack', (args, msg) => {
    const r = bench(args);
    expect(r.status).toBe(2);
    expect(String(r.stderr)).toContain(`bench: ${msg}`);
    expect(String(r.stderr)).toContain('usage: npm run bench');
    expect(String(r.stderr)).not.toMatch(/\n\s+at /);
  });
});
