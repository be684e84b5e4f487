/**
 * The HTML picture of one or more runs (`apf run ... --report FILE`, `apf diff ... --report FILE`):
 * a single self-contained file (inline CSS, inline SVG, a few lines of inline JavaScript for the
 * hover box; nothing is fetched, so it opens offline). Per run:
 *
 *   - the verdict and the replay line;
 *   - per-vCPU swim lanes over virtual time, two rows per vCPU: the host's side (KVM's vCPU thread
 *     and its page-in worker) and the guest's side (the guest kernel and the CPU);
 *   - the protocol steps as arrows between the rows: an injected not-present async #PF and a
 *     page-ready (host to guest), a wake-all (host to guest), the guest's ACK (guest to host);
 *   - the host's artificial halts and the guests' sleeping tasks as intervals;
 *   - checker violations as red marks;
 *   - a tick for every other record; hovering any mark shows its trace record as the text trace
 *     prints it (trace-cmd style, kernel formats where the kernel has one);
 *   - the summary, the expectations and the violations as tables.
 *
 * The lanes are drawn from the records the run kept (at most REPORT_RECORDS per run); a note says
 * so when a long run kept fewer than it emitted.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TraceRecord } from '../../sim/trace';
import type { Violation } from '../checkers';
import type { CliIo } from '../cli/io';
import { UsageError } from '../scenario/overrides';
import { recordJson, type TraceSink } from '../trace/sink';
import { formatTextLine } from '../trace/text';
import type { RunResult } from './result';

/** Records kept per run for the picture. */
export const REPORT_RECORDS = 20_000;

/** A record as the jsonl trace writes it, with its text-trace line. */
export interface ReportRecord {
  readonly t: number;
  readonly cpu: number;
  readonly src: string;
  readonly event: string;
  readonly fields: Readonly<Record<string, unknown>>;
  readonly line: string;
}

export interface CollectedRecords {
  readonly records: readonly ReportRecord[];
  /** Records the run emitted beyond the cap. */
  readonly dropped: number;
}

/** A trace sink that keeps the first `cap` records (and every violation) for the report. */
export class CollectSink implements TraceSink {
  private readonly records: ReportRecord[] = [];
  private dropped = 0;
  constructor(private readonly cap: number) {}
  private keep(rec: TraceRecord): void {
    if (this.records.length >= this.cap && rec.src !== 'check') {
      this.dropped++;
      return;
    }
    const { t, cpu, src, event, ...rest } = recordJson(rec) as { t: number; cpu: number; src: string; event: string } & Record<string, unknown>;
    this.records.push({ t, cpu, src, event, fields: rest, line: formatTextLine(rec) });
  }
  record(rec: TraceRecord): void {
    this.keep(rec);
  }
  violation(v: Violation): void {
    this.keep({ t: v.t, cpu: v.cpu, src: 'check', event: 'violation', checker: v.checker, message: v.message });
  }
  close(): void {
    // Nothing to flush.
  }
  done(): CollectedRecords {
    return { records: this.records, dropped: this.dropped };
  }
}

/** One run in the report. */
export interface ReportRun {
  /** The scenario file as given. */
  readonly file: string;
  /** The verdict line (PASS/FAIL name: reason). */
  readonly verdict: string;
  /** The run's result; null for a trace read from a file (no summary tables then). */
  readonly result: RunResult | null;
  readonly collected: CollectedRecords;
  /** Shown above the run instead of the file (e.g. "A: --host linux-4.19"). */
  readonly label?: string;
}

export interface ReportInput {
  readonly title: string;
  readonly runs: readonly ReportRun[];
  /** Further sections, already HTML (the diff view). */
  readonly sections?: readonly string[];
  /** Rows of a suite's verdict table (status, file, reason). */
  readonly table?: readonly { readonly status: string; readonly file: string; readonly reason: string }[];
}

/** Escapes text for HTML content and attribute values. */
export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&#39;');
}

const WIDTH = 1100;
const LEFT = 130;
const ROW = 26;
const GAP = 14;
const MAX_TICKS = 6000;

const HOST_SRC = new Set(['host', 'worker']);

