/** `--handlers` on run, compare and fuzz, and `apf check`: replay lines that reproduce, clear errors for bad files. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cli, REPO, spawnApf, tmpDir } from '../harness/cli-helpers';

const NO_ACK = 'test/handlers/mistakes/no-ack.ts';

describe('apf run --handlers', () => {
  it('runs the scenario with the handlers and prints a replay line that repeats them', () => {
    const dir = tmpDir();
    const r = cli(['run', 'scenarios/default.json', '--quiet', '--handlers', NO_ACK, '--runs-dir', dir], { cwd: REPO });
    expect(r.code).toBe(1);
    const replay = /^replay: (.*)$/m.exec(r.out)?.[1];
    expect(replay).toContain(`--handlers ${NO_ACK}`);
    // Pasted, the replay line fails the same way.
    const again = cli([...(replay ?? '').split(' ').slice(2), '--quiet', '--runs-dir', dir], { cwd: REPO });
    expect(again.code).toBe(1);
    expect(cli(['run', 'scenarios/default.json', '--quiet', '--handlers', 'stock', '--runs-dir', dir], { cwd: REPO }).code).toBe(0);
  });

  it('works through the real executable (bin/apf)', () => {
    const r = spawnApf(['run', 'scenarios/default.json', '--quiet', '--handlers', 'stock']);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^PASS default/);
  });

  it.each([
    ['no-such-file.ts', /--handlers no-such-file.ts: no such file/],
    ['canary:no-ak', /unknown canary \(did you mean "canary:no-ack"\?\)/],
    ['', /--handlers needs a file/],
  ])('rejects --handlers %s with one line and exit 2', (spec, msg) => {
    const r = cli(['run', 'scenarios/default.json', '--handlers', spec], { cwd: REPO });
    expect(r.code).toBe(2);
    expect(r.err).toMatch(msg);
    expect(r.err.trim().split('\n')).toHaveLength(1);
  });

  it('names a wrong export, an unknown handler and a non-generator', () => {
    const dir = tmpDir();
    const write = (name: string, body: string): string => {
      const f = path.join(dir, name);
      fs.writeFileSync(f, body);
      return f;
    };
    const cases: [string, RegExp][] = [
      [write('none.js', 'exports.other = 1;'), /exports no `handlers`/],
      [write('typo.js', 'exports.handlers = { *pageReddy() {} };'), /unknown handler "pageReddy" \(did you mean "pageReady"\?\)/],
      [write('plain.js', 'exports.handlers = { pageReady() {} };'), /handler "pageReady" must be a generator function/],
      [write('throws.js', 'throw new Error("boom");'), /cannot load it: boom/],
    ];
    for (const [f, msg] of cases) {
      const r = cli(['run', 'scenarios/default.json', '--handlers', f], { cwd: REPO });
      expect(r.code).toBe(2);
      expect(r.err).toMatch(msg);
    }
  });

  it('refuses handlers on a bare-metal scenario', () => {
    const r = cli(['run', 'scenarios/kvm-unit-tests-asyncpf.json', '--handlers', NO_ACK], { cwd: REPO });
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/bare-metal guest/);
  });
});

describe('apf compare --handlers', () => {
  it('puts handler sets side by side, each cell with its own replay line', () => {
    const r = cli(['compare', 'scenarios/default.json', '--handlers', `stock,${NO_ACK}`, '--json'], { cwd: REPO });
    expect(r.code).toBe(0);
    const cells = (JSON.parse(r.out) as { cells: { guest: string; ok: boolean; replay: string }[] }).cells;
    expect(cells.map((c) => [c.guest, c.ok])).toEqual([
      ['current+handlers=stock', true],
      [`current+handlers=${NO_ACK}`, false],
    ]);
    expect(cells[1]!.replay).toContain(`--handlers ${NO_ACK}`);
  });
});

describe('apf fuzz --handlers', () => {
  it('fails on a broken handler set and prints replay and judge lines with --handlers', () => {
    const out = tmpDir();
    const r = cli(['fuzz', '--runs', '4', '--seed', '1', '--jobs', '0', '--handlers', NO_ACK, '--shrink-budget', '5', '--out', out, '--quiet'], { cwd: REPO });
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/replay: npx apf run .* --handlers test\/handlers\/mistakes\/no-ack\.ts/);
    expect(r.out).toMatch(/judge: {2}npx apf fuzz --replay .* --handlers test\/handlers\/mistakes\/no-ack\.ts/);
    expect(r.out).toMatch(/reproduce the campaign: npx apf fuzz --runs 4 --seed 1 --handlers test\/handlers\/mistakes\/no-ack\.ts/);
  });

  it('on worker threads (each loads the handlers file) the campaign finds what it finds in this thread', () => {
    const campaign = (jobs: string): Record<string, unknown> => {
      const r = cli(['fuzz', '--runs', '4', '--seed', '1', '--jobs', jobs, '--handlers', NO_ACK, '--shrink-budget', '5', '--out', tmpDir(), '--json'], { cwd: REPO });
      expect(r.code).toBe(1);
      const { elapsedMs: _e, runsPerSec: _r, jobs: j, shrunk, ...rest } = JSON.parse(r.out) as Record<string, unknown>;
      expect(j).toBe(Number(jobs));
      // The shrunk runs without the files they were written to (each campaign has its own --out).
      return { ...rest, shrunk: (shrunk as Array<Record<string, unknown>>).map(({ file: _f, originalFile: _o, replay: _p, judge: _j, ...x }) => x) };
    };
    const here = campaign('0');
    expect(here.failed).toBeGreaterThan(0);
    expect(campaign('2')).toEqual(here);
  });

  it('a canary\'s replay line runs the canary', () => {
    const out = tmpDir();
    const r = cli(['fuzz', '--runs', '4', '--seed', '1', '--jobs', '0', '--canary', 'no-ack', '--shrink-budget', '5', '--out', out, '--quiet'], { cwd: REPO });
    const replay = /replay: npx (apf run .*)$/m.exec(r.out)?.[1];
    expect(replay).toContain('--handlers canary:no-ack');
    const again = cli([...(replay ?? '').split(' ').slice(1), '--quiet', '--runs-dir', out], { cwd: REPO });
    expect(again.code).toBe(1);
  });
});

describe('apf check', () => {
  it('prints a verdict table with the diagnosis and the replay line of a failure', () => {
    const r = cli(['check', '--handlers', NO_ACK, '--no-fuzz', '--fail-fast'], { cwd: REPO });
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/FAIL {3} {2}guest-rules: the page-ready handler .* without writing MSR_KVM_ASYNC_PF_ACK/);
    expect(r.out).toMatch(/^ {2}npx apf run scenarios\/\S+ .*--handlers test\/handlers\/mistakes\/no-ack\.ts$/m);
  });

  it('needs --handlers', () => {
    const r = cli(['check'], { cwd: REPO });
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/which handlers\?/);
  });
});
