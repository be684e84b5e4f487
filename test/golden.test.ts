/**
 * The trace contract: every shipped scenario and regression variant keeps its trace hash, event
 * count and outcome (test/golden/trace-hashes.json, written by harness/tools/golden-hashes.ts).
 * A refactor must leave this file alone; a deliberate behaviour change regenerates it.
 */
import * as fs from 'node:fs';
import type { GoldenRow } from '../harness/tools/golden-hashes';
import { native } from './support/native';

const { GOLDEN_FILE, goldenRows } = native<typeof import('../harness/tools/golden-hashes')>('harness/tools/golden-hashes');

describe('trace hashes of every shipped scenario', () => {
  const want = JSON.parse(fs.readFileSync(GOLDEN_FILE, 'utf8')) as Record<string, GoldenRow>;

  it('covers the scenario tree', () => {
    expect(Object.keys(want).length).toBeGreaterThanOrEqual(100);
    expect(want['scenarios/default.json']?.outcome).toBe('completed');
  });

  it('match test/golden/trace-hashes.json row for row', () => {
    expect(goldenRows()).toEqual(want);
  });
});
