/**
 * A campaign split into shards (`apf fuzz --shard I/N`, one CI job each) and put back together
 * with `apf fuzz merge` gives the report of a single run of the whole campaign: the same counts,
 * failures, shrunk files and fingerprint. Tallies combine in any order.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { addRun, emptyTally, mergeTallies, tallyFingerprint, type CampaignTally } from '../../harness/fuzz/campaign';
import type { RunSummary } from '../../harness/fuzz/worker';
import { cli, tmpDir } from '../harness/cli-helpers';

const work = tmpDir('apf-fuzz-shard-');
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));
const fuzz = (...argv: string[]) => cli(['fuzz', ...argv], { cwd: work });

/** The report without what depends on the wall clock or the worker count. */
function report(json: string): Record<string, unknown> {
  const { elapsedMs: _e, runsPerSec: _r, jobs: _j, ...rest } = JSON.parse(json) as Record<string, unknown>;
  return rest;
}
const text = (s: string): string => s.replace(/\([^)]*\d+ runs\/s[^)]*\)/g, '(time)');

describe('apf fuzz --shard and apf fuzz merge', () => {
  it(
    'three shards merged give the single run\'s report, fingerprint and shrunk files (a failing campaign)',
    () => {
      const campaign = ['--canary', 'no-ack', '--runs', '30', '--seed', '2', '--shrink-budget', '15', '--out', 'found'];
      const whole = fuzz(...campaign, '--jobs', '2', '--json');
      expect(whole.code).toBe(1);
      const single = report(whole.out);
      expect(single.failed).toBeGreaterThan(0);
      expect((single.shrunk as unknown[]).length).toBeGreaterThan(0);
      const files: string[] = [];
      let shardRuns = 0;
      for (const i of [3, 1, 2]) {
        const r = fuzz(...campaign, '--shard', `${i}/3`, '--jobs', '0', '--json');
        expect(r.err).toBe('');
        const j = JSON.parse(r.out) as { shard: string; runs: number; command: string };
        expect(j.shard).toBe(`${i}/3`);
        expect(j.command).toContain(`--shard ${i}/3`);
        shardRuns += j.runs;
        const f = path.join(work, `shard-${i}.json`);
        fs.writeFileSync(f, r.out);
        files.push(`shard-${i}.json`);
      }
      expect(shardRuns).toBe(30);
      fs.rmSync(path.join(work, 'found'), { recursive: true, force: true });
      const merged = fuzz('merge', ...files, '--out', 'found', '--jobs', '0', '--json');
      expect(merged.err).toBe('');
      expect(merged.code).toBe(1);
      expect(report(merged.out)).toEqual(single);
      for (const sh of single.shrunk as { file: string }[]) expect(fs.existsSync(path.join(work, sh.file))).toBe(true);
      // The text report too, but for the wall-clock figures.
      const wholeText = fuzz(...campaign, '--jobs', '0', '-q');
      const mergedText = fuzz('merge', ...files, '--out', 'found', '--jobs', '0');
      expect(text(mergedText.out)).toEqual(text(wholeText.out));
    },
    120_000,
  );

  it(
    'a passing campaign: two shards merge to the single run\'s fingerprint, exit 0',
    () => {
      const campaign = ['--runs', '24', '--seed', 'shard', '--out', 'none'];
      const single = report(fuzz(...campaign, '--jobs', '0', '--json').out);
      for (const i of [1, 2]) fs.writeFileSync(path.join(work, `pass-${i}.json`), fuzz(...campaign, '--shard', `${i}/2`, '--jobs', '0', '--json').out);
      const merged = fuzz('merge', 'pass-1.json', 'pass-2.json', '--out', 'none', '--json');
      expect(merged.code).toBe(0);
      expect(report(merged.out)).toEqual(single);
      expect(single.failed).toBe(0);
    },
    120_000,
  );

  it.each([
    [['--shard', '0/3'], /^--shard: expected I\/N with 1 <= I <= N, got "0\/3"\n$/],
    [['--shard', '4/3'], /^--shard: expected I\/N with 1 <= I <= N, got "4\/3"\n$/],
    [['--shard', 'two'], /^--shard: expected I\/N with 1 <= I <= N, got "two"\n$/],
    [['--shard', '1/2', '--fail-fast'], /^apf fuzz: --fail-fast cannot be combined with --shard/],
    [['merge'], /^apf fuzz merge: expected the shard result files/],
    [['merge', 'nope.json'], /^nope\.json: no such file\n$/],
  ])('%j is bad input: one line, exit 2', (argv, msg) => {
    const r = fuzz(...argv);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(msg);
    expect(r.err.trim().split('\n')).toHaveLength(1);
  });

  it('merge refuses a missing shard, a repeated one and another campaign\'s shard', () => {
    const campaign = ['--runs', '6', '--seed', '9', '--jobs', '0', '--json'];
    for (const i of [1, 2, 3]) fs.writeFileSync(path.join(work, `m-${i}.json`), fuzz(...campaign, '--shard', `${i}/3`).out);
    fs.writeFileSync(path.join(work, 'other.json'), fuzz('--runs', '6', '--seed', '10', '--jobs', '0', '--json', '--shard', '3/3').out);
    const bad = (files: string[], msg: RegExp): void => {
      const r = fuzz('merge', ...files);
      expect(r.code).toBe(2);
      expect(r.err).toMatch(msg);
      expect(r.err.trim().split('\n')).toHaveLength(1);
    };
    bad(['m-1.json', 'm-2.json'], /^apf fuzz merge: shard 3\/3 missing\n$/);
    bad(['m-1.json', 'm-2.json', 'm-2.json'], /^apf fuzz merge: m-2\.json and m-2\.json are both shard 2\/3\n$/);
    bad(['m-1.json', 'm-2.json', 'other.json'], /^apf fuzz merge: other\.json is from another campaign/);
  });
});

