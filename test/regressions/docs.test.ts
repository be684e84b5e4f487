/** docs/regressions.md is generated from the scenario headers and must be up to date. */
import * as fs from 'node:fs';
import { native } from '../support/native';

// The generator runs the regression scenarios outside Jest's sandbox (test/support/native.ts).
const { fixLabel, regressionsDoc, REGRESSIONS_DOC } = native<typeof import('../../harness/tools/regressions-doc')>('harness/tools/regressions-doc');
const { regressionFiles } = native<typeof import('../../harness/tools/regressions')>('harness/tools/regressions');

describe('docs/regressions.md', () => {
  it('is what harness/tools/regressions-doc.ts generates from scenarios/regressions (regenerate: npx ts-node --transpile-only harness/tools/regressions-doc.ts)', () => {
    expect(fs.readFileSync(REGRESSIONS_DOC, 'utf8')).toBe(regressionsDoc());
  });

  it('lists every regression file with its fix', () => {
    const doc = regressionsDoc();
    for (const f of regressionFiles()) expect(doc).toContain(f.slice(f.indexOf('scenarios/regressions/')));
    expect(doc).toMatch(/\| \[double-fault-two-page-faults\]\(#double-fault-two-page-faults\) \| §7\.1/);
  });

  it('shortens a "fixed by" text to its first clause, quotes kept whole', () => {
    expect(fixLabel('ab4e41eb9fab "KVM: x86: Don\'t clear async #PF queue when CR0.PG is disabled (e.g. on #SMI)" (Maxim Levitsky, 2025): the queue survives')).toBe(
      'ab4e41eb9fab "KVM: x86: Don\'t clear async #PF queue when CR0.PG is disabled (e.g. on #SMI)"',
    );
    expect(fixLabel('no kernel fix: KVM still validates after storing')).toBe('no kernel fix');
    expect(fixLabel('just a commit')).toBe('just a commit');
  });
});