/** The token of a wake-all (all ones in 32 bits). */
const WAKE_ALL_TOKEN = 0xffffffff;

interface Geometry {
  readonly x: (t: number) => number;
  readonly hostY: (cpu: number) => number;
  readonly guestY: (cpu: number) => number;
  readonly checkY: number;
  readonly height: number;
}

function geometry(cpus: number, endT: number): Geometry {
  const span = Math.max(endT, 1);
  const top = 24;
  const checkY = top + 6;
  const lanesTop = top + ROW;
  return {
    x: (t) => LEFT + (Math.min(Math.max(t, 0), span) / span) * (WIDTH - LEFT - 10),
    hostY: (cpu) => lanesTop + Math.max(cpu, 0) * (2 * ROW + GAP) + ROW / 2,
    guestY: (cpu) => lanesTop + Math.max(cpu, 0) * (2 * ROW + GAP) + ROW + ROW / 2,
    checkY,
    height: lanesTop + cpus * (2 * ROW + GAP) + 22,
  };
}

const f1 = (n: number): string => n.toFixed(1);

function nsText(ns: number): string {
  if (ns >= 1e9) return `${(ns / 1e9).toFixed(3)} s`;
  if (ns >= 1e6) return `${(ns / 1e6).toFixed(3)} ms`;
  if (ns >= 1e3) return `${(ns / 1e3).toFixed(3)} us`;
  return `${ns} ns`;
}

