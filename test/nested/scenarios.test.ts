/**
 * scenarios/nested: every scenario runs in-process with its expectations met, the set covers what
 * the nested work asks for, docs/nested.md lists each one (the table is generated from the files), and a
 * nested run is deterministic.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { native } from '../support/native';
import { renderTable, rowOf, tableIn, writeTable } from './doc-table';
import { failures, nestedScenarioFiles, REPO } from './support';

const { runScenario } = native<typeof import('../../harness/runner')>('harness/runner');
const { loadScenarioFile } = native<typeof import('../../harness/scenario/load')>('harness/scenario/load');

const files = nestedScenarioFiles();
const DOC = path.join(REPO, 'docs', 'nested.md');

describe('scenarios/nested', () => {
  it.each(files.map((f) => path.basename(f)))('%s meets its expectations', (base) => {
    const s = loadScenarioFile(path.join(REPO, 'scenarios', 'nested', base), `scenarios/nested/${base}`);
    const r = runScenario(s);
    expect(failures(r)).toEqual([]);
    expect(r.outcome).toBe(s.expect.outcome);
    // Every scenario says why it ends the way it does.
    expect(s.verdict.pass?.length ?? 0).toBeGreaterThan(20);
  });

  it('covers the nested cases: the L2 fault matrix, both token forms, page-ready orderings, the L1 #PF window, every restore ordering', () => {
    const names = files.map((f) => path.basename(f, '.json'));
    for (const bit2 of ['bit2', 'no-bit2']) {
      for (const cpl of ['cpl3', 'cpl0']) for (const sa of ['', '-send-always']) expect(names).toContain(`l2-fault-${bit2}-${cpl}${sa}`);
    }
    expect(names).toEqual(
      expect.arrayContaining([
        'l2-fault-nested-apf-token',
        'page-ready-while-l2-runs',
        'page-ready-before-wait-dummy',
        'l1-pf-window-panic',
        'l1-pf-window-no-panic',
        'restore-two-step-vcpu-exit',
        'restore-two-step-listener-before',
        'restore-two-step-listener-after',
        'restore-two-step-no-listener-hang',
        'restore-at-set-listener-before',
        'restore-at-set-listener-after-hang',
        'restore-at-set-vcpu-exit-efault',
        'restore-two-step-fetch-fails',
        'restore-at-set-fetch-fails',
      ]),
    );
  });

  it('docs/nested.md has the generated table of every nested scenario: config, outcome, why', () => {
    const table = renderTable(files.map((f) => rowOf(f, loadScenarioFile(f))));
    if (process.env.APF_UPDATE_DOCS === '1') writeTable(DOC, table);
    const doc = fs.readFileSync(DOC, 'utf8');
    expect(tableIn(doc)).toBe(table);
  });

  it('is deterministic: the same nested scenario and seed give the same trace hash', () => {
    const f = files.find((x) => x.endsWith('restore-two-step-listener-before.json'))!;
    const a = runScenario(loadScenarioFile(f));
    const b = runScenario(loadScenarioFile(f));
    expect(a.traceHash).toBe(b.traceHash);
    expect(a.events).toBe(b.events);
  });
});
