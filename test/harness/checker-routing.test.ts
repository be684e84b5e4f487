/**
 * Checker routing (each record goes only to the checkers whose `events` name it) never changes a
 * verdict: on every shipped scenario and regression variant, and on random record streams over
 * the whole trace vocabulary, the routed checker set reports exactly what the broadcast one does.
 */
import fc from 'fast-check';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { scenarioFiles } from '../../harness/cli/commands/list';
import { APF_DROP_EVENTS, CHECKERS, CheckerSet, KERNEL_GONE, type Violation } from '../../harness/checkers';
import { runScenario } from '../../harness/runner';
import { loadScenarioFile } from '../../harness/scenario/load';
import { applyVariant, variantNames } from '../../harness/scenario/overrides';
import type { Scenario } from '../../harness/scenario/types';
import { TRACE_EVENTS } from '../../harness/trace/vocabulary';
import type { TraceRecord } from '../../sim/trace';
import { REPO } from './cli-helpers';

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
    const routed = replay(s.checkers, records, end, true);
    expect(routed).toEqual(replay(s.checkers, records, end, false));
    if (routed.length > 0) firing++;
  });

  it('the comparison is not vacuous: the buggy variants make checkers fire', () => {
    expect(firing).toBeGreaterThanOrEqual(5);
  });

  it.each(CHECKERS.map((d) => [d.name] as const))('%s: every event its source dispatches on is declared', (name) => {
    // A static cross-check of the declaration against the code: every vocabulary event named in a
    // `case` or compared with `rec.event`, and the whole group behind KERNEL_GONE / apfDrop().
    const src = fs.readFileSync(path.join(REPO, 'harness/checkers', `${name}.ts`), 'utf8');
    const known = new Set<string>(TRACE_EVENTS.map((e) => e.event));
    const used = new Set<string>();
    for (const m of src.matchAll(/case '([a-z0-9_]+)'|rec\.event [!=]== '([a-z0-9_]+)'/g)) {
      const e = m[1] ?? m[2]!;
      if (known.has(e)) used.add(e);
    }
    if (src.includes('KERNEL_GONE.has(')) for (const e of KERNEL_GONE) used.add(e);
    if (src.includes('apfDrop(')) for (const e of APF_DROP_EVENTS) used.add(e);
    const declared = CHECKERS.find((d) => d.name === name)!.create({}, () => undefined).events;
    expect(used.size).toBeGreaterThan(0);
    expect([...used].filter((e) => !declared?.has(e))).toEqual([]);
  });

  it('every checker declares its events, and every declared event is in the trace vocabulary', () => {
    const known = new Set<string>(TRACE_EVENTS.map((e) => e.event));
    for (const def of CHECKERS) {
      const c = def.create({}, () => undefined);
      expect(c.events).toBeDefined();
      for (const e of c.events ?? []) expect({ checker: def.name, event: e, known: known.has(e) }).toEqual({ checker: def.name, event: e, known: true });
    }
  });

  // Random streams, one checker at a time: records mostly of the events that checker declares (so
  // its state builds up) or any checker acts on (so a missing declaration shows), the rest from
  // the whole vocabulary (which routing must be right to drop). Values come from small pools so tasks, tokens, vCPUs and gfns repeat; time sometimes
  // jumps past the hung-task timeout.
  const small = fc.constantFrom(0, 1, 2, 0x1001, 0x2001, 0xffffffff);
  const byField: Record<string, fc.Arbitrary<unknown>> = {
    task: fc.constantFrom('t0', 't1'),
    count: fc.constantFrom(1, 2),
    tokens: fc.constantFrom('0x1001', '0x1001,0x2001', ''),
    src: fc.constantFrom('host', 'guest'),
  };
  const anyValue = fc.oneof(
    { weight: 6, arbitrary: small },
    { weight: 2, arbitrary: fc.boolean() },
    { weight: 2, arbitrary: fc.constantFrom('flags', 'token', 'reason', 'x', 'page_fault', 'lru') },
  );
  // Events some checker acts on, and the lifecycle events checkers watch outside their switch.
  const lifecycle = new Set<string>([...KERNEL_GONE, ...APF_DROP_EVENTS]);
  const interesting = new Set<string>(lifecycle);
  for (const def of CHECKERS) for (const e of def.create({}, () => undefined).events ?? []) interesting.add(e);
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
      info,
      otherSrc: fc.option(fc.constantFrom<TraceRecord['src']>('host', 'guest', 'cpu', 'worker'), { freq: 4 }),
      dt: fc.oneof({ weight: 9, arbitrary: fc.integer({ min: 0, max: 5_000 }) }, { weight: 1, arbitrary: fc.constant(200e9) }),
      cpu: fc.integer({ min: -1, max: 1 }),
      values: fc.array(anyValue, { minLength: 8, maxLength: 8 }),
      special: fc.record(Object.fromEntries(Object.entries(byField).map(([k, v]) => [k, v]))),
    });
    return fc.array(item, { minLength: 40, maxLength: 160 }).map((items) => {
      let t = 0;
      return items.map(({ info, otherSrc, dt, cpu, values, special }) => {
        t += dt;
        const rec: TraceRecord = { t, cpu, src: otherSrc ?? info.src, event: info.event };
        info.fields.forEach((f, i) => (rec[f] = f in special ? (special as Record<string, unknown>)[f] : values[i % values.length]));
        return rec;
      });
    });
  };

  it.each(CHECKERS.map((d) => [d.name, d] as const))('%s: random record streams give the same violations routed and broadcast', (name, def) => {
    const events = def.create({}, () => undefined).events ?? new Set<string>();
    const only = Object.fromEntries(CHECKERS.map((c) => [c.name, c.name === name]));
    fc.assert(
      fc.property(streamOf(events), fc.constantFrom('completed', 'panic', 'time_budget'), (records, outcome) => {
        const end = { t: (records.at(-1)?.t ?? 0) + 1, outcome };
        expect(replay(only, records, end, true)).toEqual(replay(only, records, end, false));
      }),
      { numRuns: 300 },
    );
  });
});
