/**
 * The catalogue of realistic handler mistakes (test/handlers/mistakes/, one file each): `apf check`
 * must kill every one, and its diagnosis must name the rule the mistake breaks (each file's
 * `rule`). The stock handlers must pass every scenario and the fuzz campaign.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { native } from '../support/native';

// `apf check` runs outside Jest's sandbox (test/support/native.ts): some mistakes spin to the event budget.
const { CHECK_RUNS, runCheck } = native<typeof import('../../harness/cli/commands/check')>('harness/cli/commands/check');
const { loadHandlers } = native<typeof import('../../harness/handlers-file')>('harness/handlers-file');

const REPO = path.resolve(__dirname, '..', '..');
const DIR = path.join(__dirname, 'mistakes');
const SCENARIOS = path.join(REPO, 'scenarios');
const files = fs.readdirSync(DIR).filter((f) => f.endsWith('.ts')).sort();

interface Mistake {
  readonly description: string;
  readonly rule: RegExp;
}

describe('the mistake catalogue', () => {
  it('has at least 20 mistakes, each with a one-line description and a rule', () => {
    expect(files.length).toBeGreaterThanOrEqual(20);
    for (const f of files) {
      const m = require(path.join(DIR, f)) as Mistake;
      expect(m.description).toMatch(/^[^\n]{10,160}$/);
      expect(m.rule).toBeInstanceOf(RegExp);
    }
  });

  it.each(files)('%s is killed by apf check with a diagnosis naming its rule', (f) => {
    const m = require(path.join(DIR, f)) as Mistake;
    const loaded = loadHandlers('check', path.join(DIR, f), REPO);
    const r = runCheck(loaded, { dir: SCENARIOS, cwd: REPO, fuzz: false, runs: 1, seed: 1, jobs: 0, out: path.join(REPO, 'runs', 'check'), failFast: true });
    expect(r.ok).toBe(false);
    const failed = r.rows.filter((x) => !x.ok);
    expect(failed.length).toBeGreaterThan(0);
    expect(failed[0]!.diagnosis).toMatch(m.rule);
    expect(failed[0]!.replay).toContain(`--handlers ${path.join(DIR, f)}`);
  });
});

describe('the stock handlers', () => {
  it('pass every applicable scenario and the fuzz campaign', () => {
    const loaded = loadHandlers('check', 'stock', REPO);
    const r = runCheck(loaded, { dir: SCENARIOS, cwd: REPO, fuzz: true, runs: CHECK_RUNS, seed: 1, jobs: 2, out: path.join(REPO, 'runs', 'check') });
    expect(r.rows.filter((x) => !x.ok)).toEqual([]);
    expect(r.scenarios).toBeGreaterThan(60);
    expect(r.fuzzRuns).toBe(CHECK_RUNS);
  });
});