/** The swim lanes of one run, as SVG. */
function lanesSvg(run: ReportRun): string {
  const recs = run.collected.records;
  let cpus = 1;
  for (const r of recs) cpus = Math.max(cpus, r.cpu + 1);
  let endT = Math.max(run.result?.endTime ?? 0, 1);
  for (const r of recs) endT = Math.max(endT, r.t);
  const g = geometry(cpus, endT);
  const parts: string[] = [];
  const mark = (cls: string, rec: ReportRecord, body: string): void => {
    parts.push(`<g class="mark ${cls}" data-event="${esc(rec.event)}" data-cpu="${rec.cpu}" data-line="${esc(rec.line)}">${body}<title>${esc(rec.line)}</title></g>`);
  };

  // Lanes and their labels.
  for (let c = 0; c < cpus; c++) {
    for (const side of ['host', 'guest'] as const) {
      const y = (side === 'host' ? g.hostY(c) : g.guestY(c)) - ROW / 2;
      parts.push(
        `<g class="lane lane-${side}" data-cpu="${c}" data-side="${side}"><rect x="${LEFT}" y="${y}" width="${WIDTH - LEFT - 10}" height="${ROW}" class="lane-bg"/>` +
          `<text x="6" y="${y + ROW / 2 + 4}" class="lane-label">vCPU ${c} ${side === 'host' ? 'host (KVM)' : 'guest'}</text></g>`,
      );
    }
  }
  // Time axis.
  for (let i = 0; i <= 4; i++) {
    const t = (endT * i) / 4;
    parts.push(`<text x="${f1(g.x(t))}" y="14" class="axis" text-anchor="${i === 0 ? 'start' : i === 4 ? 'end' : 'middle'}">${esc(nsText(Math.round(t)))}</text>`);
  }

  // Intervals: artificial halts (host) and sleeping tasks (guest).
  const haltFrom = new Map<number, ReportRecord>();
  const sleepFrom = new Map<string, ReportRecord>();
  const interval = (cls: string, from: ReportRecord, toT: number, y: number, label: string): void => {
    const x0 = g.x(from.t);
    const w = Math.max(g.x(toT) - x0, 2);
    mark(cls, from, `<rect x="${f1(x0)}" y="${y - ROW / 2 + 4}" width="${f1(w)}" height="${ROW - 8}" rx="3"/>${w > 40 ? `<text x="${f1(x0 + 3)}" y="${y + 4}" class="in-label">${esc(label)}</text>` : ''}`);
  };
  for (const r of recs) {
    if (r.event === 'kvm_async_pf_halt') {
      if (!haltFrom.has(r.cpu)) haltFrom.set(r.cpu, r);
    } else if (r.event === 'kvm_async_pf_unhalt') {
      const from = haltFrom.get(r.cpu);
      if (from !== undefined) interval('halt', from, r.t, g.hostY(r.cpu), 'halted');
      haltFrom.delete(r.cpu);
    } else if (r.event === 'kvm_async_pf_task_wait_schedule' || r.event === 'kvm_async_pf_task_wait_halt') {
      sleepFrom.set(String(r.fields.token), r);
    } else if (r.event === 'kvm_async_pf_task_woken') {
      const key = String(r.fields.token);
      const from = sleepFrom.get(key);
      if (from !== undefined) interval('sleep', from, r.t, g.guestY(from.cpu), String(from.fields.task ?? 'task'));
      sleepFrom.delete(key);
    }
  }
  for (const from of haltFrom.values()) interval('halt open', from, endT, g.hostY(from.cpu), 'halted (to the end)');
  for (const from of sleepFrom.values()) interval('sleep open', from, endT, g.guestY(from.cpu), `${String(from.fields.task ?? 'task')} (never woken)`);

  // Ticks for the other records (bounded).
  let ticks = 0;
  for (const r of recs) {
    if (ticks >= MAX_TICKS || r.src === 'check' || r.cpu < 0) continue;
    const y = HOST_SRC.has(r.src) ? g.hostY(r.cpu) : g.guestY(r.cpu);
    mark('tick', r, `<rect class="hit" x="${f1(g.x(r.t) - 1.5)}" y="${y - 5}" width="3" height="10"/><line x1="${f1(g.x(r.t))}" x2="${f1(g.x(r.t))}" y1="${y - 5}" y2="${y + 5}"/>`);
    ticks++;
  }

  // Protocol arrows.
  const arrow = (cls: string, r: ReportRecord, down: boolean): void => {
    const x = g.x(r.t);
    const y0 = down ? g.hostY(r.cpu) + 4 : g.guestY(r.cpu) - 4;
    const y1 = down ? g.guestY(r.cpu) - 6 : g.hostY(r.cpu) + 6;
    // A transparent strip around the line makes the thin arrow easy to hover.
    const hit = `<rect class="hit" x="${f1(x - 3)}" y="${Math.min(y0, y1)}" width="6" height="${Math.abs(y1 - y0)}"/>`;
    mark(`arrow ${cls}`, r, `${hit}<line x1="${f1(x)}" y1="${y0}" x2="${f1(x)}" y2="${y1}" marker-end="url(#head)"/>`);
  };
  for (const r of recs) {
    if (r.cpu < 0) continue;
    switch (r.event) {
      case 'kvm_async_pf_not_present':
        // Not injected: the host halted the vCPU instead (drawn as the halt interval).
        if (r.fields.injected !== false) arrow('not-present', r, true);
        break;
      case 'kvm_async_pf_ready':
        // The wake-all is queued (kvm_async_pf_wakeup_all) and delivered as a page-ready with token ~0.
        arrow(Number(r.fields.token) === WAKE_ALL_TOKEN ? 'wake-all' : 'page-ready', r, true);
        break;
      case 'kvm_async_pf_ack':
        arrow('ack', r, false);
        break;
      default:
        break;
    }
  }

  // Checker violations.
  for (const r of recs) {
    if (r.event !== 'violation') continue;
    const x = g.x(r.t);
    const y = r.cpu >= 0 ? g.guestY(r.cpu) : g.checkY;
    mark('violation', r, `<path d="M${f1(x)} ${y - 9} L${f1(x - 6)} ${y + 3} L${f1(x + 6)} ${y + 3} Z"/>`);
  }

  return (
    `<svg class="lanes" xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${g.height}" viewBox="0 0 ${WIDTH} ${g.height}">` +
    `<defs><marker id="head" viewBox="0 0 10 10" refX="8" refY="5" markerWidth="6" markerHeight="6" orient="auto-start-reverse"><path d="M0 0 L10 5 L0 10 z" fill="context-stroke"/></marker></defs>` +
    parts.join('') +
    `</svg>`
  );
}

