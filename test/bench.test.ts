/**
 * The benchmarks measure what they say they measure (timings themselves are never asserted:
 * `npm run bench` reports them). Every touch of the round-trip workload is one full async PF round
 * trip, the baseline state machine completes the round trips it is asked for, and the bench
 * command refuses a bad flag with exit status 2.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { BenchUsageError, parseArgs } from '../bench/main';
import { hottest, LAYERS, OTHER, selfTimeByLayer, type CpuProfile } from '../bench/profile';
import { REPO } from './harness/cli-helpers';
import { native } from './support/native';

// The workloads run outside Jest's sandbox (test/support/native.ts).
const { runBaseline } = native<typeof import('../bench/baseline')>('bench/baseline');
const { PAGES_PER_TASK, runRoundTrips } = native<typeof import('../bench/roundtrip')>('bench/roundtrip');

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
    spawnSync(process.execPath, ['-r', path.join(REPO, 'tools/register.js'), path.join(REPO, 'bench/main.ts'), ...args], {
      cwd: REPO,
      encoding: 'utf8',
    });

  it.each([[['--bogus'], "unknown flag '--bogus'"], [['--out'], '--out needs a file name'], [['--out', '--json'], '--out needs a file name']])('%j is refused with a one-line message', (args, msg) => {
    expect(() => parseArgs(args)).toThrow(BenchUsageError);
    expect(() => parseArgs(args)).toThrow(msg);
    expect(parseArgs(['--json', '--quick', '--out', 'f.json'])).toEqual({ json: true, quick: true, out: 'f.json' });
  });

  it('a bad flag from the command line: the message, usage, exit 2, no stack (one real process)', () => {
    const r = bench(['--bogus']);
    expect(r.status).toBe(2);
    expect(String(r.stderr)).toContain("bench: unknown flag '--bogus'");
    expect(String(r.stderr)).toContain('usage: npm run bench');
    expect(String(r.stderr)).not.toMatch(/\n\s+at /);
  });
});

describe('npm run bench:profile', () => {
  const node = (id: number, url: string, functionName = 'f'): CpuProfile['nodes'][number] => ({ id, callFrame: { functionName, url, lineNumber: 9 } });
  const profile: CpuProfile = {
    nodes: [
      node(1, 'file:///x/sim/trace.ts', 'emit'),
      node(2, 'file:///x/guest/kvm.ts', 'kvmAsyncPfTaskWake'),
      node(3, 'file:///x/host/hostmem.ts', 'evictPage'),
      node(4, 'file:///x/host/x86/run.ts', 'enterGuest'),
      node(5, '', '(garbage collector)'),
      node(6, '', 'dispatch'),
      node(7, 'file:///x/sim/cpu/mmu.ts', 'walk'),
    ],
    samples: [1, 1, 2, 3, 4, 5, 6, 7, 2],
    timeDeltas: [10, 10, 20, 30, 40, 5, 5, 30, 50],
  };

  it('groups self time by layer, first matching layer wins, the rest is "other"', () => {
    const rows = Object.fromEntries(selfTimeByLayer(profile).map((r) => [r.layer, r.us]));
    const layer = (prefix: string): string => LAYERS.find(([name]) => name.startsWith(prefix))![0];
    expect(rows).toEqual({
      [layer('trace bus')]: 20,
      [layer('guest kernel')]: 70,
      [layer('page bytes')]: 30,
      [layer('host KVM')]: 40,
      [layer('garbage')]: 5,
      [layer('vCPU')]: 30,
      [OTHER]: 5,
    });
    const shares = selfTimeByLayer(profile).map((r) => r.share);
    expect(shares.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 10);
    expect(selfTimeByLayer(profile)[0]!.layer).toBe(layer('guest kernel'));
  });

  it('names the hottest functions with file and 1-based line', () => {
    expect(hottest(profile, 2)).toEqual([
      { fn: 'kvmAsyncPfTaskWake kvm.ts:10', us: 70 },
      { fn: 'enterGuest run.ts:10', us: 40 },
    ]);
  });

  it('refuses an unknown workload with exit 2', () => {
    // What `npm run bench:profile` runs (package.json), as a real process.
    const r = spawnSync(process.execPath, ['-r', path.join(REPO, 'tools/register.js'), path.join(REPO, 'bench/profile.ts'), '--workload', '3x3'], {
      cwd: REPO,
      encoding: 'utf8',
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("bench:profile: unknown workload '3x3' (expected 1x2 or 8x64)");
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});
