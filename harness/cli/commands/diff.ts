/**
 * `apf diff A B` (two jsonl trace files) or `apf diff FILE --host a,b | --guest a,b |
 * --variant NAME | --toggle NAME | --seed a,b` (one scenario under two settings): the traces
 * aligned per vCPU, the first divergence of each vCPU with context, the rest summarised
 * (harness/diff/diff.ts). `--report FILE` writes the same as HTML with both runs' swim lanes.
 * Exit 0 when the traces record the same events, 1 when they diverge, 2 on bad input.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { diffLines, diffSection, diffTraces, type Side } from '../../diff/diff';
import { CollectSink, esc, htmlReport, writeReport, type ReportRecord, type ReportRun } from '../../report/html';
import { toResult } from '../../report/result';
import { runScenario } from '../../runner';
import { loadScenarioFile } from '../../scenario/load';
import { applyOverrides, checkProfile, parseToggle, replayLine, UsageError, type Overrides, type ToggleSetting } from '../../scenario/overrides';
import { formatTextLine } from '../../trace/text';
import type { TraceRecord } from '../../../sim/trace';
import { flag, helpText, list, parse, positiveIntArg, str, timeArg, type OptionSpecs, type Parsed } from '../args';
import type { CliDeps } from '../cli';
import type { CliIo } from '../io';
import { HELP_OPTION } from './run';

const OPTIONS: OptionSpecs = {
  host: { type: 'string', value: 'A,B', help: 'run the scenario on host profile A and on B (or one profile for both sides)' },
  guest: { type: 'string', value: 'A,B', help: 'run the scenario with guest profile A and with B (or one profile for both)' },
  variant: { type: 'string', value: 'NAME|A,B', help: 'compare the scenario with its variant NAME (or variant A with variant B)' },
  toggle: { type: 'string', multiple: true, value: 'NAME|NAME=on|off', help: 'NAME alone: A with the toggle on, B with it off; NAME=on|off: set on both sides (repeatable)' },
  seed: { type: 'string', value: 'N|A,B', help: 'seed of both runs, or seed A against seed B' },
  'max-events': { type: 'string', value: 'N', help: 'event budget of each run' },
  'max-time': { type: 'string', value: 'TIME', help: 'virtual-time budget of each run, e.g. 10s' },
  report: { type: 'string', value: 'FILE', help: 'also write the diff and both runs\' swim lanes as a self-contained HTML file' },
  json: { type: 'boolean', help: 'print the diff as JSON' },
  ...HELP_OPTION,
};

export const DIFF_HELP = helpText(
  'apf diff A.jsonl B.jsonl | apf diff FILE (--host A,B | --guest A,B | --variant NAME | --toggle NAME | --seed A,B) [options]',
  [
    'Aligns two traces per vCPU and shows where they first diverge, with a few records of context, and',
    'summarises the rest (records left on each side, events whose counts differ). The traces are two',
    'jsonl trace files (apf run FILE --trace run.jsonl), or one scenario run under two settings.',
    'Exit status: 0 the traces record the same events, 1 they diverge, 2 bad input.',
  ],
  OPTIONS,
  [
    'examples:',
    '  apf diff scenarios/send-always-kernel-fault.json --host linux-4.19,current',
    '  apf diff scenarios/regressions/token-zero-wraparound.json --variant buggy --report diff.html',
    '  apf diff a.jsonl b.jsonl',
  ],
);

/** Reads a jsonl trace file into report records. */
export function readJsonlTrace(file: string, shown: string): ReportRecord[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    throw new UsageError(`apf diff: ${shown}: no such file`);
  }
  const out: ReportRecord[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const l = (lines[i] ?? '').trim();
    if (l === '') continue;
    let o: unknown;
    try {
      o = JSON.parse(l);
    } catch {
      o = undefined;
    }
    const rec = o as { t?: unknown; cpu?: unknown; src?: unknown; event?: unknown } | undefined;
    if (rec === undefined || rec === null || typeof rec !== 'object' || typeof rec.t !== 'number' || typeof rec.cpu !== 'number' || typeof rec.src !== 'string' || typeof rec.event !== 'string') {
      throw new UsageError(`apf diff: ${shown}:${i + 1}: not a jsonl trace record (write one with apf run FILE --trace run.jsonl)`);
    }
    const { t, cpu, src, event, ...fields } = rec as { t: number; cpu: number; src: string; event: string } & Record<string, unknown>;
    // bigints travel as "0x..." strings in jsonl; give them back to the kernel-format renderer.
    const back: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(fields)) back[k] = typeof v === 'string' && /^0x[0-9a-f]+$/.test(v) ? BigInt(v) : v;
    out.push({ t, cpu, src, event, fields, line: formatTextLine({ t, cpu, src, event, ...back } as TraceRecord) });
  }
  return out;
}

function pair(p: Parsed, name: string): [string, string] | undefined {
  const v = str(p, name);
  if (v === undefined) return undefined;
  const items = v.split(',').map((x) => x.trim());
  if (items.length === 1 && items[0] !== '') return [items[0] ?? '', items[0] ?? ''];
  if (items.length !== 2 || items.some((x) => x === '')) throw new UsageError(`apf diff: --${name} ${v}: expected one value or two separated by a comma (A,B)`);
  return [items[0] ?? '', items[1] ?? ''];
}

function seedOf(v: string): number | string {
  return /^\d+$/.test(v) && Number.isSafeInteger(Number(v)) ? Number(v) : v;
}