function summaryTable(r: RunResult): string {
  const rows: [string, string][] = [
    ['outcome', r.outcome],
    ['virtual time', nsText(r.endTime)],
    ['events', String(r.events)],
    ['trace hash', r.traceHash],
    ['guest', `${r.guest.profile}${Object.keys(r.guest.toggles).length === 0 ? '' : ' ' + JSON.stringify(r.guest.toggles)}`],
    ['host', `${r.host.profile}${Object.keys(r.host.toggles).length === 0 ? '' : ' ' + JSON.stringify(r.host.toggles)}`],
  ];
  for (const [k, v] of Object.entries(r.summary)) if (typeof v === 'number' && k !== 'endT') rows.push([k, String(v)]);
  const waits = r.summary.waits.map((w) => `<tr><td>${esc(JSON.stringify(w))}</td></tr>`).join('');
  return (
    `<table class="summary"><tbody>${rows.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`).join('')}</tbody></table>` +
    (waits === '' ? '' : `<details><summary>task waits</summary><table class="waits"><tbody>${waits}</tbody></table></details>`)
  );
}

function expectationsTable(r: RunResult): string {
  if (r.expectations.length === 0) return '';
  return `<table class="expectations"><thead><tr><th></th><th>expectation</th><th>detail</th></tr></thead><tbody>${r.expectations
    .map((e) => `<tr class="${e.ok ? 'ok' : 'bad'}"><td>${e.ok ? 'ok' : 'FAILED'}</td><td>${esc(e.what)}</td><td>${esc(e.detail)}</td></tr>`)
    .join('')}</tbody></table>`;
}

function violationsTable(r: RunResult): string {
  if (r.violations.length === 0) return '<p class="no-violations">No checker fired.</p>';
  return `<table class="violations"><thead><tr><th>time</th><th>cpu</th><th>checker</th><th>message</th></tr></thead><tbody>${r.violations
    .map((v) => `<tr><td>${esc(nsText(v.t))}</td><td>${v.cpu}</td><td>${esc(v.checker)}</td><td>${esc(v.message)}</td></tr>`)
    .join('')}</tbody></table>`;
}

function runSection(run: ReportRun, i: number): string {
  const r = run.result;
  const ok = r === null ? !run.verdict.startsWith('FAIL') : r.ok;
  const dropped = run.collected.dropped === 0 ? '' : `<p class="note">The picture shows the first ${run.collected.records.length} records; ${run.collected.dropped} later ones are in the trace only.</p>`;
  return [
    `<section class="run ${ok ? 'pass' : 'fail'}" id="run-${i}" data-file="${esc(run.file)}">`,
    `<h2>${esc(run.label ?? run.file)}</h2>`,
    `<p class="verdict ${ok ? 'pass' : 'fail'}">${esc(run.verdict)}</p>`,
    r === null ? '' : `<pre class="replay">${esc(r.replay)}</pre>`,
    `<div class="legend"><span class="k k-not-present">async #PF</span><span class="k k-page-ready">page ready</span><span class="k k-wake-all">wake-all</span><span class="k k-ack">ACK</span><span class="k k-halt">artificial halt</span><span class="k k-sleep">task asleep</span><span class="k k-violation">checker violation</span></div>`,
    `<div class="scroll">${lanesSvg(run)}</div>`,
    dropped,
    r === null ? '' : `<div class="tables"><div><h3>summary</h3>${summaryTable(r)}</div><div><h3>expectations</h3>${expectationsTable(r)}<h3>checkers</h3>${violationsTable(r)}</div></div>`,
    `</section>`,
  ].join('\n');
}

