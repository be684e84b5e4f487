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
import { fmtDuration } from '../util/units';
import type { Expectations, LatencyExpectation, Outcome } from './types';

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

/** A `from` record waiting for its `to`: when and where it was, and the captures it bound. */
interface OpenPair {
  readonly t: number;
  readonly cpu: number;
  readonly bindings: Bindings;
}

/** What one latency expectation measured. */
interface LatencyState {
  readonly open: OpenPair[];
  pairs: number;
  shortest: number;
  longest: number;
  /** The first pair outside [min, max], and how many were. */
  firstBad: { readonly from: OpenPair; readonly t: number; readonly cpu: number; readonly ns: number } | undefined;
  bad: number;
}

const showBindings = (b: Bindings): string =>
  [...b].map(([k, v]) => `$${k} = ${typeof v === 'number' || typeof v === 'bigint' ? hex(v) : String(v)}`).join(', ');

/** "<= 1ms", ">= 200us" or "in [200us, 1ms]". */
function boundsText(l: LatencyExpectation): string {
  if (l.min !== undefined && l.max !== undefined) return `in [${fmtDuration(l.min)}, ${fmtDuration(l.max)}]`;
  return l.max !== undefined ? `<= ${fmtDuration(l.max)}` : `>= ${fmtDuration(l.min ?? 0)}`;
}

export class ExpectationTracker implements TraceConsumer {
  readonly events: ReadonlySet<TraceEventName>;
  private readonly counts: number[];
  private readonly bindings: Bindings = new Map();
  private seqIdx = 0;
  private readonly seqAt: number[] = [];
  private readonly absentHits: ({ t: number; cpu: number } | undefined)[];
  private readonly latency: readonly LatencyExpectation[];
  private readonly lat: LatencyState[];

  constructor(private readonly ex: Expectations) {
    this.counts = ex.counts.map(() => 0);
    this.absentHits = ex.absent.map(() => undefined);
    this.latency = ex.latency ?? [];
    this.lat = this.latency.map(() => ({ open: [], pairs: 0, shortest: Infinity, longest: 0, firstBad: undefined, bad: 0 }));
    const latencyMatches = this.latency.flatMap((l) => [l.from, l.to]);
    // Scenario validation has rejected names the catalogue does not have.
    this.events = new Set([...ex.counts, ...ex.sequence, ...ex.absent, ...latencyMatches].map((m) => m.event).filter(isTraceEventName));
  }

  /** A latency's `to` closes the oldest open pair it matches (with that pair's captures); then a `from` opens one. */
  private onLatency(i: number, rec: AnyTraceRecord): void {
    const l = this.latency[i]!;
    const st = this.lat[i]!;
    for (let j = 0; j < st.open.length; j++) {
      const p = st.open[j]!;
      if (!matches(l.to, rec, new Map(p.bindings))) continue;
      st.open.splice(j, 1);
      const ns = rec.t - p.t;
      st.pairs++;
      st.shortest = Math.min(st.shortest, ns);
      st.longest = Math.max(st.longest, ns);
      if ((l.min !== undefined && ns < l.min) || (l.max !== undefined && ns > l.max)) {
        st.bad++;
        st.firstBad ??= { from: p, t: rec.t, cpu: rec.cpu, ns };
      }
      break;
    }
    const b: Bindings = new Map();
    if (matches(l.from, rec, b)) st.open.push({ t: rec.t, cpu: rec.cpu, bindings: b });
  }

  onRecord(rec: AnyTraceRecord): void {
    const ex = this.ex;
    // Plain loops: this runs for every record of the named events, and closures per record add up.
    for (let i = 0; i < ex.counts.length; i++) {
      const c = ex.counts[i]!;
      if (c.window !== undefined && (rec.t < c.window.from || rec.t >= c.window.to)) continue;
      if (matches(c, rec)) this.counts[i] = (this.counts[i] ?? 0) + 1;
    }
    for (let i = 0; i < this.latency.length; i++) this.onLatency(i, rec);
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
      const window =
        c.window === undefined ? '' : ` in [${fmtDuration(c.window.from)}, ${c.window.to === Number.MAX_SAFE_INTEGER ? 'end' : fmtDuration(c.window.to)})`;
      results.push({ what: `count ${describeMatch(c)}${window} ${range}`, ok: got >= c.min && got <= c.max, detail: `got ${got}` });
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
    this.latency.forEach((l, i) => results.push(this.latencyResult(l, this.lat[i]!)));
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

  private latencyResult(l: LatencyExpectation, st: LatencyState): ExpectationResult {
    const from = describeMatch(l.from);
    const to = describeMatch(l.to);
    const what = `latency ${from} -> ${to} ${boundsText(l)}`;
    const at = (p: { t: number; cpu: number }): string => `t=${fmtDuration(p.t)} on cpu${p.cpu}`;
    const bound = (b: Bindings): string => (b.size === 0 ? '' : ` (${showBindings(b)})`);
    if (st.firstBad !== undefined) {
      const f = st.firstBad;
      const limit = l.max !== undefined && f.ns > l.max ? `> max ${fmtDuration(l.max)}` : `< min ${fmtDuration(l.min ?? 0)}`;
      return {
        what,
        ok: false,
        detail:
          `${st.bad} of ${st.pairs} pair${st.pairs === 1 ? '' : 's'} out of bounds; first: ${l.from.event} at ${at(f.from)}${bound(f.from.bindings)} -> ` +
          `${l.to.event} at ${at(f)}: ${fmtDuration(f.ns)} ${limit}`,
      };
    }
    const open = st.open[0];
    if (l.max !== undefined && open !== undefined) {
      return {
        what,
        ok: false,
        detail: `${l.from.event} at ${at(open)}${bound(open.bindings)} was never followed by ${to} (longer than max ${fmtDuration(l.max)})${st.open.length > 1 ? `; ${st.open.length - 1} more like it` : ''}`,
      };
    }
    if (st.pairs === 0) return { what, ok: false, detail: `no pair measured: no ${from} was followed by a matching ${to}` };
    return { what, ok: true, detail: `${st.pairs} pair${st.pairs === 1 ? '' : 's'}: shortest ${fmtDuration(st.shortest)}, longest ${fmtDuration(st.longest)}` };
  }
}
