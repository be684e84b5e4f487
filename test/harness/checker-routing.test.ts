/**
 * Checker routing (each record goes only to the checkers whose `events` name it) never changes a
 * verdict: on every shipped scenario and regression variant, and on random record streams over
 * the whole trace vocabulary, the routed checker set reports exactly what the broadcast one does.
 */
import fc from 'fast-check';
import * as path from 'node:path';
import type { Violation } from '../../harness/checkers';
import type { Scenario } from '../../harness/scenario/types';
import type { EventInfo } from '../../harness/trace/vocabulary';
import type { TraceFieldSpec } from '../../shared-abi/trace-catalogue';
import type { TraceRecord, TraceSource } from '../../sim/trace';
import { native } from '../support/native';
import { REPO } from './cli-helpers';

// The scenario runs and the checker replays run outside Jest's sandbox (test/support/native.ts).
const { scenarioFiles } = native<typeof import('../../harness/cli/commands/list')>('harness/cli/commands/list');
const { APF_DROP_EVENTS, CHECKERS, CheckerSet, KERNEL_GONE } = native<typeof import('../../harness/checkers')>('harness/checkers');
const { runScenario } = native<typeof import('../../harness/runner')>('harness/runner');
const { loadScenarioFile } = native<typeof import('../../harness/scenario/load')>('harness/scenario/load');
const { applyVariant, variantNames } = native<typeof import('../../harness/scenario/overrides')>('harness/scenario/overrides');
const { recordProblems, TRACE_EVENTS } = native<typeof import('../../harness/trace/vocabulary')>('harness/trace/vocabulary');

function replay(settings: Scenario['checkers'], records: readonly TraceRecord[], end: { t: number; outcome: string }, routing: boolean): Violation[] {
  const set = new CheckerSet(settings, undefined, routing);
  for (const r of records) set.onRecord(r);
  set.finish(end);
  return set.violations;
}

const cases: Array<[string, Scenario]> = [];
for (const f of scenarioFiles(path.join(REPO, 'scenarios'))) {
  const rel = path.relative(REPO, f);
  const s = loadScenarioFile(f, rel);
  cases.push([rel, s]);
  for (const v of variantNames(s)) cases.push([`${rel} --variant ${v}`, applyVariant(s, v)]);
}

