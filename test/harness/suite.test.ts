/**
 * Suite runs: `apf run DIR|FILE...` prints one verdict line per file (PASS/FAIL/SKIP with the
 * reason, a replay line under each failure), exits 1 when any fails, writes JUnit XML, and
 * `--shard I/N` splits the files as harness/util/shard.ts says.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cli, REPO, tmpDir } from './cli-helpers';
import { fakeMachine } from './fake-machine';
import { inShard, parseShard } from '../../harness/util/shard';
import { UsageError } from '../../harness/scenario/overrides';

const deps = { machine: fakeMachine };
const work = tmpDir();
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));
const runs = path.join(work, 'runs');
const touch = [{ op: 'touch', page: '0x7f0000001000', write: true, value: 42 }];
const write = (name: string, body: unknown): string => {
  fs.mkdirSync(path.dirname(path.join(work, name)), { recursive: true });
  fs.writeFileSync(path.join(work, name), typeof body === 'string' ? body : JSON.stringify(body, null, 2));
  return name;
};
write('suite/a-ok.json', { name: 'a-ok', verdict: { pass: 'the page came back' }, tasks: [{ name: 'reader', program: touch }] });
write('suite/b-lost.json', { name: 'b-lost', verdict: { fail: 'the page-ready never came' }, tasks: [{ name: 'lose', program: touch }] });
write('suite/c-ok.yaml', 'name: c-ok\ntasks:\n  - name: reader\n    program:\n      - { op: touch, page: "0x7f0000001000" }\n');
write('suite/sub/d-broken.json', { name: 'd-broken', tasks: 'none' });
const run = (...argv: string[]) => cli(['run', ...argv, '--runs-dir', runs, '--jobs', '0'], { cwd: work, deps });

describe('apf run DIR', () => {
  it('prints a verdict per file in order, a replay line under each failure, the counts, and exits 1', () => {
    const r = run('suite');
    expect(r.err).toBe('');
    const lines = r.out.trim().split('\n');
    expect(lines[0]).toBe('PASS suite/a-ok.json (the page came back)');
    expect(lines[1]).toBe('FAIL suite/b-lost.json (the page-ready never came)');
    expect(lines[2]).toBe('  replay: npx apf run suite/b-lost.json --seed 1 --guest current --host current');
    expect(lines[3]).toMatch(/^PASS suite\/c-ok\.yaml \(/);
    expect(lines[4]).toMatch(/^FAIL suite\/sub\/d-broken\.json \(suite\/sub\/d-broken\.json: .*tasks/);
    expect(lines[5]).toBe('2 passed, 2 failed, 0 skipped');
    expect(r.code).toBe(1);
  });

  it('exits 0 when every file passes, and --quiet prints only failures and the count', () => {
    const r = run('suite/a-ok.json', 'suite/c-ok.yaml', '--quiet');
    expect(r).toMatchObject({ code: 0, err: '', out: '2 passed, 0 failed, 0 skipped\n' });
  });

  it('skips files without the --variant asked for, naming the reason', () => {
    const r = run('suite/a-ok.json', 'suite/c-ok.yaml', '--variant', 'buggy');
    expect(r.out).toBe('SKIP suite/a-ok.json (no variants (asked for --variant buggy))\nSKIP suite/c-ok.yaml (no variants (asked for --variant buggy))\n0 passed, 0 failed, 2 skipped\n');
    expect(r.code).toBe(0);
  });

  it('writes JUnit XML: one testcase per file, failures with their reason and replay line', () => {
    const junit = path.join(work, 'junit.xml');
    expect(run('suite', '--junit', 'junit.xml').code).toBe(1);
    const xml = fs.readFileSync(junit, 'utf8');
    expect(xml).toMatch(/^<\?xml version="1.0" encoding="UTF-8"\?>\n<testsuites name="apf run" tests="4" failures="2" errors="0" skipped="0"/);
    expect(xml.match(/<testcase /g)).toHaveLength(4);
    expect(xml).toContain('<testcase classname="suite" name="suite/b-lost.json"');
    expect(xml).toContain('<failure message="the page-ready never came" type="FAIL">FAIL suite/b-lost.json (the page-ready never came)\nreplay: npx apf run suite/b-lost.json --seed 1 --guest current --host current');
    expect(xml).not.toMatch(/<failure[^>]*>[^<]*a-ok/);
  });

  it('--shard I/N runs every N-th file starting at the I-th; the shards cover the suite once', () => {
    const one = run('suite', '--shard', '1/2');
    const two = run('suite', '--shard', '2/2');
    expect(one.out).toContain('PASS suite/a-ok.json');
    expect(one.out).toContain('PASS suite/c-ok.yaml');
    expect(one.out).toContain('2 passed, 0 failed, 0 skipped; shard 1/2: 2 of 4 files');
    expect(one.code).toBe(0);
    expect(two.out).toContain('FAIL suite/b-lost.json');
    expect(two.out).toContain('FAIL suite/sub/d-broken.json');
    expect(two.code).toBe(1);
  });

  it('--json prints the verdicts as an object', () => {
    const r = run('suite', '--json');
    const j = JSON.parse(r.out) as { format: string; passed: number; failed: number; files: { file: string; status: string; replay: string | null }[] };
    expect(j).toMatchObject({ format: 'apf-suite-result/1', passed: 2, failed: 2, skipped: 0 });
    expect(j.files.map((f) => f.status)).toEqual(['PASS', 'FAIL', 'PASS', 'FAIL']);
    expect(j.files[1]?.replay).toBe('npx apf run suite/b-lost.json --seed 1 --guest current --host current');
  });

  it('rejects a missing path, an empty directory, a bad shard and --trace, with one line and exit 2', () => {
    fs.mkdirSync(path.join(work, 'empty'), { recursive: true });
    expect(run('suite', 'nope.json')).toMatchObject({ code: 2, err: 'apf run: nope.json: no such file or directory\n' });
    expect(run('empty')).toMatchObject({ code: 2, err: 'apf run: empty: no scenario files (.json, .yaml) in this directory\n' });
    expect(run('suite', '--shard', '3/2')).toMatchObject({ code: 2, err: '--shard: expected I/N with 1 <= I <= N, got "3/2"\n' });
    expect(run('suite', '--trace', 'x.jsonl')).toMatchObject({ code: 2, err: expect.stringMatching(/^apf run: --trace names one file/) });
  });
});

describe('suite runs on worker threads', () => {
  it('runs real scenario files in two workers with the same verdicts as one by one', () => {
    const files = ['scenarios/default.json', 'scenarios/nmi-during-async-pf.json', 'scenarios/regressions/token-zero-wraparound.json'];
    const pooled = cli(['run', ...files, '--jobs', '2', '--variant', 'buggy', '--runs-dir', runs], { cwd: REPO });
    expect(pooled.err).toBe('');
    const lines = pooled.out.trim().split('\n');
    expect(lines[0]).toBe('SKIP scenarios/default.json (no variants (asked for --variant buggy))');
    expect(lines[2]).toMatch(/^PASS scenarios\/regressions\/token-zero-wraparound\.json \(bug reproduced: /);
    expect(lines[3]).toBe('1 passed, 0 failed, 2 skipped');
    expect(pooled.code).toBe(0);
  });
});

describe('harness/util/shard', () => {
  it('parses I/N and rejects anything else with the one-line message', () => {
    expect(parseShard('2/5')).toEqual({ index: 2, count: 5 });
    for (const bad of ['0/3', '4/3', '1', 'a/b', '1/0', '', '-1/2']) {
      expect(() => parseShard(bad)).toThrow(new UsageError(`--shard: expected I/N with 1 <= I <= N, got "${bad}"`));
    }
  });
  it('puts every item in exactly one shard', () => {
    const n = 3;
    for (let i = 0; i < 20; i++) {
      const owners = [1, 2, 3].filter((k) => inShard(i, { index: k, count: n }));
      expect(owners).toEqual([(i % n) + 1]);
    }
  });
});
