/**
 * `apf diff`: two traces aligned per vCPU, the first divergence with context, the rest summarised;
 * from two jsonl trace files or one scenario under two settings; text, --json and the HTML report.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cli, REPO, tmpDir } from './cli-helpers';
import { readJsonlTrace } from '../../harness/cli/commands/diff';

const work = tmpDir();
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));
const runs = path.join(work, 'runs');
const apf = (...argv: string[]) => cli(argv, { cwd: REPO, env: { APF_RUNS_DIR: runs } });
const WRAP = 'scenarios/regressions/token-zero-wraparound.json';

describe('apf diff FILE under two settings', () => {
  it('--variant buggy: the first divergence is the zero token, marked, with the rest summarised; exit 1', () => {
    const r = apf('diff', WRAP, '--variant', 'buggy');
    expect(r.err).toBe('');
    expect(r.code).toBe(1);
    const lines = r.out.split('\n');
    expect(lines[0]).toBe(`A: npx apf run ${WRAP} --seed 1 --guest current --host current`);
    expect(lines[1]).toBe(`B: npx apf run ${WRAP} --variant buggy --seed 1 --guest current --host current`);
    expect(lines[2]).toMatch(/^A: outcome completed, trace [0-9a-f]{16}; B: outcome deadlock, trace [0-9a-f]{16}$/);
    const div = lines.findIndex((l) => l.startsWith('>>'));
    expect(lines[div]).toMatch(/^>> +\d+ A: .*kvm_async_pf_not_present: token 0x1000 gva 0x/);
    expect(lines[div + 1]).toMatch(/^ +B: .*kvm_async_pf_not_present: token 0 gva 0x/);
    // Aligned, not positional: B's extra violation record faces nothing on A, then both sides agree again.
    expect(lines[div + 2]).toMatch(/^ ~ +\d+ A: -$/);
    expect(lines[div + 3]).toMatch(/^ +B: .* check +violation: checker=token-unique /);
    expect(lines[div + 4]).toMatch(/^ {3}\s+\d+ {4}.*kvm_write_guest: gpa=0x10000 len=4 value=0x1 field=flags/);
    expect(r.out).toContain('   in step again after A 1 and B 2 records\n');
    expect(r.out).toMatch(/vCPU 0: \d+ vs \d+ records; first divergence at record \d+/);
    expect(r.out).toMatch(/from the divergence on: A \d+ records, B \d+; counts differ: .*hung_task 0 vs 1/);
    expect(lines.at(-2)).toBe('the traces diverge on vCPU 0');
  });

  it('--host A,B and --json: per-vCPU lanes with the divergence index and differing counts', () => {
    const r = apf('diff', 'scenarios/send-always-kernel-fault.json', '--host', 'linux-4.19,current', '--json');
    expect(r.code).toBe(1);
    const j = JSON.parse(r.out) as { format: string; same: boolean; lanes: { cpu: number; divergence: number | null; counts: [string, number, number][] }[] };
    expect(j.format).toBe('apf-diff/1');
    expect(j.same).toBe(false);
    expect(j.lanes[0]?.divergence).toBe(0);
    expect(j.lanes[0]?.counts).toContainEqual(['kvm_async_pf_halt', 0, 1]);
  });

  it('--report writes the diff section with the divergence row and both runs', () => {
    const html = path.join(work, 'diff.html');
    expect(apf('diff', WRAP, '--variant', 'buggy', '--report', html).code).toBe(1);
    const text = fs.readFileSync(html, 'utf8');
    expect(text).toContain('<section class="diff" id="diff">');
    expect(text.match(/<tr class="divergence">/g)).toHaveLength(1);
    expect(text.match(/<section class="run /g)).toHaveLength(2);
    expect(text).not.toMatch(/<(script|link|img)[^>]+(src|href)=/);
  });

  it('rejects a diff of nothing, and a bad pair, with one line and exit 2', () => {
    expect(apf('diff', WRAP)).toMatchObject({ code: 2, err: `apf diff: ${WRAP}: say what differs between the two runs: --host A,B, --guest A,B, --variant NAME, --toggle NAME or --seed A,B\n` });
    expect(apf('diff', WRAP, '--host', 'a,b,c')).toMatchObject({ code: 2, err: 'apf diff: --host a,b,c: expected one value or two separated by a comma (A,B)\n' });
    expect(apf('diff', WRAP, '--host', 'linux-4.19,linux-9')).toMatchObject({ code: 2, err: expect.stringMatching(/^--host linux-9: unknown host profile/) });
  });
});

describe('apf diff A.jsonl B.jsonl', () => {
  const trace = (name: string, ...extra: string[]): string => {
    const file = path.join(work, name);
    // The run may pass or fail its expectations on another profile: the trace is written either way.
    expect([0, 1]).toContain(apf('run', 'scenarios/default.json', '--quiet', '--trace', file, ...extra).code);
    return file;
  };

  it('identical traces: every vCPU identical, exit 0', () => {
    const a = trace('a.jsonl');
    const b = trace('b.jsonl');
    const r = apf('diff', a, b);
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^vCPU 0: identical \(\d+ records\)$/m);
    expect(r.out).toMatch(/^vCPU 1: identical \(\d+ records\)$/m);
    expect(r.out.trim().split('\n').at(-1)).toBe('the traces record the same events per vCPU');
  });

  it('traces of another host profile diverge; records read back from jsonl print in the kernel formats', () => {
    const a = trace('c.jsonl');
    const b = trace('d.jsonl', '--host', 'linux-4.19');
    const r = apf('diff', a, b);
    expect(r.code).toBe(1);
    expect(r.out).toContain('first divergence at record');
    // Records read back from jsonl (MSR values as "0x..." strings) print in the kernel's format.
    const lines = readJsonlTrace(a, 'c.jsonl').map((x) => x.line);
    expect(lines).toContainEqual(expect.stringMatching(/ kvm_msr: msr_write 4b564d02 = 0x[0-9a-f]+$/));
  });

  it('rejects a file that is not a jsonl trace, naming the file and line', () => {
    const bad = path.join(work, 'bad.jsonl');
    fs.writeFileSync(bad, '{"t":1,"cpu":0,"src":"host","event":"x"}\nnot json\n');
    const a = trace('e.jsonl');
    expect(apf('diff', a, bad)).toMatchObject({ code: 2, err: `apf diff: ${bad}:2: not a jsonl trace record (write one with apf run FILE --trace run.jsonl)\n` });
    expect(apf('diff', a, path.join(work, 'missing.jsonl'))).toMatchObject({ code: 2, err: `apf diff: ${path.join(work, 'missing.jsonl')}: no such file\n` });
    expect(apf('diff', a, a, '--host', 'current')).toMatchObject({ code: 2, err: 'apf diff: --host is for one scenario run twice; two trace files are compared as they are\n' });
  });
});
