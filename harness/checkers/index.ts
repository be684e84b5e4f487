/** The checkers, in the order they are listed and run. */
import { apfAnswered } from './apf-answered';
import { guestRules } from './guest-rules';
import { guestWarn } from './guest-warn';
import { hostWrites } from './host-writes';
import { hungTask } from './hung-task';
import { lostWakeup } from './lost-wakeup';
import { interrupts } from './interrupts';
import { nestedState } from './nested-state';
import { pageIntegrity } from './page-integrity';
import { sleepContext } from './sleep-context';
import { slotBusy } from './slot-busy';
import { staleTranslation } from './stale-translation';
import { tokenUnique } from './token-unique';
import type { Checker, CheckerDef, RunEndInfo, Violation } from './types';
import type { TraceRecord } from '../../sim/trace';
import { TraceRouter, type TraceEventName } from '../trace/consumer';

export * from './types';

export const CHECKERS: readonly CheckerDef[] = [apfAnswered, tokenUnique, hostWrites, slotBusy, sleepContext, hungTask, pageIntegrity, interrupts, nestedState, staleTranslation, guestRules, guestWarn, lostWakeup];

export function checkerDef(name: string): CheckerDef | undefined {
  return CHECKERS.find((c) => c.name === name);
}

/** Per-checker setting in a scenario: off, on with defaults, or on with options. */
export type CheckerSetting = boolean | Readonly<Record<string, unknown>>;

/**
 * A set of live checkers for one run. Violations are collected in order and also handed to
 * `onViolation` as they happen (the runner writes them into the trace files).
 */
export class CheckerSet {
  readonly violations: Violation[] = [];
  readonly enabled: readonly string[];
  private readonly live: Array<{ name: string; checker: Checker }> = [];
  private readonly router: TraceRouter;

  /**
   * `routing` (default true) delivers each record only to the checkers whose `events` name it;
   * false delivers every record to every checker (the reference the routing is tested against).
   */
  constructor(settings: Readonly<Record<string, CheckerSetting | undefined>> = {}, onViolation?: (v: Violation) => void, routing = true) {
    const enabled: string[] = [];
    for (const def of CHECKERS) {
      const s = settings[def.name];
      if (s === false) continue;
      enabled.push(def.name);
      const report = (t: number, cpu: number, message: string): void => {
        const v: Violation = { checker: def.name, t, cpu, message };
        this.violations.push(v);
        onViolation?.(v);
      };
      this.live.push({ name: def.name, checker: def.create(typeof s === 'object' ? s : {}, report) });
    }
    this.enabled = enabled;
    this.router = new TraceRouter(
      this.live.map((c) => c.checker),
      routing,
    );
  }

  /** The events the live checkers act on (every catalogue event when not routing). */
  get events(): ReadonlySet<TraceEventName> {
    return this.router.events;
  }

  /** Hands a record to the checkers that declared its event (every checker when not routing). */
  onRecord(rec: TraceRecord): void {
    this.router.onRecord(rec);
  }

  finish(end: RunEndInfo): void {
    for (const c of this.live) c.checker.finish(end);
  }

  /** Names of the checkers that reported at least once. */
  fired(): string[] {
    return [...new Set(this.violations.map((v) => v.checker))];
  }
}
