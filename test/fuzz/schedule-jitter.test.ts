/**
 * The schedule-perturbation hook (host/x86/run.ts `scheduleRun`, `VmConfig.stepJitterNs`, scenario
 * `machine.host.stepJitter`): off by default, so every existing trace is unchanged; when on, the
 * interleaving depends on the seed through the `host.jitter` PRNG stream, deterministically.
 */
import * as path from 'node:path';
import { Kvm } from '../../host/kvm';
import { runScenario } from '../../harness/runner';
import { loadScenarioFile, scenarioFromValue } from '../../harness/scenario/load';
import type { Scenario } from '../../harness/scenario/types';
import { Simulation } from '../../sim/engine';
import { GuestMemory } from '../../sim/memory';

const REPO = path.resolve(__dirname, '..', '..');
const base = loadScenarioFile(path.join(REPO, 'scenarios', 'default.json'));
const withJitter = (s: Scenario, ns: number | undefined, seed: number | string = s.seed): Scenario => ({
  ...s,
  seed,
  machine: { ...s.machine, host: { ...s.machine.host, ...(ns === undefined ? {} : { stepJitterNs: ns }) } },
});

describe('schedule perturbation (stepJitter)', () => {
  it('is off by default: no PRNG stream, no extra delay', () => {
    const sim = new Simulation({ seed: 1 });
    const kvm = new Kvm(sim, new GuestMemory(1 << 20), { profile: 'current', kvmFeatures: 0 });
    expect(kvm.stepJitterNs).toBe(0);
    expect(kvm.jitterRng).toBeNull();
    const on = new Kvm(new Simulation({ seed: 1 }), new GuestMemory(1 << 20), { profile: 'current', kvmFeatures: 0, stepJitterNs: 250 });
    expect(on.jitterRng?.path).toBe('host.jitter');
  });

  it('leaves runs without it exactly as they were (stepJitter 0 = absent)', () => {
    const a = runScenario(withJitter(base, undefined));
    const b = runScenario(withJitter(base, 0));
    expect(a.ok).toBe(true);
    expect(b.traceHash).toBe(a.traceHash);
  });

  it('changes the interleaving with the seed, deterministically, and keeps the protocol correct', () => {
    const runs = [1, 1, 2].map((seed) => runScenario(withJitter(base, 2000, seed)));
    const [r1, r1again, r2] = runs;
    expect(r1?.traceHash).toBe(r1again?.traceHash);
    expect(r1?.traceHash).not.toBe(r2?.traceHash);
    expect(r1?.traceHash).not.toBe(runScenario(withJitter(base, undefined, 1)).traceHash);
    // The protocol stays correct: the workload completes and no checker fires.
    for (const r of runs) expect({ outcome: r?.outcome, violations: r?.violations }).toEqual({ outcome: 'completed', violations: [] });
  });

  it('is a scenario field: machine.host.stepJitter', () => {
    const tasks = [{ name: 'a', program: [{ op: 'compute', for: '1us' }] }];
    expect(scenarioFromValue({ machine: { host: { stepJitter: '2us' } }, tasks }, undefined).machine.host.stepJitterNs).toBe(2000);
    expect(scenarioFromValue({ tasks }, undefined).machine.host.stepJitterNs).toBeUndefined();
    expect(() => scenarioFromValue({ machine: { host: { stepJitter: 'soon' } }, tasks }, undefined)).toThrow(/machine\.host\.stepJitter/);
  });
});
