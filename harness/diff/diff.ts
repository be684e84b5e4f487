/**
 * Trace diff (`apf diff`): two traces aligned per vCPU. Records are compared by what happened
 * (event name and fields, not the time); for each vCPU the first record where the two sides differ
 * is the divergence, shown with a few records of context, and the rest is summarised: how many
 * records follow on each side and which events occur a different number of times. When the events
 * agree but the times do not, the first time difference is reported instead.
 */
import { formatTime } from '../../sim/clock';
import type { ReportRecord } from '../report/html';

/** Records shown before and after a divergence. */
export const CONTEXT = 3;
/** How far past the divergence each side is searched for the point where they agree again. */
export const RESYNC_WINDOW = 64;
/** Rows of a differing stretch shown before the rest is summarised. */
const MAX_CHANGED_ROWS = 8;

export interface Side {
  /** What this side is, e.g. "scenarios/x.json --host linux-4.19" or a trace file name. */
  readonly label: string;
  readonly records: readonly ReportRecord[];
  readonly outcome?: string;
  readonly traceHash?: string;
}

export interface LaneDiff {
  /** The vCPU (-1: records of no particular vCPU). */
  readonly cpu: number;
  readonly a: number;
  readonly b: number;
  /** Index of the first differing record on this lane, or null when the lanes match. */
  readonly divergence: number | null;
  /** When the events match: index of the first record whose time differs, or null. */
  readonly timeShift: number | null;
  /** Context rows: the records' indices on each side (null: none on that side) and whether the pair differs. */
  readonly rows: readonly { readonly i: number; readonly ia: number | null; readonly ib: number | null; readonly a: ReportRecord | null; readonly b: ReportRecord | null; readonly differs: boolean }[];
  /** Where the lanes agree again after the divergence: records A and B skip before matching; null if not within RESYNC_WINDOW. */
  readonly resync: { readonly a: number; readonly b: number } | null;
  /** Events whose count differs after the divergence: [event, count in A, count in B]. */
  readonly counts: readonly (readonly [string, number, number])[];
}

export interface TraceDiff {
  readonly a: Side;
  readonly b: Side;
  readonly lanes: readonly LaneDiff[];
  /** The two traces record the same events in the same order per vCPU (times may differ). */
  readonly same: boolean;
}

/** What a record says, without its time: the comparison key. */
export function recordKey(r: ReportRecord): string {
  return `${r.src} ${r.event} ${JSON.stringify(r.fields)}`;
}

/** The text-trace line without the task column and time: "event: details". */
export function shortLine(r: ReportRecord): string {
  const m = /\]\s+\d+\.\d+: (.*)$/.exec(r.line);
  return m?.[1] ?? `${r.event}: ${JSON.stringify(r.fields)}`;
}

function byCpu(records: readonly ReportRecord[]): Map<number, ReportRecord[]> {
  const m = new Map<number, ReportRecord[]>();
  for (const r of records) {
    const cpu = r.cpu >= 0 ? r.cpu : -1;
    let l = m.get(cpu);
    if (l === undefined) m.set(cpu, (l = []));
    l.push(r);
  }
  return m;
}

function countsFrom(l: readonly ReportRecord[], from: number): Map<string, number> {
  const m = new Map<string, number>();
  for (let i = from; i < l.length; i++) {
    const e = l[i]?.event ?? '';
    m.set(e, (m.get(e) ?? 0) + 1);
  }
  return m;
}

/** The smallest skips (x on A, y on B) after `from` where the two lanes record the same thing again. */
function resyncPoint(ra: readonly ReportRecord[], rb: readonly ReportRecord[], from: number): { a: number; b: number } | null {
  for (let sum = 1; sum <= 2 * RESYNC_WINDOW; sum++) {
    for (let x = Math.max(0, sum - RESYNC_WINDOW); x <= Math.min(sum, RESYNC_WINDOW); x++) {
      const y = sum - x;
      const p = ra[from + x];
      const q = rb[from + y];
      if (p !== undefined && q !== undefined && recordKey(p) === recordKey(q)) return { a: x, b: y };
    }
  }
  return null;
}