describe('campaign tallies', () => {
  const run = (index: number, ok: boolean, property = 'run-ends'): RunSummary => ({
    index,
    ok,
    failures: ok ? [] : [{ property, message: `run ${index}` }],
    outcome: ok ? 'completed' : 'deadlock',
    events: 100 + index,
    traceHash: (index * 2654435761).toString(16).padStart(16, '0'),
  });
  const runs = Array.from({ length: 300 }, (_, i) => run(i, i % 7 !== 3, i % 2 === 0 ? 'run-ends' : 'no-panic'));
  const tallyOf = (rs: readonly RunSummary[]): CampaignTally => {
    const t = emptyTally();
    for (const r of rs) addRun(t, r);
    return t;
  };

  it('merging disjoint parts in any order gives the tally of the whole, and the same fingerprint', () => {
    const whole = tallyOf(runs);
    const parts = [0, 1, 2, 3].map((s) => tallyOf(runs.filter((r) => r.index % 4 === s).reverse()));
    const merged = mergeTallies([parts[2]!, parts[0]!, parts[3]!, parts[1]!]);
    expect(merged).toEqual(whole);
    expect(tallyFingerprint(merged)).toBe(tallyFingerprint(whole));
    expect(whole.failures).toHaveLength(43);
    expect(whole.firstByKind).toEqual({ 'no-panic': 3, 'run-ends': 10 });
  });

  it('the fingerprint changes when a run\'s trace hash, verdict or index changes', () => {
    const base = tallyFingerprint(tallyOf(runs));
    const changed = (i: number, r: RunSummary): string => tallyFingerprint(tallyOf(runs.map((x, j) => (j === i ? r : x))));
    expect(changed(5, { ...run(5, true), traceHash: 'ffffffffffffffff' })).not.toBe(base);
    expect(changed(5, run(5, false))).not.toBe(base);
    expect(tallyFingerprint(tallyOf(runs.slice(0, 299)))).not.toBe(base);
  });

  it('keeps at most 100 failures listed, the lowest run indices', () => {
    const t = tallyOf(Array.from({ length: 500 }, (_, i) => run(499 - i, false)));
    expect(t.failed).toBe(500);
    expect(t.failures.map((f) => f.index)).toEqual(Array.from({ length: 100 }, (_, i) => i));
  });
});
