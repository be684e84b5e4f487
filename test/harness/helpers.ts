/** Helpers for harness tests: synthetic trace records and a checker driver. */
import type { TraceRecord, TraceSource } from '../../sim/trace';
import { CHECKERS, CheckerSet, type CheckerSetting, type Violation } from '../../harness/checkers';
import { eventInfo } from '../../harness/trace/vocabulary';

/** A record; `src` comes from the vocabulary unless given. */
export function rec(t: number, cpu: number, event: string, fields: Record<string, unknown> = {}, src?: TraceSource): TraceRecord {
  return { t, cpu, src: src ?? eventInfo(event)?.src ?? 'host', event, ...fields };
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
