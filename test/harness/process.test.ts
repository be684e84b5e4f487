/**
 * The `apf` executable as a real process (bin/apf: the start-up path, process.exitCode, the
 * streams), one command of each family. The other CLI tests call the CLI entry function in-process
 * (test/harness/cli-helpers.ts); here each command's status and output through the process must be
 * what the entry function gives, a failure's replay line must reproduce the failure when run as a
 * process, and bad input must end in one line and exit 2.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { cli, REPO, spawnApf, tmpDir } from './cli-helpers';

const work = tmpDir('apf-process-');
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));
const env = { APF_RUNS_DIR: path.join(work, 'runs') };

describe('apf as a process', () => {
  it.each([
    ['list', ['list']],
    ['schema', ['schema']],
    ['compare', ['compare', 'scenarios/send-always-kernel-fault.json', '--guest', 'linux-5.2,current', '--host', 'linux-4.19,current']],
    ['diff', ['diff', 'scenarios/regressions/token-zero-wraparound.json', '--variant', 'buggy']],
    ['check', ['check', '--handlers', 'test/handlers/mistakes/no-ack.ts', '--no-fuzz', '--fail-fast']],
  ])('%s: the status and output of the entry function', (_name, argv) => {
    const p = spawnApf(argv, { env });
    const here = cli(argv, { cwd: REPO, env });
    expect(p.out.length).toBeGreaterThan(0);
    expect({ code: p.code, out: p.out, err: p.err }).toEqual({ code: here.code, out: here.out, err: here.err });
  });

  it('fuzz: a campaign on a worker thread started by the process', () => {
    const p = spawnApf(['fuzz', '--runs', '3', '--seed', '1', '--jobs', '1', '--out', path.join(work, 'fuzz'), '--json'], { env });
    expect(p.err).toBe('');
    expect(p.code).toBe(0);
    expect(JSON.parse(p.out)).toMatchObject({ format: 'apf-fuzz-result/1', runs: 3, failed: 0, jobs: 1 });
  });

  it('a failing run prints a replay line that, run as a process, fails the same way', () => {
    const p = spawnApf(['run', 'scenarios/default.json', '--handlers', 'test/handlers/mistakes/no-ack.ts', '--quiet'], { env });
    expect(p.code).toBe(1);
    const replay = /^replay: npx (apf .*)$/m.exec(p.out)?.[1];
    expect(replay).toBeDefined();
    const again = spawnApf([...(replay ?? '').split(' ').slice(1), '--quiet'], { env });
    expect(again.code).toBe(1);
    // The same report, but for the run id in the names of the files each run writes.
    const same = (out: string): string => out.replace(/runs\/[A-Za-z0-9_-]{12}\./g, 'runs/<run-id>.');
    expect(same(again.out)).toBe(same(p.out));
  });

  it('bad input: one line on stderr, exit 2, no stack trace', () => {
    const p = spawnApf(['run', 'scenarios/no-such-scenario.json'], { env });
    expect(p.code).toBe(2);
    expect(p.out).toBe('');
    expect(p.err.trimEnd().split('\n')).toHaveLength(1);
    expect(p.err).not.toMatch(/\n\s+at /);
  });
});
