/**
 * The run loop's inline continuation (`Simulation.continueInline`, used by the host's vCPU run
 * loop) is a pure speed-up: every shipped scenario, and the benchmark workloads with and without
 * schedule jitter, give the same trace hash, event count and verdict with it on and off.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Scenario } from '../../harness/scenario/types';
import { native } from '../support/native';
import { REPO } from './cli-helpers';

const { roundTripScenario } = native<typeof import('../../bench/roundtrip')>('bench/roundtrip');
const { scenarioFiles } = native<typeof import('../../harness/cli/commands/list')>('harness/cli/commands/list');
const { runScenario } = native<typeof import('../../harness/runner')>('harness/runner');
const { loadScenarioFile, scenarioFromValue } = native<typeof import('../../harness/scenario/load')>('harness/scenario/load');

function same(s: Scenario): void {
  const on = runScenario(s, { inlineContinuation: true });
  const off = runScenario(s, { inlineContinuation: false });
  expect(on.traceHash).toMatch(/^[0-9a-f]{16}$/);
  expect({ hash: on.traceHash, events: on.events, endT: on.endT, outcome: on.outcome, ok: on.ok, counts: on.counts }).toEqual({
    hash: off.traceHash,
    events: off.events,
    endT: off.endT,
    outcome: off.outcome,
    ok: off.ok,
    counts: off.counts,
  });
}

const files = scenarioFiles(path.join(REPO, 'scenarios')).map((f) => path.relative(REPO, f));

describe('inline continuation changes nothing observable', () => {
  it('covers the scenario tree', () => {
    expect(files.length).toBeGreaterThanOrEqual(60);
    expect(fs.existsSync(path.join(REPO, 'scenarios/default.json'))).toBe(true);
  });

  it.each(files)('%s: same hash, events and verdict', (file) => {
    same(loadScenarioFile(path.join(REPO, file), file));
  });

  it.each([0, 2_000])('benchmark round trips, 2 vCPUs x 6 tasks, step jitter %d ns', (jitter) => {
    const value = roundTripScenario({ vcpus: 2, tasks: 6, loops: 5 }) as { machine: Record<string, unknown> };
    if (jitter > 0) value.machine = { ...value.machine, host: { stepJitter: `${jitter}ns` } };
    const s = scenarioFromValue(value, undefined, 'bench');
    expect(s.machine.host.stepJitterNs ?? 0).toBe(jitter);
    same(s);
  });
});