const CSS = `
body{font:14px/1.4 system-ui,sans-serif;margin:16px;color:#222;background:#fff}
h1{font-size:20px} h2{font-size:16px;margin:4px 0} h3{font-size:14px;margin:8px 0 4px}
pre.replay{background:#f4f4f4;padding:6px 8px;overflow-x:auto}
.verdict.pass{color:#1a7f37;font-weight:600} .verdict.fail{color:#cf222e;font-weight:600}
section.run{border-top:2px solid #ddd;padding-top:8px;margin-top:16px}
.scroll{overflow-x:auto}
.lane-bg{fill:#f7f7fa;stroke:#e2e2ea} .lane-guest .lane-bg{fill:#f3f8f3}
.lane-label,.axis{font-size:11px;fill:#555}
.mark{cursor:pointer} .hit{fill:transparent;stroke:none}
.tick line{stroke:#bbb;stroke-width:1}
.arrow line{stroke-width:2} .in-label{font-size:10px}
.arrow.not-present line{stroke:#d1242f} .arrow.page-ready line{stroke:#1a7f37}
.arrow.wake-all line{stroke:#8250df} .arrow.ack line{stroke:#0969da}
.halt rect{fill:#ffb86b;opacity:.8} .sleep rect{fill:#9ecbff;opacity:.8} .open rect{stroke:#d1242f;stroke-dasharray:3 2}
.violation path{fill:#cf222e;stroke:#fff}
.mark:hover line,.mark:hover rect:not(.hit),.mark:hover path{stroke:#000}
.legend .k{display:inline-block;margin-right:12px;padding-left:14px;position:relative;font-size:12px}
.legend .k:before{content:"";position:absolute;left:0;top:4px;width:10px;height:10px}
.k-not-present:before{background:#d1242f}.k-page-ready:before{background:#1a7f37}.k-wake-all:before{background:#8250df}
.k-ack:before{background:#0969da}.k-halt:before{background:#ffb86b}.k-sleep:before{background:#9ecbff}.k-violation:before{background:#cf222e}
table{border-collapse:collapse;margin:4px 0} th,td{border:1px solid #ddd;padding:2px 6px;text-align:left;vertical-align:top;font-size:12px}
tr.bad td,td.FAIL{background:#ffebe9} td.PASS{background:#dafbe1} td.SKIP{background:#fff8c5}
.tables{display:flex;gap:24px;flex-wrap:wrap}
#tip{position:fixed;display:none;max-width:70vw;background:#222;color:#fff;padding:6px 8px;font:12px monospace;white-space:pre-wrap;pointer-events:none;z-index:10;border-radius:4px}
.diff td{font:12px monospace;white-space:pre} .diff tr.divergence td{background:#fff1c2;font-weight:700} .diff tr.differs td{background:#fff8e6}
`;

const JS = `
(function () {
  var tip = document.getElementById('tip');
  document.addEventListener('mouseover', function (e) {
    var el = e.target && e.target.closest ? e.target.closest('[data-line]') : null;
    if (!el) { tip.style.display = 'none'; return; }
    tip.textContent = el.getAttribute('data-line');
    tip.style.display = 'block';
  });
  document.addEventListener('mousemove', function (e) {
    tip.style.left = Math.min(e.clientX + 12, window.innerWidth - 40) + 'px';
    tip.style.top = (e.clientY + 14) + 'px';
  });
})();
`;

/** The whole report as one HTML document. */
export function htmlReport(input: ReportInput): string {
  const table =
    input.table === undefined
      ? ''
      : `<h2>verdicts</h2><table class="verdicts"><thead><tr><th>result</th><th>scenario</th><th>reason</th></tr></thead><tbody>${input.table
          .map((r) => `<tr><td class="${esc(r.status)}">${esc(r.status)}</td><td>${esc(r.file)}</td><td>${esc(r.reason)}</td></tr>`)
          .join('')}</tbody></table>`;
  return [
    '<!DOCTYPE html>',
    '<html lang="en"><head><meta charset="utf-8">',
    `<title>${esc(input.title)}</title>`,
    `<style>${CSS}</style>`,
    '</head><body>',
    `<h1>${esc(input.title)}</h1>`,
    table,
    ...(input.sections ?? []),
    ...input.runs.map(runSection),
    '<div id="tip"></div>',
    `<script>${JS}</script>`,
    '</body></html>',
    '',
  ].join('\n');
}

/** Writes a report file; a path that cannot be written is bad input. */
export function writeReport(io: Pick<CliIo, 'cwd'>, file: string, html: string): void {
  const abs = path.resolve(io.cwd, file);
  try {
    fs.writeFileSync(abs, html);
  } catch (e) {
    throw new UsageError(`--report ${file}: cannot write the report: ${(e as Error).message}`);
  }
}
