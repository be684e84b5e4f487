/**
 * Runs one scenario: builds the machine, wires the observers (checkers, trace sinks, summary,
 * expectation matchers, trace-triggered injections) to the trace bus, schedules the injected
 * events, runs the simulation until the workload is done, the guest panics, a stop event fires
 * or a budget runs out, and evaluates the expectations.
 *
 * The runner never touches the file system and never throws for anything the scenario or the
 * simulation does: errors inside the run become outcomes (`budget`, `deadlock`, `error`). The
 * caller owns the sinks and closes them (the CLI does so even when something goes wrong).
 */
import { Simulation } from '../sim/engine';
import { BudgetExceededError, DeadlockError } from '../sim/errors';
import { Priority } from '../sim/queue';
import type { TraceFieldsOf, TraceRecord } from '../sim/trace';
import { CheckerSet, type Violation } from './checkers';
import { ActionError, MachineBuildError, type Machine, type MachineFactory } from './machine-api';
import { SummaryBuilder, type Summary } from './report/summary';
import type { Action, Injection, Outcome, Scenario } from './scenario/types';
import { ExpectationTracker } from './scenario/expectations';
import { isTraceEventName } from '../shared-abi/trace-catalogue';
import { consumer, eventSet, TraceRouter, type TraceConsumer } from './trace/consumer';
import { matches } from './trace/match';
import type { TraceSink } from './trace/sink';

export type { ExpectationResult } from './scenario/expectations';
import type { ExpectationResult } from './scenario/expectations';

export interface RunError {
  readonly kind: string;
  readonly message: string;
  readonly stack?: string;
}

export interface RunReport {
  readonly scenario: Scenario;
  readonly outcome: Outcome;
  readonly panic?: string;
  readonly error?: RunError;
  /** What stopped the run, in words (budget message, stop reason, deadlock waiters). */
  readonly endDetail?: string;
  readonly endT: number;
  readonly events: number;
  readonly violations: readonly Violation[];
  readonly checkersEnabled: readonly string[];
  readonly counts: Readonly<Record<string, number>>;
  /** The trace hash (16 hex digits), or '' when the run was asked not to keep one. */
  readonly traceHash: string;
  readonly expectations: readonly ExpectationResult[];
  /** All expectations hold. */
  readonly ok: boolean;
  readonly summary: Summary;
  /** Records kept for the timeline (empty unless asked for). */
  readonly records: readonly TraceRecord[];
  readonly recordsDropped: number;
  readonly machine?: Machine;
  /** Every toggle's value after profile resolution (when the machine reports them). */
  readonly effectiveToggles?: { host: Readonly<Record<string, boolean>>; guest: Readonly<Record<string, boolean>> };
}

export interface RunOptions {
  /** Trace writers; they get every record and violation as the run goes. */
  readonly sinks?: readonly TraceSink[];
  /** Keep up to this many records for the timeline (default 0). */
  readonly keepRecords?: number;
  /** Builds the machine (default: host KVM + guest kernel, `machine.ts`). */
  readonly machine?: MachineFactory;
  /** Called with every record (after the checkers). Every record is then built: prefer `consumers`. */
  readonly onRecord?: (rec: TraceRecord) => void;
  /** Further trace consumers (after the run's own): each gets the records of the events it declares. */
  readonly consumers?: readonly TraceConsumer[];
  /** Called once the machine is built, before its first instruction (not called when it cannot be built). */
  readonly onBuilt?: () => void;
  /** Keep the running trace hash (default true; the benchmark measures both). */
  readonly traceHash?: boolean;
  /** `SimulationOptions.inlineContinuation` (default true; the same run either way). */
  readonly inlineContinuation?: boolean;
}

const ACTION_LABEL = (inj: Injection): string => `events[${inj.index}] ${inj.action.do}`;

/** Fields of an action for its `inject` trace record (bigints stay bigints; page lists become text). */
function injectFields(action: Action): TraceFieldsOf<'inject'> {
  const out: { what: string; [setting: string]: number | bigint | string | boolean } = { what: action.do };
  for (const [k, v] of Object.entries(action)) {
    if (k === 'do' || k === 'cpu' || v === undefined) continue;
    if (typeof v === 'number' || typeof v === 'bigint' || typeof v === 'string' || typeof v === 'boolean') out[k] = v;
    else out[k] = JSON.stringify(v);
  }
  return out;
}

/** Trace-triggered injections as a consumer: counts each `on` trigger's matches and fires the injection on its nth (or every later) one. */
function triggers(injections: readonly Injection[], fire: (inj: Injection) => void): TraceConsumer {
  const on = injections.filter((e) => e.trigger.kind === 'on');
  const hits = on.map(() => 0);
  const events = new Set(on.flatMap((e) => (e.trigger.kind === 'on' && isTraceEventName(e.trigger.match.event) ? [e.trigger.match.event] : [])));
  return {
    events,
    onRecord(rec) {
      for (let i = 0; i < on.length; i++) {
        const inj = on[i]!;
        if (inj.trigger.kind !== 'on' || !matches(inj.trigger.match, rec)) continue;
        const n = (hits[i] ?? 0) + 1;
        hits[i] = n;
        if (n === inj.trigger.nth || (inj.trigger.every && n > inj.trigger.nth)) fire(inj);
      }
    },
  };
}

function errorOf(e: unknown): RunError {
  if (e instanceof Error) return { kind: e.name, message: e.message, ...(e.stack === undefined ? {} : { stack: e.stack }) };
  return { kind: 'thrown', message: String(e) };
}

