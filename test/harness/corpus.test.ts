import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CASES, type CorpusCase } from './corpus/cases';
import { cli, REPO, tmpDir } from './cli-helpers';

/** Where each case runs: a fresh directory holding its file and a plain file named "plain". */
function setUp(c: CorpusCase): { dir: string; argv: string[] } {
  const dir = tmpDir('apf-corpus-');
  fs.writeFileSync(path.join(dir, 'plain'), 'not a directory\n');
  const name = `${c.id}.${c.ext ?? 'json'}`;
  if (c.file !== undefined) fs.writeFileSync(path.join(dir, name), typeof c.file === 'string' ? c.file : JSON.stringify(c.file));
  const argv = (c.argv ?? ['run', '$FILE', '-q']).map((a) => a.replace('$FILE', name).replace('$REPO', REPO).replace('$TMP', dir));
  return { dir, argv };
}

describe('front-end corpus: malformed scenarios and command-line misuses', () => {
  it('has at least 100 cases with distinct names', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(100);
    expect(new Set(CASES.map((c) => c.id)).size).toBe(CASES.length);
  });

  it.each(CASES.map((c) => [c.id, c] as const))('%s', (_id, c) => {
    const { dir, argv } = setUp(c);
    try {
      const r = cli(argv, { cwd: dir, env: { APF_RUNS_DIR: path.join(dir, 'runs') } });
      const msg = c.msg.replaceAll('$TMP', dir);
      expect({ code: r.code, text: c.code === 2 ? r.err : r.out }).toEqual({ code: c.code, text: expect.stringContaining(msg) as unknown });
      // Never a stack trace or an internal error, whatever the input.
      expect(r.err + r.out).not.toMatch(/apf[^:\n]*: internal error|\n\s+at .*\(.*:\d+:\d+\)/);
      if (c.code === 2) {
        // Bad input: nothing on stdout but usage text, and the problem in one line naming the file when there is one.
        const lines = r.err.trimEnd().split('\n');
        if (argv.length > 0) expect(lines.length).toBe(1);
        // A problem of the file starts with its name; a problem of an option with "apf <command>:".
        if (c.file !== undefined) expect({ named: r.err.startsWith(`${c.id}.${c.ext ?? 'json'}: `) || r.err.startsWith('apf '), out: r.out }).toEqual({ named: true, out: '' });
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('--all-errors lists every problem, one per line, the first one first', () => {
    const c: CorpusCase = { id: 'all', file: { tasks: [{ name: 't', program: [] }], machine: { vcpus: 0, memory: 1000 }, bogus: 1 }, argv: ['run', '$FILE', '--all-errors'], code: 2, msg: '' };
    const { dir, argv } = setUp(c);
    try {
      const one = cli(['run', 'all.json'], { cwd: dir });
      const all = cli(argv, { cwd: dir });
      expect(all.code).toBe(2);
      const lines = all.err.trimEnd().split('\n');
      expect(lines).toEqual([
        'all.json: machine.vcpus: expected a vCPU count: an integer from 1 to 64',
        'all.json: machine.memory: expected a multiple of 4KiB (got 1000 bytes)',
        expect.stringMatching(/^all\.json: bogus: unknown key "bogus"/) as unknown,
      ]);
      expect(one.err).toBe(`${lines[0] ?? ''} (and 2 more problems; --all-errors lists them)\n`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('fuzz --jobs above the cores is lowered with a message, and the result names the workers that ran', () => {
    const dir = tmpDir('apf-corpus-');
    try {
      const r = cli(['fuzz', '--runs', '2', '--seed', '1', '--jobs', '999', '--out', path.join(dir, 'out'), '--json'], { cwd: dir });
      const cores = Math.min(os.availableParallelism(), 2);
      expect(r.code).toBe(0);
      expect(r.err).toBe(`apf fuzz: --jobs 999: using ${os.availableParallelism()}, the number of cores (each worker holds its own copy of the simulator)\n`);
      expect((JSON.parse(r.out) as { jobs: number }).jobs).toBe(cores);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a named pipe is refused without reading (no hang)', () => {
    const dir = tmpDir('apf-corpus-');
    try {
      const fifo = path.join(dir, 'pipe.json');
      try {
        execFileSync('mkfifo', [fifo]);
      } catch {
        return; // no mkfifo on this system
      }
      const r = cli(['run', 'pipe.json'], { cwd: dir });
      expect(r).toMatchObject({ code: 2, err: 'pipe.json: is a named pipe, not a regular file (give a scenario file)\n' });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
