/**
 * `apf fuzz` on the command line: options and their errors (one line, exit 2), a passing campaign,
 * a failing one (a canary) with its shrunk file and replay lines, --json, and --replay.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cli, tmpDir } from '../harness/cli-helpers';

const work = tmpDir('apf-fuzz-cli-');
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));
const fuzz = (...argv: string[]) => cli(['fuzz', ...argv], { cwd: work });

describe('apf fuzz options', () => {
  it('--help documents the command', () => {
    const r = fuzz('--help');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^usage: apf fuzz --runs N --seed S/);
    for (const o of ['--jobs', '--untrusted', '--canary', '--out', '--replay', '--fail-fast', '--size', '--toggle']) expect(r.out).toContain(o);
  });

  it.each([
    [['--runs', '0'], /^apf fuzz: --runs 0: expected a positive whole number\n$/],
    [['--jobs', '1.5'], /^apf fuzz: --jobs 1.5: expected a whole number \(0 or more\)\n$/],
    [['--size', 'huge'], /^apf fuzz: --size huge: expected small, medium, large\n$/],
    [['--canary', 'no-akc'], /^apf fuzz: --canary no-akc: unknown canary \(did you mean "no-ack"\?\); canaries: no-ack, no-dummy, late-cr2\n$/],
    [['--untrusted', '--guest', 'current'], /^apf fuzz: --guest has no effect with --untrusted/],
    [['--untrusted', '--canary', 'no-ack'], /^apf fuzz: --canary is a broken guest kernel/],
    [['--host', 'linux-5.9'], /^--host linux-5.9: unknown host profile \(did you mean "linux-5.8"\?\)/],
    [['--toggle', 'nonzero_tokn=off'], /^--toggle nonzero_tokn=off: unknown toggle "nonzero_tokn" \(did you mean "nonzero_token"\?\)/],
    [['--sed', '1'], /^apf fuzz: unknown option --sed \(did you mean --seed\?\); see apf fuzz --help\n$/],
    [['--replay', 'nope.json'], /^nope\.json: no such file\n$/],
  ])('%j is bad input: one line, exit 2', (argv, msg) => {
    const r = fuzz(...argv);
    expect(r.code).toBe(2);
    expect(r.err).toMatch(msg);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.out).toBe('');
  });
});

describe('apf fuzz campaigns', () => {
  it(
    'a passing campaign: verdict, outcomes, no failure files (only the listed hazard runs); the same again with --json',
    () => {
      const out = path.join(work, 'out-pass');
      const r = fuzz('--runs', '40', '--seed', '3', '--jobs', '1', '--out', out);
      expect(r.code).toBe(0);
      expect(r.err).toMatch(/^apf fuzz: 40 runs, seed 3, 1 worker, guest current, host current, size small\n/);
      expect(r.out).toMatch(/^PASS 40 runs, 0 failures \(seed 3; [\d.]+ s, \d+ runs\/s on 1 worker\)\n/);
      expect(r.out).toMatch(/outcomes: completed \d+/);
      const files = fs.existsSync(out) ? fs.readdirSync(out) : [];
      expect(files.filter((f) => !f.endsWith('.hazard.json'))).toEqual([]);
      for (const f of files) expect(r.out).toContain(`: ${path.join('out-pass', f)}\n    replay: npx apf run ${path.join('out-pass', f)} --seed `);
      const j = fuzz('--runs', '40', '--seed', '3', '--jobs', '2', '--json', '--out', out);
      expect(j.code).toBe(0);
      expect(j.err).toBe('');
      const res = JSON.parse(j.out) as Record<string, unknown>;
      expect(res).toMatchObject({ format: 'apf-fuzz-result/1', seed: '3', mode: 'trusted', runs: 40, failed: 0, command: 'npx apf fuzz --runs 40 --seed 3', jobs: 2 });
      expect(r.out).toContain(`campaign fingerprint ${String(res.fingerprint)}`);
    },
    60_000,
  );

  it(
    'a passing campaign with a known hazard lists the hazard run, its file and the lines that replay it, in text and --json',
    () => {
      const out = path.join(work, 'out-hazard');
      const r = fuzz('--runs', '60', '--seed', '1', '--jobs', '2', '--out', out, '-q');
      expect(r.code).toBe(0);
      const shown = path.relative(work, path.join(out, 'fuzz-1-56.hazard.json'));
      expect(r.out).toContain('known hazards (what the modelled kernel really does; not failures, see docs/fuzzing.md): nmi-in-async-pf-window 1\n');
      expect(r.out).toContain(`  run 56: nmi-in-async-pf-window: ${shown}\n    replay: npx apf run ${shown} --seed 5 --guest current --host current\n    judge:  npx apf fuzz --replay ${shown}\n`);
      // The judge line replays the run and names the same hazard.
      const judged = fuzz('--replay', shown);
      expect(judged.out).toMatch(/^PASS .*outcome panic \(known hazard: nmi-in-async-pf-window\)/);
      const j = JSON.parse(fuzz('--runs', '60', '--seed', '1', '--jobs', '2', '--out', out, '--json').out) as { hazardRuns: unknown[] };
      expect(j.hazardRuns).toEqual([{ index: 56, hazard: 'nmi-in-async-pf-window', file: shown, replay: `npx apf run ${shown} --seed 5 --guest current --host current`, judge: `npx apf fuzz --replay ${shown}` }]);
    },
    120_000,
  );

  it(
    'a failing campaign (a canary): the shrunk scenario is written, with the lines that replay it',
    () => {
      const out = path.join(work, 'out-fail');
      const r = fuzz('--canary', 'no-ack', '--runs', '300', '--seed', '1', '--jobs', '2', '--fail-fast', '--shrink-budget', '60', '--out', out, '-q');
      expect(r.code).toBe(1);
      expect(r.err).toBe('');
      expect(r.out).toMatch(/^FAIL 1 of \d+ runs failed \(seed 1; /);
      const file = /run (\d+), shrunk from \d+ to \d+ nodes \(\d+ steps, \d+ runs\): (\S+)/.exec(r.out);
      expect(file).not.toBeNull();
      const shown = file?.[2] ?? '';
      expect(fs.existsSync(path.join(work, shown))).toBe(true);
      expect(fs.existsSync(path.join(work, shown.replace(/\.json$/, '.original.json')))).toBe(true);
      expect(r.out).toContain(`replay: npx apf run ${shown} --seed `);
      expect(r.out).toContain(`judge:  npx apf fuzz --replay ${shown} --canary no-ack`);
      expect(r.out).toContain('reproduce the campaign: npx apf fuzz --runs 300 --seed 1 --canary no-ack --fail-fast --shrink-budget 60');
      const doc = JSON.parse(fs.readFileSync(path.join(work, shown), 'utf8')) as { name: string; notes: string[] };
      expect(doc.name).toBe(`fuzz-1-${file?.[1] ?? ''}`);
      expect(doc.notes[0]).toContain('Found by: npx apf fuzz --runs 300 --seed 1 --canary no-ack');
      // The judge line fails with the canary and passes with the real guest; apf run replays the file as it is.
      expect(fuzz('--replay', shown, '--canary', 'no-ack')).toMatchObject({ code: 1, out: expect.stringMatching(/^FAIL .* \(fuzz properties, canary no-ack\)/) });
      expect(fuzz('--replay', shown)).toMatchObject({ code: 0, out: expect.stringMatching(/^PASS /) });
      expect(cli(['run', shown, '-q', '--runs-dir', path.join(work, 'runs')], { cwd: work }).code).toBe(0);
    },
    60_000,
  );

  it(
    'untrusted-guest mode runs the hostile bare-metal guest against the host',
    () => {
      const r = fuzz('--untrusted', '--runs', '30', '--seed', '5', '--jobs', '1', '--host', 'linux-5.8', '-q');
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/^PASS 30 runs, 0 failures/);
    },
    60_000,
  );
});
