/**
 * One fuzz case: a scenario document, validated like a file, run on the real machine (optionally
 * with a replaced guest handler set: a canary), and judged by the fuzz properties. Pure: the
 * result depends only on the document, the mode and the variant.
 */
import type { Simulation } from '../../sim/engine';
import type { GuestMemory } from '../../sim/memory';
import type { Kvm } from '../../host/kvm';
import { buildMachine } from '../machine';
import type { Machine } from '../machine-api';
import { runScenario, type RunReport } from '../runner';
import { scenarioFromValue, ScenarioError } from '../scenario/load';
import type { Scenario } from '../scenario/types';
import { handlersForCase } from '../handlers-file';
import { canaryByName } from './canaries';
import type { JsonObject } from './doc';
import { hazardObserver, hostOracle, lostWakeupObserver, type Observer, type PropertyFailure } from './properties';

export type FuzzMode = 'trusted' | 'untrusted';

export interface CaseOptions {
  readonly mode: FuzzMode;
  /** A canary guest variant (harness/fuzz/canaries.ts) instead of the profile's handlers. */
  readonly canary?: string;
  /**
   * A handlers module (absolute path, harness/handlers-file.ts) whose `handlers` replace the
   * profile's. Loaded once per process (each worker thread loads it itself).
   */
  readonly handlersFile?: string;
}

export interface CaseResult {
  /** No property failed (a run that ended in a known hazard is ok). */
  readonly ok: boolean;
  /** The known hazard the run ended in (properties.ts), if any. */
  readonly hazard?: string;
  /** The first few failures, most telling first. */
  readonly failures: readonly PropertyFailure[];
  readonly outcome: string;
  readonly traceHash: string;
  readonly events: number;
  readonly endT: number;
}

const MAX_FAILURES = 5;

/** Validates a document as a scenario file would be; a ScenarioError means a generator bug. */
export function docToScenario(doc: JsonObject): Scenario {
  return scenarioFromValue(doc, undefined, typeof doc.name === 'string' ? doc.name : 'fuzz');
}

/** Failures of a finished run under the mode's properties. */
function judge(report: RunReport, mode: FuzzMode, extra: readonly PropertyFailure[]): PropertyFailure[] {
  const out: PropertyFailure[] = [];
  const o = report.outcome;
  const detail = report.panic ?? report.error?.message ?? report.endDetail ?? '';
  const first = detail.split('\n')[0] ?? '';
  if (o === 'error') out.push({ property: 'no-error', message: `the simulation threw: ${first}${report.error?.stack === undefined ? '' : ` (${stackTop(report.error.stack)})`}` });
  if (mode === 'trusted') {
    if (o === 'panic' || o === 'triple_fault') out.push({ property: 'no-panic', message: `outcome ${o}: ${first}` });
    else if (o === 'budget' || o === 'deadlock') out.push({ property: 'run-ends', message: `outcome ${o}: ${first}` });
    else if (o !== 'completed' && o !== 'error') out.push({ property: 'run-ends', message: `outcome ${o} instead of completed: ${first}` });
  }
  const seen = new Set<string>();
  for (const v of report.violations) {
    // The lost-wakeup checker's early-wake half is the fuzzer's own no-lost-wakeup property (below).
    if (seen.has(v.checker) || (mode === 'trusted' && v.checker === 'lost-wakeup' && /before anyone waited/.test(v.message))) continue;
    // Generated events provoke kernel WARNs by themselves (interrupts on vectors nobody handles, a
    // CPU offlined under a pinned task): in a campaign a WARN is not a finding about the guest.
    if (v.checker === 'guest-warn') continue;
    seen.add(v.checker);
    out.push({ property: `checker:${v.checker}`, t: v.t, cpu: v.cpu, message: v.message });
  }
  out.push(...extra);
  return out;
}

function stackTop(stack: string): string {
  const line = stack.split('\n').find((l) => /^\s+at /.test(l));
  return line === undefined ? 'no stack' : line.trim();
}

/** Runs a validated scenario under the fuzz properties. */
export function runScenarioCase(scenario: Scenario, opts: CaseOptions): CaseResult {
  const canary = opts.canary === undefined ? undefined : canaryByName(opts.canary);
  const handlers = opts.handlersFile !== undefined ? handlersForCase(opts.handlersFile, '/') : canary?.handlers;
  let kvm: Kvm | undefined;
  let memory: GuestMemory | undefined;
  const observers: Observer[] = [];
  if (opts.mode === 'trusted') observers.push(lostWakeupObserver());
  else observers.push(hostOracle(() => kvm));
  const hazards = hazardObserver();
  const machine = (s: Scenario, sim: Simulation): Machine =>
    buildMachine(s, sim, {
      ...(handlers === undefined ? {} : { handlers }),
      inspect: (p) => {
        kvm = p.kvm;
        memory = p.memory;
      },
    });
  const report = runScenario(scenario, { machine, consumers: [...observers, hazards] });
  const extra: PropertyFailure[] = [];
  // The host oracle reads state a crashed run may have left half-updated: only judge it on runs that did not throw.
  if (report.outcome !== 'error') for (const o of observers) extra.push(...o.finish());
  const all = judge(report, opts.mode, extra);
  const h = all.length > 0 ? hazards.hazard() : undefined;
  // A known hazard explains some failures (the panic, the hang); anything else still fails.
  const failures = (h === undefined ? all : all.filter((f) => !h.explains.has(f.property))).slice(0, MAX_FAILURES);
  const hazard = h !== undefined && failures.length < all.length ? h.name : undefined;
  // Nothing reads the machine after this: its memory goes back to the pool for the next run.
  memory?.release();
  return {
    ok: failures.length === 0,
    ...(hazard === undefined ? {} : { hazard }),
    failures,
    outcome: report.outcome,
    traceHash: report.traceHash,
    events: report.events,
    endT: report.endT,
  };
}

/** Validates and runs a document. An invalid document is a failure of `valid-scenario`. */
export function runCase(doc: JsonObject, opts: CaseOptions): CaseResult {
  let scenario: Scenario;
  try {
    scenario = docToScenario(doc);
  } catch (e) {
    if (!(e instanceof ScenarioError)) throw e;
    return { ok: false, failures: [{ property: 'valid-scenario', message: `the generator produced an invalid scenario: ${e.message}` }], outcome: 'invalid', traceHash: '', events: 0, endT: 0 };
  }
  return runScenarioCase(scenario, opts);
}