/** The two sides' overrides from the options; throws when nothing differs. */
function sides(p: Parsed, file: string): [Overrides, Overrides] {
  const host = pair(p, 'host');
  const guest = pair(p, 'guest');
  const seed = pair(p, 'seed');
  const variantArg = str(p, 'variant');
  const variant: [string | undefined, string | undefined] | undefined =
    variantArg === undefined ? undefined : variantArg.includes(',') ? (pair(p, 'variant') as [string, string]) : [undefined, variantArg];
  for (const h of host ?? []) checkProfile('host', h);
  for (const g of guest ?? []) checkProfile('guest', g);
  const shared: ToggleSetting[] = [];
  const varied: string[] = [];
  for (const t of list(p, 'toggle')) {
    if (t.includes('=')) shared.push(parseToggle(t));
    else {
      parseToggle(`${t}=on`);
      varied.push(t);
    }
  }
  const maxEvents = positiveIntArg('diff', p, 'max-events');
  const maxTime = timeArg('diff', p, 'max-time');
  const differs = (x: readonly [unknown, unknown] | undefined): boolean => x !== undefined && x[0] !== x[1];
  if (!differs(host) && !differs(guest) && !differs(seed) && !differs(variant) && varied.length === 0) {
    throw new UsageError(`apf diff: ${file}: say what differs between the two runs: --host A,B, --guest A,B, --variant NAME, --toggle NAME or --seed A,B`);
  }
  const side = (k: 0 | 1): Overrides => {
    const v = variant?.[k];
    const h = host?.[k];
    const g = guest?.[k];
    const s = seed?.[k];
    return {
      ...(v === undefined ? {} : { variant: v }),
      ...(h === undefined ? {} : { host: h }),
      ...(g === undefined ? {} : { guest: g }),
      ...(s === undefined ? {} : { seed: seedOf(s) }),
      toggles: [...shared, ...varied.map((t) => parseToggle(`${t}=${k === 0 ? 'on' : 'off'}`))],
      ...(maxEvents === undefined ? {} : { maxEvents }),
      ...(maxTime === undefined ? {} : { maxTime }),
    };
  };
  return [side(0), side(1)];
}

const RECORD_CAP = 500_000;

function runSide(file: string, shown: string, o: Overrides, deps: CliDeps): { side: Side; run: ReportRun } {
  const loaded = loadScenarioFile(file, shown);
  const s = applyOverrides({ ...loaded, file: shown }, o);
  const replay = replayLine(shown, s, o);
  const sink = new CollectSink(RECORD_CAP);
  const report = runScenario(s, { sinks: [sink], ...(deps.machine === undefined ? {} : { machine: deps.machine }) });
  const collected = sink.done();
  const result = toResult(report, { runId: '-', replay, trace: null, failureFile: null });
  const verdict = `${report.ok ? 'PASS' : 'FAIL'} ${s.name}: outcome ${report.outcome}`;
  return {
    side: { label: replay, records: collected.records, outcome: report.outcome, traceHash: report.traceHash },
    run: { file: shown, label: replay, verdict, result, collected },
  };
}

export function diffCommand(argv: readonly string[], io: CliIo, deps: CliDeps): number {
  const p = parse('diff', argv, OPTIONS, 2);
  if (flag(p, 'help')) {
    io.out(DIFF_HELP);
    return 0;
  }
  const [first, second] = p.positionals;
  if (first === undefined) throw new UsageError('apf diff: expected two trace files (A.jsonl B.jsonl) or one scenario file with two settings; see apf diff --help');
  let a: Side;
  let b: Side;
  let runs: ReportRun[];
  if (second !== undefined) {
    for (const o of ['host', 'guest', 'variant', 'seed', 'toggle', 'max-events', 'max-time']) {
      if (p.values[o] !== undefined) throw new UsageError(`apf diff: --${o} is for one scenario run twice; two trace files are compared as they are`);
    }
    const ra = readJsonlTrace(path.resolve(io.cwd, first), first);
    const rb = readJsonlTrace(path.resolve(io.cwd, second), second);
    a = { label: first, records: ra };
    b = { label: second, records: rb };
    runs = [
      { file: first, label: `A: ${first}`, verdict: `trace ${first}: ${ra.length} records`, result: null, collected: { records: ra, dropped: 0 } },
      { file: second, label: `B: ${second}`, verdict: `trace ${second}: ${rb.length} records`, result: null, collected: { records: rb, dropped: 0 } },
    ];
  } else {
    const [oa, ob] = sides(p, first);
    const abs = path.resolve(io.cwd, first);
    const x = runSide(abs, first, oa, deps);
    const y = runSide(abs, first, ob, deps);
    a = x.side;
    b = y.side;
    runs = [
      { ...x.run, label: `A: ${x.run.label ?? first}` },
      { ...y.run, label: `B: ${y.run.label ?? first}` },
    ];
  }
  const d = diffTraces(a, b);
  if (flag(p, 'json')) {
    const lanes = d.lanes.map((l) => ({ ...l, rows: l.rows.map((r) => ({ i: r.i, differs: r.differs, a: r.a?.line ?? null, b: r.b?.line ?? null })) }));
    io.out(JSON.stringify({ format: 'apf-diff/1', a: { label: a.label, records: a.records.length, outcome: a.outcome ?? null, traceHash: a.traceHash ?? null }, b: { label: b.label, records: b.records.length, outcome: b.outcome ?? null, traceHash: b.traceHash ?? null }, same: d.same, lanes }, null, 2) + '\n');
  } else io.out(diffLines(d).join('\n') + '\n');
  const report = str(p, 'report');
  if (report !== undefined) writeReport(io, report, htmlReport({ title: `apf diff ${argv.filter((w) => w !== '--report' && w !== report).join(' ')}`, runs, sections: [diffSection(d, esc)] }));
  return d.same ? 0 : 1;
}