export function diffTraces(a: Side, b: Side): TraceDiff {
  const la = byCpu(a.records);
  const lb = byCpu(b.records);
  const cpus = [...new Set([...la.keys(), ...lb.keys()])].sort((x, y) => (x < 0 ? 1 : y < 0 ? -1 : x - y));
  const lanes: LaneDiff[] = cpus.map((cpu) => {
    const ra = la.get(cpu) ?? [];
    const rb = lb.get(cpu) ?? [];
    const n = Math.max(ra.length, rb.length);
    let divergence: number | null = null;
    let timeShift: number | null = null;
    for (let i = 0; i < n; i++) {
      const x = ra[i];
      const y = rb[i];
      if (x === undefined || y === undefined || recordKey(x) !== recordKey(y)) {
        divergence = i;
        break;
      }
      if (timeShift === null && x.t !== y.t) timeShift = i;
    }
    const at = divergence ?? timeShift;
    const rows: LaneDiff['rows'][number][] = [];
    const row = (ia: number | null, ib: number | null, forceDiffers = false): void => {
      const x = ia === null ? null : (ra[ia] ?? null);
      const y = ib === null ? null : (rb[ib] ?? null);
      if (x === null && y === null) return;
      const differs = forceDiffers || x === null || y === null || recordKey(x) !== recordKey(y) || (divergence === null && x.t !== y.t);
      rows.push({ i: ia ?? ib ?? 0, ia: x === null ? null : ia, ib: y === null ? null : ib, a: x, b: y, differs });
    };
    let resync: { a: number; b: number } | null = null;
    if (at !== null) {
      for (let i = Math.max(0, at - CONTEXT); i < at; i++) row(i, i);
      if (divergence === null) for (let i = at; i <= Math.min(n - 1, at + CONTEXT); i++) row(i, i);
      else {
        resync = resyncPoint(ra, rb, divergence);
        const skipA = resync?.a ?? CONTEXT + 1;
        const skipB = resync?.b ?? CONTEXT + 1;
        const changed = Math.max(skipA, skipB, 1);
        for (let k = 0; k < Math.min(changed, MAX_CHANGED_ROWS); k++) row(k < skipA ? divergence + k : null, k < skipB ? divergence + k : null, true);
        if (resync !== null) for (let k = 0; k < CONTEXT; k++) row(divergence + resync.a + k, divergence + resync.b + k);
      }
    }
    const counts: [string, number, number][] = [];
    if (divergence !== null) {
      const ca = countsFrom(ra, divergence);
      const cb = countsFrom(rb, divergence);
      for (const e of [...new Set([...ca.keys(), ...cb.keys()])].sort()) {
        const x = ca.get(e) ?? 0;
        const y = cb.get(e) ?? 0;
        if (x !== y) counts.push([e, x, y]);
      }
    }
    return { cpu, a: ra.length, b: rb.length, divergence, timeShift, rows, counts, resync };
  });
  return { a, b, lanes, same: lanes.every((l) => l.divergence === null) };
}

const laneName = (cpu: number): string => (cpu < 0 ? 'machine (no vCPU)' : `vCPU ${cpu}`);

function cell(r: ReportRecord | null): string {
  return r === null ? '(end of trace)' : `${formatTime(r.t, 0)} ${r.src.padEnd(6)} ${shortLine(r)}`;
}

