/**
 * A scenario's expectations as a trace consumer: it declares the events its counts, sequence and
 * absences name, follows them as records stream by, and turns what it saw (with the run's outcome
 * and the checkers' verdicts) into one result per expectation.
 */
import { hex } from '../../shared-abi/addr';
import { isTraceEventName } from '../../shared-abi/trace-catalogue';
import type { CheckerSet } from '../checkers';
import type { AnyTraceRecord, TraceConsumer, TraceEventName } from '../trace/consumer';
import { describeMatch, matches, type Bindings } from '../trace/match';
import type { Expectations, Outcome } from './types';

export interface ExpectationResult {
  readonly what: string;
  readonly ok: boolean;
  readonly detail: string;
}

/** How the run ended, as the expectations judge it. */
export interface RunEnd {
  readonly outcome: Outcome;
  readonly panic: string | undefined;
  readonly endDetail: string | undefined;
  readonly checkers: CheckerSet;
}

export class ExpectationTracker implements TraceConsumer {
  readonly events: ReadonlySet<TraceEventName>;
  private readonly counts: number[];
  private readonly bindings: Bindings = new Map();
  private seqIdx = 0;
  private readonly seqAt: number[] = [];
  private readonly absentHits: ({ t: number; cpu: number } | undefined)[];

  constructor(private readonly ex: Expectations) {
    this.counts = ex.counts.map(() => 0);
    this.absentHits = ex.absent.map(() => undefined);
    // Scenario validation has rejected names the catalogue does not have.
    this.events = new Set([...ex.counts, ...ex.sequence, ...ex.absent].map((m) => m.event).filter(isTraceEventName));
  }

  onRecord(rec: AnyTraceRecord): void {
    const ex = this.ex;
    // Plain loops: this runs for every record of the named events, and closures per record add up.
    for (let i = 0; i < ex.counts.length; i++) {
      if (matches(ex.counts[i]!, rec)) this.counts[i] = (this.counts[i] ?? 0) + 1;
    }
    const next = ex.sequence[this.seqIdx];
    if (next !== undefined && matches(next, rec, this.bindings)) {
      this.seqAt.push(rec.t);
      this.seqIdx++;
    }
    for (let i = 0; i < ex.absent.length; i++) {
      if (this.absentHits[i] === undefined && matches(ex.absent[i]!, rec)) this.absentHits[i] = { t: rec.t, cpu: rec.cpu };
    }
  }

  /** One result per expectation, in the scenario's order: outcome, panic, counts, sequence, absences, checkers. */
  results(end: RunEnd): ExpectationResult[] {
    const { ex, seqIdx, seqAt } = this;
    const { outcome, panic, endDetail, checkers } = end;
    const results: ExpectationResult[] = [];
    const expOutcome = ex.outcome;
    results.push({
      what: `outcome is "${expOutcome}"`,
      ok: outcome === expOutcome,
      detail:
        outcome === expOutcome
          ? outcome
          : `got "${outcome}"${panic !== undefined ? `: ${panic}` : endDetail === undefined ? '' : `: ${endDetail.split('\n')[0] ?? ''}`}`,
    });
    if (ex.panic !== undefined) {
      const ok = panic?.includes(ex.panic) === true;
      results.push({ what: `panic message contains "${ex.panic}"`, ok, detail: panic === undefined ? 'no panic' : `panic: ${panic}` });
    }
    ex.counts.forEach((c, i) => {
      const got = this.counts[i] ?? 0;
      const range = c.min === c.max ? `= ${c.min}` : c.max === Number.MAX_SAFE_INTEGER ? `>= ${c.min}` : c.min === 0 ? `<= ${c.max}` : `in [${c.min}, ${c.max}]`;
      results.push({ what: `count ${describeMatch(c)} ${range}`, ok: got >= c.min && got <= c.max, detail: `got ${got}` });
    });
    if (ex.sequence.length > 0) {
      const ok = seqIdx === ex.sequence.length;
      const missing = ex.sequence[seqIdx];
      const bound = [...this.bindings].map(([k, v]) => `$${k} = ${typeof v === 'number' || typeof v === 'bigint' ? hex(v) : String(v)}`).join(', ');
      results.push({
        what: `sequence of ${ex.sequence.length} events`,
        ok,
        detail: ok
          ? `all matched, last at t=${seqAt[seqAt.length - 1] ?? 0}ns`
          : `step ${seqIdx + 1} never matched: ${missing === undefined ? '?' : describeMatch(missing)}${seqIdx > 0 ? ` (step ${seqIdx} matched at t=${seqAt[seqIdx - 1] ?? 0}ns)` : ''}${bound === '' ? '' : `; ${bound}`}`,
      });
    }
    ex.absent.forEach((m, i) => {
      const hit = this.absentHits[i];
      results.push({ what: `no ${describeMatch(m)}`, ok: hit === undefined, detail: hit === undefined ? 'none' : `one at t=${hit.t}ns on cpu${hit.cpu}` });
    });
    const fired = new Set(checkers.fired());
    for (const name of ex.fire) {
      results.push({ what: `checker ${name} fires`, ok: fired.has(name), detail: fired.has(name) ? 'fired' : 'stayed quiet' });
    }
    const mustPass = ex.pass ?? checkers.enabled.filter((n) => !ex.fire.includes(n));
    for (const name of mustPass) {
      const first = checkers.violations.find((v) => v.checker === name);
      const n = checkers.violations.filter((v) => v.checker === name).length;
      results.push({ what: `checker ${name} stays quiet`, ok: first === undefined, detail: first === undefined ? 'quiet' : `${n} violation${n === 1 ? '' : 's'}, first: ${first.message}` });
    }
    return results;
  }
}
