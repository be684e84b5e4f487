import * as fs from 'node:fs';
import * as path from 'node:path';
import { cli, REPO, tmpDir } from './cli-helpers';

const DIR = path.join(__dirname, 'bad-scenarios');
const expected = JSON.parse(fs.readFileSync(path.join(DIR, 'expected.json'), 'utf8')) as Record<string, string>;
const files = fs.readdirSync(DIR).filter((f) => /\.(json|ya?ml)$/.test(f) && f !== 'expected.json').sort();

describe('malformed scenarios', () => {
  const runs = tmpDir();
  afterAll(() => fs.rmSync(runs, { recursive: true, force: true }));
  it('has a corpus of at least 20 mistakes, each with its expected message', () => {
    expect(files.length).toBeGreaterThanOrEqual(20);
    expect(Object.keys(expected).sort()).toEqual(files);
  });

  it.each(files)('%s: one clear line naming the file and the place, exit 2', (f) => {
    const rel = path.relative(REPO, path.join(DIR, f));
    const r = cli(['run', rel, '--runs-dir', runs], { cwd: REPO });
    expect(r.code).toBe(2);
    expect(r.out).toBe('');
    // One line; an expected message ending in "…" is a prefix (the list of valid names that follows grows with the project).
    const want = `${rel}: ${expected[f] ?? '?'}`;
    expect(r.err.endsWith('\n') && !r.err.slice(0, -1).includes('\n')).toBe(true);
    if (want.endsWith('…')) expect(r.err.slice(0, want.length - 1)).toBe(want.slice(0, -1));
    else expect(r.err).toBe(want + '\n');
  });

  it('a missing file is bad input too', () => {
    const r = cli(['run', 'scenarios/does-not-exist.json'], { cwd: REPO });
    expect(r.code).toBe(2);
    expect(r.err).toBe('scenarios/does-not-exist.json: no such file\n');
  });

  it('writes nothing to the runs directory for bad input', () => {
    expect(fs.readdirSync(runs)).toEqual([]);
  });
});