/** The diff as text lines. */
export function diffLines(d: TraceDiff): string[] {
  const lines: string[] = [`A: ${d.a.label}`, `B: ${d.b.label}`];
  const meta = (s: Side): string => [s.outcome === undefined ? '' : `outcome ${s.outcome}`, s.traceHash === undefined ? '' : `trace ${s.traceHash}`].filter((x) => x !== '').join(', ');
  if (meta(d.a) !== '' || meta(d.b) !== '') lines.push(`A: ${meta(d.a)}; B: ${meta(d.b)}`);
  for (const l of d.lanes) {
    lines.push('');
    if (l.divergence === null && l.timeShift === null) {
      lines.push(`${laneName(l.cpu)}: identical (${l.a} records)`);
      continue;
    }
    if (l.divergence === null) {
      const x = l.rows.find((r) => r.differs);
      lines.push(`${laneName(l.cpu)}: the same ${l.a} events; times differ from record ${l.timeShift ?? 0}${x?.a != null && x.b !== null ? ` (${formatTime(x.a.t, 0)} vs ${formatTime(x.b.t, 0)})` : ''}`);
      continue;
    }
    lines.push(`${laneName(l.cpu)}: ${l.a} vs ${l.b} records; first divergence at record ${l.divergence}`);
    let first = true;
    for (const r of l.rows) {
      const mark = r.differs && first ? '>>' : r.differs ? ' ~' : '  ';
      if (r.differs) first = false;
      if (!r.differs) lines.push(`${mark} ${String(r.i).padStart(6)}    ${cell(r.a)}`);
      else {
        lines.push(`${mark} ${String(r.i).padStart(6)} A: ${r.a === null ? '-' : cell(r.a)}`);
        lines.push(`${' '.repeat(9)} B: ${r.b === null ? '-' : cell(r.b)}`);
      }
    }
    const restA = Math.max(l.a - l.divergence, 0);
    const restB = Math.max(l.b - l.divergence, 0);
    if (l.resync !== null) lines.push(`   in step again after A ${l.resync.a} and B ${l.resync.b} records`);
    lines.push(`   from the divergence on: A ${restA} records, B ${restB}${l.counts.length === 0 ? '; the same events in other places' : `; counts differ: ${l.counts.map(([e, x, y]) => `${e} ${x} vs ${y}`).join(', ')}`}`);
  }
  lines.push('');
  const diverged = d.lanes.filter((l) => l.divergence !== null).map((l) => laneName(l.cpu));
  lines.push(d.same ? 'the traces record the same events per vCPU' : `the traces diverge on ${diverged.join(', ')}`);
  return lines;
}

/** The diff as an HTML section (for htmlReport's `sections`). */
export function diffSection(d: TraceDiff, esc: (s: string) => string): string {
  const out: string[] = ['<section class="diff" id="diff">', '<h2>trace diff</h2>', `<p>A: <code>${esc(d.a.label)}</code><br>B: <code>${esc(d.b.label)}</code></p>`];
  for (const l of d.lanes) {
    const head = `<h3 class="lane-diff" data-cpu="${l.cpu}">${esc(laneName(l.cpu))}: `;
    if (l.divergence === null && l.timeShift === null) {
      out.push(`${head}identical (${l.a} records)</h3>`);
      continue;
    }
    out.push(l.divergence === null ? `${head}the same ${l.a} events; times differ from record ${l.timeShift ?? 0}</h3>` : `${head}${l.a} vs ${l.b} records; first divergence at record ${l.divergence}</h3>`);
    out.push('<table class="diff"><thead><tr><th>#</th><th>A</th><th>B</th></tr></thead><tbody>');
    let first = true;
    for (const r of l.rows) {
      const cls = r.differs && first ? 'divergence' : r.differs ? 'differs' : 'same';
      if (r.differs) first = false;
      const td = (x: ReportRecord | null): string => `<td${x === null ? '' : ` data-line="${esc(x.line)}"`}>${x === null ? '-' : esc(cell(x))}</td>`;
      out.push(`<tr class="${cls}"><td>${r.i}</td>${td(r.a)}${td(r.b)}</tr>`);
    }
    out.push('</tbody></table>');
    if (l.divergence !== null) {
      out.push(
        `<p class="rest">From the divergence on: A ${Math.max(l.a - l.divergence, 0)} records, B ${Math.max(l.b - l.divergence, 0)}${
          l.counts.length === 0 ? '; the same events in other places.' : `; counts differ: ${esc(l.counts.map(([e, x, y]) => `${e} ${x} vs ${y}`).join(', '))}.`
        }</p>`,
      );
    }
  }
  out.push('</section>');
  return out.join('\n');
}
