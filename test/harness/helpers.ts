/** Helpers for harness tests: synthetic trace records and a checker driver. */
import type { TraceEventName, TraceFieldsOf, TraceRecord, TraceSource } from '../../sim/trace';
import { CHECKERS, CheckerSet, type CheckerSetting, type Violation } from '../../harness/checkers';
import { eventInfo, recordProblems } from '../../harness/trace/vocabulary';

/**
 * A record as an emit site would produce it: the event and fields are checked against the trace
 * catalogue by the compiler, and again at run time (a synthetic record a checker could never see
 * would make a test prove nothing). `src` comes from the catalogue unless given.
 */
export function rec<E extends TraceEventName>(t: number, cpu: number, event: E, fields: TraceFieldsOf<E>, src?: TraceSource): TraceRecord {
  const r: TraceRecord = { t, cpu, src: src ?? eventInfo(event)?.src ?? 'host', event, ...fields };
  const problems = recordProblems(r);
  if (problems.length > 0) throw new Error(`synthetic record is not one the trace catalogue describes: ${problems.join('; ')}`);
  return r;
}
/** Runs one checker (all others off) over records and returns its violations. */
export function check(name: string, records: readonly TraceRecord[], outcome = 'completed', options: CheckerSetting = true): Violation[] {
  const settings: Record<string, CheckerSetting> = {};
  for (const c of CHECKERS) settings[c.name] = c.name === name ? options : false;
  const set = new CheckerSet(settings);
  for (const r of records) set.onRecord(r);
  const last = records[records.length - 1];
  set.finish({ t: last === undefined ? 0 : last.t + 10_000_000_000, outcome });
  return set.violations;
}