describe('checker routing', () => {
  let firing = 0;

  it.each(cases)('%s: routed and broadcast checkers report the same', (_name, s) => {
    const records: TraceRecord[] = [];
    const r = runScenario(s, { onRecord: (rec) => records.push(rec) });
    const end = { t: r.endT, outcome: r.outcome };
    expect([...new Set(records.flatMap(recordProblems))]).toEqual([]);
    const routed = replay(s.checkers, records, end, true);
    expect(routed).toEqual(replay(s.checkers, records, end, false));
    if (routed.length > 0) firing++;
  });

  it('the comparison is not vacuous: the buggy variants make checkers fire', () => {
    expect(firing).toBeGreaterThanOrEqual(5);
  });

  // That a checker's `case`s name only events it declared is a compile error otherwise (the
  // checker's records are typed by its `events`; test/type-fixtures/bad-checker-undeclared-event.ts).
  it('every checker declares its events, each in the trace catalogue', () => {
    const known = new Set<string>(TRACE_EVENTS.map((e) => e.event));
    for (const def of CHECKERS) {
      expect(def.events.size).toBeGreaterThan(0);
      for (const e of def.events) expect({ checker: def.name, event: e, known: known.has(e) }).toEqual({ checker: def.name, event: e, known: true });
    }
  });

  // Random streams, one checker at a time: records mostly of the events that checker declares (so
  // its state builds up) or any checker acts on (so a missing declaration shows), the rest from
  // the whole catalogue (which routing must be right to drop). Each record is one the catalogue
  // describes: a source of its event, each field of its declared type (closed sets drawn from their
  // values, optional fields sometimes absent). Values come from small pools so tasks, tokens, vCPUs
  // and gfns repeat; time sometimes jumps past the hung-task timeout.
  const small = fc.constantFrom(0, 1, 2, 0x1001, 0x2001, 0xffffffff);
  const strField: Record<string, fc.Arbitrary<string>> = {
    task: fc.constantFrom('t0', 't1'),
    prev: fc.constantFrom('t0', 't1'),
    next: fc.constantFrom('t0', 't1'),
    tokens: fc.constantFrom('0x1001', '0x1001,0x2001', ''),
  };
  const numField: Record<string, fc.Arbitrary<number>> = { count: fc.constantFrom(1, 2) };
  const valueOf = (name: string, f: TraceFieldSpec): fc.Arbitrary<unknown> => {
    const base: fc.Arbitrary<unknown> =
      f.values !== undefined
        ? fc.constantFrom(...f.values)
        : f.kind === 'boolean'
          ? fc.boolean()
          : f.kind === 'bigint'
            ? fc.constantFrom(0n, 0x10001n, 0x10003n)
            : f.kind === 'string'
              ? (strField[name] ?? fc.constantFrom('x', 'y'))
              : (numField[name] ?? small);
    return f.optional === true ? fc.option(base, { nil: undefined, freq: 3 }) : base;
  };
  const recordOf = (info: EventInfo): fc.Arbitrary<{ info: EventInfo; src: TraceSource; fields: Record<string, unknown> }> =>
    fc.record({
      info: fc.constant(info),
      src: fc.constantFrom(...info.sources),
      fields: fc.record(Object.fromEntries(Object.entries(info.spec.fields).map(([k, f]) => [k, valueOf(k, f)]))),
    });
  // Events some checker acts on, and the lifecycle events checkers watch outside their switch.
  const lifecycle = new Set<string>([...KERNEL_GONE, ...APF_DROP_EVENTS]);
  const interesting = new Set<string>(lifecycle);
  for (const def of CHECKERS) for (const e of def.events) interesting.add(e);
  const anyDeclared = TRACE_EVENTS.filter((e) => interesting.has(e.event) && !lifecycle.has(e.event));
  const streamOf = (events: ReadonlySet<string>): fc.Arbitrary<TraceRecord[]> => {
    // Lifecycle events (drops, kernel gone) reset most checkers' state: drawn rarely.
    const own = TRACE_EVENTS.filter((e) => events.has(e.event) && !lifecycle.has(e.event));
    const info = fc.oneof(
      { weight: 6, arbitrary: fc.constantFrom(...(own.length > 0 ? own : TRACE_EVENTS)) },
      { weight: 2, arbitrary: fc.constantFrom(...anyDeclared) },
      { weight: 1, arbitrary: fc.constantFrom(...TRACE_EVENTS.filter((e) => lifecycle.has(e.event))) },
      { weight: 1, arbitrary: fc.constantFrom(...TRACE_EVENTS) },
    );
    const item = fc.record({
      ev: info.chain(recordOf),
      dt: fc.oneof({ weight: 9, arbitrary: fc.integer({ min: 0, max: 5_000 }) }, { weight: 1, arbitrary: fc.constant(200e9) }),
      cpu: fc.integer({ min: -1, max: 1 }),
    });
    return fc.array(item, { minLength: 40, maxLength: 160 }).map((items) => {
      let t = 0;
      return items.map(({ ev, dt, cpu }) => {
        t += dt;
        return { t, cpu, src: ev.src, event: ev.info.event, ...ev.fields };
      });
    });
  };

  it.each(CHECKERS.map((d) => [d.name, d] as const))('%s: random record streams give the same violations routed and broadcast', (name, def) => {
    const { events } = def;
    const only = Object.fromEntries(CHECKERS.map((c) => [c.name, c.name === name]));
    fc.assert(
      fc.property(streamOf(events), fc.constantFrom('completed', 'panic', 'time_budget'), (records, outcome) => {
        const end = { t: (records.at(-1)?.t ?? 0) + 1, outcome };
        expect(records.flatMap(recordProblems)).toEqual([]);
        expect(replay(only, records, end, true)).toEqual(replay(only, records, end, false));
      }),
      { numRuns: 300 },
    );
  });
});
