import * as fs from 'node:fs';
import * as path from 'node:path';
import { cli, tmpDir } from './cli-helpers';
import { fakeMachine } from './fake-machine';
import { hostProfileNames } from '../../harness/registry';
import { CHECKERS } from '../../harness/checkers';

const deps = { machine: fakeMachine };
const work = tmpDir();
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));
const runs = path.join(work, 'runs');
const write = (name: string, body: unknown): string => {
  fs.writeFileSync(path.join(work, name), JSON.stringify(body, null, 2));
  return name;
};
const touch = [{ op: 'touch', page: '0x7f0000001000', write: true, value: 42 }];
const okFile = write('ok.json', { name: 'ok', description: 'one fault', tasks: [{ name: 'reader', program: touch }] });
const lostFile = write('lost.json', { name: 'lost', verdict: { fail: 'the page-ready never came' }, tasks: [{ name: 'lose', program: touch }] });
const hangFile = write('hang.json', { name: 'hang', tasks: [{ name: 'hang', program: touch }] });
const run = (...argv: string[]) => cli(['run', ...argv, '--runs-dir', runs], { cwd: work, deps });

describe('apf run', () => {
  it('prints the timeline, summary and verdict, exits 0 and leaves no files behind', () => {
    const r = run(okFile);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toContain('▶ ok (ok.json) — one fault');
    expect(r.out).toContain('── vCPU 0');
    expect(r.out).toContain('inject async #PF: flags = 1 (page not present), CR2 = token 0x1001');
    expect(r.out).toContain('gfn 0x500 (reader:0x7f0000001000) is not in host memory');
    expect(r.out).toMatch(/async #PFs injected \(not present\)\s+1/);
    expect(r.out).toContain(`Checkers (${CHECKERS.length} enabled):`);
    expect(r.out).toContain('PASS ok:');
    expect(r.out).toContain('replay: npx apf run ok.json --seed 1 --guest current --host current');
    expect(fs.existsSync(runs) ? fs.readdirSync(runs) : []).toEqual([]);
  });

  it('--json prints the documented result', () => {
    const r = run(okFile, '--json', '--seed', '9', '--toggle', 'nonzero_token=off', '--toggle', 'guest.page_ready_eoi=on');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out) as Record<string, unknown>;
    expect(j).toMatchObject({
      format: 'apf-run-result/1',
      scenario: { name: 'ok', file: 'ok.json' },
      seed: '9',
      guest: { profile: 'current', toggles: { page_ready_eoi: true } },
      host: { profile: 'current', toggles: { nonzero_token: false } },
      outcome: 'completed',
      ok: true,
      panic: null,
      error: null,
      violations: [],
      trace: null,
      failureFile: null,
      replay: 'npx apf run ok.json --seed 9 --guest current --host current --toggle nonzero_token=off --toggle guest.page_ready_eoi=on',
    });
    expect(j.runId).toMatch(/^[A-Za-z0-9_-]{12}$/);
    expect(j.traceHash).toMatch(/^[0-9a-f]{16}$/);
    expect((j.counts as Record<string, number>).kvm_async_pf_not_present).toBe(1);
  });

  it('on failure exits 1, keeps the trace, writes a failure file and prints the replay line', () => {
    const r = run(lostFile, '--seed', '3');
    expect(r.code).toBe(1);
    expect(r.out).toContain('FAIL lost: the page-ready never came');
    expect(r.out).toContain('✗ apf-answered: 1 violation');
    expect(r.out).toContain('replay: npx apf run lost.json --seed 3 --guest current --host current');
    const trace = /trace: (\S+)/.exec(r.out)?.[1] ?? '';
    const failure = /failure details: (\S+)/.exec(r.out)?.[1] ?? '';
    expect(trace).toMatch(/^runs\/[A-Za-z0-9_-]{12}\.trace\.jsonl$/);
    expect(failure).toBe(trace.replace('.trace.jsonl', '.failure.json'));
    const lines = fs.readFileSync(path.join(work, trace), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines[0]).toMatchObject({ t: 0, cpu: 0, src: 'guest', event: 'kvm_guest_cpu_init', msr_en: '0x10009' });
    expect(lines[lines.length - 1]).toMatchObject({ src: 'check', event: 'violation', checker: 'apf-answered' });
    const f = JSON.parse(fs.readFileSync(path.join(work, failure), 'utf8')) as Record<string, unknown>;
    expect(f).toMatchObject({ ok: false, outcome: 'completed', replay: 'npx apf run lost.json --seed 3 --guest current --host current' });
  });

  it('a budget overrun is a failure with a clear reason', () => {
    const r = run(hangFile, '--max-time', '5ms', '--quiet');
    expect(r.code).toBe(1);
    expect(r.out.split('\n')[0]).toMatch(/^FAIL hang: outcome is "completed" — got "budget": virtual-time budget of 0.005000000s exhausted/);
    expect(r.out).toContain('--max-time 5000000ns');
  });

  it('--quiet prints only the verdict and the replay line', () => {
    const r = run(okFile, '--quiet');
    expect(r.code).toBe(0);
    expect(r.out.trim().split('\n')).toEqual([expect.stringMatching(/^PASS ok: /), 'replay: npx apf run ok.json --seed 1 --guest current --host current']);
  });

  it('writes a text trace like trace-cmd report', () => {
    const r = run(okFile, '--trace', 'out.txt');
    expect(r.code).toBe(0);
    const text = fs.readFileSync(path.join(work, 'out.txt'), 'utf8');
    expect(text).toMatch(/^# kvm-apf-harness trace of scenario ok\n/);
    expect(text).toContain('\ncpus=1\n');
    expect(text).toMatch(/CPU 0\/KVM-0 \[000\]\s+0\.000001000: kvm_async_pf_not_present: token 0x1001 gva 0x7f0000001000 \[injected=true halt=false\]/);
    expect(text).toMatch(/kworker\/0-0 \[000\]\s+\d\.\d{9}: kvm_async_pf_completed: gva 0x7f0000001000 address 0x7f0000500000 \[ok=true\]/);
    expect(r.out).toContain('trace: out.txt');
  });

  it('writes a Perfetto (Chrome trace-event JSON) file with a track per vCPU and per worker', () => {
    const r = run(okFile, '--trace', 'out.perfetto', '--trace-format', 'perfetto');
    expect(r.code).toBe(0);
    const j = JSON.parse(fs.readFileSync(path.join(work, 'out.perfetto'), 'utf8')) as { traceEvents: Array<Record<string, unknown>>; displayTimeUnit: string };
    expect(j.displayTimeUnit).toBe('ns');
    const names = j.traceEvents.filter((e) => e.ph === 'M' && e.name === 'thread_name').map((e) => (e.args as { name: string }).name);
    expect(names).toEqual(expect.arrayContaining(['vCPU 0', 'vCPU 0 (KVM)', 'kworker (vCPU 0)']));
    expect(j.traceEvents.some((e) => e.ph === 'i' && e.name === 'kvm_async_pf_not_present' && e.ts === 1)).toBe(true);
    expect(j.traceEvents.filter((e) => e.ph === 'b').length).toBe(j.traceEvents.filter((e) => e.ph === 'e').length);
    expect(j.traceEvents.filter((e) => e.ph === 'B').length).toBe(j.traceEvents.filter((e) => e.ph === 'E').length);
  });

  it('rejects bad options with exit 2 and one line', () => {
    expect(run(okFile, '--toggle', 'nonzero_tokn=off')).toMatchObject({ code: 2, err: expect.stringMatching(/^--toggle nonzero_tokn=off: unknown toggle "nonzero_tokn" \(did you mean "nonzero_token"\?\)/) });
    expect(run(okFile, '--toggle', 'nonzero_token=maybe')).toMatchObject({ code: 2, err: '--toggle nonzero_token=maybe: the value must be on or off, not "maybe"\n' });
    expect(run(okFile, '--host', 'linux-9')).toMatchObject({ code: 2, err: expect.stringMatching(/^--host linux-9: unknown host profile/) });
    expect(run(okFile, '--trace-format', 'pdf')).toMatchObject({ code: 2, err: 'apf run: --trace-format pdf: expected text, jsonl or perfetto\n' });
    expect(run(okFile, '--max-events', '-3')).toMatchObject({ code: 2 });
    expect(run(okFile, 'extra.json')).toMatchObject({ code: 2, err: 'apf run: extra.json: no such file or directory\n' });
    expect(run(okFile, '--seed')).toMatchObject({ code: 2, err: 'apf run: --seed needs a value (--seed N)\n' });
  });
});

describe('apf commands', () => {
  it('every command has --help', () => {
    for (const cmd of ['run', 'list', 'compare', 'fuzz', 'schema']) {
      const r = cli([cmd, '--help']);
      expect(r.code).toBe(0);
      expect(r.out).toMatch(new RegExp(`^usage: apf ${cmd}`));
    }
    expect(cli(['--help']).out).toMatch(/^usage: apf <command>/);
  });

  it('unknown or missing commands are bad input', () => {
    expect(cli(['runn'])).toMatchObject({ code: 2, err: expect.stringMatching(/^apf: unknown command "runn" \(did you mean "run"\?\)/) });
    expect(cli([]).code).toBe(2);
  });

  it('fuzz checks its options like the other commands (campaigns are tested in test/fuzz)', () => {
    expect(cli(['fuzz', '--runz', '3'])).toMatchObject({ code: 2, err: 'apf fuzz: unknown option --runz (did you mean --runs?); see apf fuzz --help\n' });
  });

  it('list --json has scenarios, profiles, toggles and checkers', () => {
    const r = cli(['list', '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out) as Record<string, Array<{ name: string }>>;
    expect(j.checkers?.map((c) => c.name)).toEqual(CHECKERS.map((c) => c.name));
    expect(j.hostProfiles?.map((p) => p.name)).toContain('current');
    expect(j.guestProfiles?.map((p) => p.name)).toContain('current');
    expect(j.hostToggles?.map((p) => p.name)).toContain('nonzero_token');
    expect(Array.isArray(j.scenarios)).toBe(true);
    expect(cli(['list']).out).toContain('Host toggles (--toggle NAME=on|off):');
  });

  it('compare prints one line per guest x host combination', () => {
    const r = cli(['compare', okFile, '--guest', 'linux-5.9,current', '--host', 'linux-5.13,current', '--vary', 'nonzero_token'], { cwd: work, deps });
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const rows = r.out.split('\n').filter((l) => /^(linux-5\.9|current)\s/.test(l));
    expect(rows).toHaveLength(8);
    expect(r.out).toMatch(/guest\s+host\s+nonzero_token\s+outcome\s+async #PF/);
    const j = JSON.parse(cli(['compare', okFile, '--guest', 'current', '--host', 'all', '--json'], { cwd: work, deps }).out) as { cells: unknown[] };
    expect(j.cells).toHaveLength(hostProfileNames().length);
  });
});