export function runScenario(scenario: Scenario, opts: RunOptions = {}): RunReport {
  const sim = new Simulation({
    seed: scenario.seed,
    maxEvents: scenario.budget.maxEvents,
    maxTime: scenario.budget.maxTime,
    traceHash: opts.traceHash ?? true,
    inlineContinuation: opts.inlineContinuation ?? true,
  });
  const sinks = opts.sinks ?? [];
  const keep = opts.keepRecords ?? 0;
  const records: TraceRecord[] = [];
  let dropped = 0;
  const checkers = new CheckerSet(scenario.checkers, (v) => {
    for (const s of sinks) s.violation(v);
  });
  const summary = new SummaryBuilder();

  const expectations = new ExpectationTracker(scenario.expect);
  let panicFromTrace: string | undefined;
  let stopReason: string | undefined;
  let machine: Machine | undefined;

  const perform = (inj: Injection): void => {
    const a = inj.action;
    sim.trace.emit('harness', 'cpu' in a && typeof a.cpu === 'number' ? a.cpu : -1, 'inject', injectFields(a));
    if (a.do === 'stop') {
      stopReason = a.reason ?? `events[${inj.index}]`;
      sim.stop(stopReason);
      return;
    }
    machine?.perform(a);
  };

  // Everything that reads the trace is a consumer of the events it names, routed by one router
  // (the checkers through their own, which has a broadcast mode for the routing test).
  const router = new TraceRouter([
    summary,
    expectations,
    consumer(['panic'], (rec) => void (panicFromTrace ??= rec.message)),
    triggers(scenario.events, (inj) => sim.schedule(inj.after, Priority.Harness, () => perform(inj), ACTION_LABEL(inj))),
    ...(opts.consumers ?? []),
  ]);
  const listener = (rec: TraceRecord): void => {
    for (const s of sinks) s.record(rec);
    checkers.onRecord(rec);
    router.onRecord(rec);
    if (keep > 0) {
      if (records.length < keep) records.push(rec);
      else dropped++;
    }
    opts.onRecord?.(rec);
  };
  // Sinks, kept records and `onRecord` see every record; otherwise the bus builds records only
  // for the events a checker or consumer declared.
  let unsubscribe: () => void;
  if (sinks.length > 0 || keep > 0 || opts.onRecord !== undefined) {
    sim.trace.on('record', listener);
    unsubscribe = () => void sim.trace.off('record', listener);
  } else {
    unsubscribe = sim.trace.subscribe(eventSet(checkers.events, router.events), listener);
  }

  let outcome: Outcome = 'completed';
  let error: RunError | undefined;
  let endDetail: string | undefined;
  /** For the checkers: when a time budget ends a run whose next event lies beyond it, the machine was idle until the budget. */
  let quietUntil: number | undefined;
  try {
    try {
      machine = (opts.machine ?? defaultFactory())(scenario, sim);
      for (const inj of scenario.events) {
        if (inj.trigger.kind === 'at') sim.scheduleAt(inj.trigger.t + inj.after, Priority.Harness, () => perform(inj), ACTION_LABEL(inj));
      }
      opts.onBuilt?.();
      machine.start();
      const m = machine;
      const end = sim.run({ stopWhen: () => m.done() || m.panicMessage() !== undefined || m.shutdown() || m.destroyed() || panicFromTrace !== undefined });
      if (end.reason === 'stopped') endDetail = `stopped: ${end.detail ?? ''}`;
    } catch (e) {
      if (e instanceof BudgetExceededError) {
        outcome = 'budget';
        endDetail = e.message;
        if (e.budget === 'time') quietUntil = Math.max(sim.now, Math.min(e.nextTime, e.limit));
      } else if (e instanceof DeadlockError) {
        outcome = 'deadlock';
        endDetail = e.message;
      } else if (e instanceof MachineBuildError && machine === undefined) {
        outcome = 'bad_machine';
        endDetail = e.message;
      } else if (e instanceof ActionError) {
        outcome = 'impossible_action';
        endDetail = e.message;
      } else {
        outcome = 'error';
        error = errorOf(e);
        endDetail = error.message;
      }
    }
    const panic = machine?.panicMessage() ?? panicFromTrace;
    if (outcome !== 'error' && outcome !== 'bad_machine' && outcome !== 'impossible_action') {
      if (panic !== undefined) outcome = 'panic';
      else if (machine?.shutdown() === true) outcome = 'triple_fault';
      else if (outcome === 'completed') {
        if (stopReason !== undefined) outcome = 'stopped';
        else if (machine?.destroyed() === true) outcome = 'vm_destroyed';
        else if (machine?.done() !== true) {
          outcome = 'deadlock';
          endDetail = 'nothing left to run, but the workload has not finished';
        }
      }
    }
    checkers.finish({ t: quietUntil ?? sim.now, outcome });

    const counts = sim.trace.counts();
    const results = expectations.results({ outcome, panic, endDetail, checkers });

    return {
      scenario,
      outcome,
      ...(panic === undefined ? {} : { panic }),
      ...(error === undefined ? {} : { error }),
      ...(endDetail === undefined ? {} : { endDetail }),
      endT: sim.now,
      events: sim.eventsRun,
      violations: checkers.violations,
      checkersEnabled: checkers.enabled,
      counts,
      traceHash: sim.trace.hashEnabled ? sim.trace.hash : '',
      expectations: results,
      ok: results.every((r) => r.ok),
      summary: summary.build(sim.now, sim.trace),
      records,
      recordsDropped: dropped,
      ...(machine === undefined ? {} : { machine }),
      ...(machine?.effectiveToggles === undefined ? {} : { effectiveToggles: machine.effectiveToggles() }),
    };
  } finally {
    unsubscribe();
  }
}

/** The real machine builder, loaded on first use (it pulls in host/ and guest/). */
function defaultFactory(): MachineFactory {
  const mod = require('./machine') as typeof import('./machine');
  return mod.buildMachine;
}
