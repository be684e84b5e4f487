/**
 * The terminal report of a run: header, notes, per-vCPU timeline, summary, checkers,
 * expectations, verdict and replay line.
 */
import { formatDuration } from '../../sim/clock';
import type { RunReport } from '../runner';
import { formatSummary } from './summary';
import { formatTimeline } from './timeline';
import { ownEntry } from '../util/names';

export interface HumanOptions {
  /** As typed, for the header. */
  readonly fileShown: string;
  readonly verbose?: boolean;
  readonly replay: string;
  readonly traceFile?: string;
  readonly failureFile?: string;
  readonly warnings?: readonly string[];
}

const mib = (bytes: number): string => (bytes % (1024 * 1024) === 0 ? `${bytes / (1024 * 1024)} MiB` : `${bytes} bytes`);

function togglesText(t: Readonly<Record<string, boolean>>): string {
  const e = Object.entries(t);
  return e.length === 0 ? '' : ` (${e.map(([k, v]) => `${k}=${v ? 'on' : 'off'}`).join(', ')})`;
}

/** The header printed before the run (so it shows even if the run takes a while). */
export function headerLines(r: Pick<RunReport, 'scenario'>, o: Pick<HumanOptions, 'fileShown' | 'warnings'>): string[] {
  const s = r.scenario;
  const m = s.machine;
  const lines = [`▶ ${s.name} (${o.fileShown})${s.description === undefined ? '' : ` — ${s.description}`}`];
  lines.push(
    `  machine: ${m.vcpus} vCPU${m.vcpus === 1 ? '' : 's'}, ${mib(m.memoryBytes)}; guest ${m.guest.profile}${togglesText(m.guest.toggles)}; ` +
      `host ${m.host.profile}${togglesText(m.host.toggles as Readonly<Record<string, boolean>>)}; seed ${String(s.seed)}`,
  );
  if (s.regression !== undefined) {
    const r = s.regression;
    lines.push(`  bug: ${r.bug}${r.spec === undefined ? '' : ` (spec ${r.spec})`}`, `  fixed by: ${r.fixedBy}`, `  this run shows: ${r.shows}`);
    const names = Object.keys(r.variants);
    if (s.variant !== undefined) {
      const d = ownEntry(r.variants, s.variant)?.description;
      lines.push(`  variant: ${s.variant}${d === undefined ? '' : ` — ${d}`}`);
    } else if (names.length > 0) {
      lines.push(`  variant: the fixed run; other runs: ${names.map((n) => `--variant ${n}`).join(', ')}`);
    }
  }
  for (const n of s.notes) lines.push(`  │ ${n}`);
  for (const w of o.warnings ?? []) lines.push(`  warning: ${w}`);
  return lines;
}

export function reportLines(r: RunReport, o: HumanOptions): string[] {
  const lines: string[] = [];
  const s = r.scenario;
  const describeLines = r.machine?.describe?.() ?? [];
  for (const d of describeLines) lines.push(`  ${d}`);
  lines.push('');
  const tl = formatTimeline(r.records, {
    cpus: s.machine.vcpus,
    verbose: o.verbose === true,
    ...(o.verbose === true ? { maxLinesPerCpu: Number.MAX_SAFE_INTEGER } : {}),
    ...(r.machine?.pageName === undefined ? {} : { pageName: (g: number) => r.machine?.pageName?.(g) }),
  });
  if (tl.length > 0) {
    lines.push('Timeline (virtual seconds; one section per vCPU):');
    lines.push('  host = KVM on the vCPU\'s thread, worker = its async page-in, guest = the guest kernel, cpu = the hardware, apf = injected by the scenario');
    lines.push(...tl);
    if (r.recordsDropped > 0) lines.push(`  … ${r.recordsDropped} later records not kept for the timeline (see the trace file)`);
    lines.push('');
  }
  lines.push(`Summary (${formatDuration(r.endT)} of virtual time, ${r.events} simulation events):`);
  lines.push(...formatSummary(r.summary, formatDuration));
  lines.push('');

  const byChecker = new Map<string, typeof r.violations>();
  for (const v of r.violations) byChecker.set(v.checker, [...(byChecker.get(v.checker) ?? []), v]);
  lines.push(`Checkers (${r.checkersEnabled.length} enabled):`);
  for (const name of r.checkersEnabled) {
    const vs = byChecker.get(name) ?? [];
    const expectedFire = s.expect.fire.includes(name);
    if (vs.length === 0) {
      lines.push(`  ${expectedFire ? '✗' : '✓'} ${name}: quiet${expectedFire ? ' (expected to fire)' : ''}`);
      continue;
    }
    lines.push(`  ${expectedFire ? '✓' : '✗'} ${name}: ${vs.length} violation${vs.length === 1 ? '' : 's'}${expectedFire ? ' (expected)' : ''}`);
    for (const v of vs.slice(0, 5)) lines.push(`      ${formatDuration(v.t).padStart(9)} cpu${v.cpu < 0 ? '-' : v.cpu}: ${v.message}`);
    if (vs.length > 5) lines.push(`      … ${vs.length - 5} more`);
  }
  lines.push('');
  lines.push('Expectations:');
  for (const e of r.expectations) {
    if (e.what.startsWith('checker ') && e.ok) continue;
    lines.push(`  ${e.ok ? '✓' : '✗'} ${e.what}${e.ok ? '' : ` — ${e.detail}`}`);
  }
  const quiet = r.expectations.filter((e) => e.what.startsWith('checker ') && e.ok).length;
  if (quiet > 0) lines.push(`  ✓ ${quiet} checker expectation${quiet === 1 ? '' : 's'} met`);
  const more = (r.endDetail ?? '').split('\n').slice(1);
  if (more.length > 0) lines.push(...more);
  if (r.error?.stack !== undefined && o.verbose === true) lines.push('', r.error.stack);
  lines.push('');
  lines.push(...verdictLines(r, o));
  return lines;
}

/** The last lines: verdict, replay, files. Also all that --quiet prints. */
export function verdictLines(r: RunReport, o: Pick<HumanOptions, 'replay' | 'traceFile' | 'failureFile'>): string[] {
  const s = r.scenario;
  const lines: string[] = [];
  if (r.ok) {
    lines.push(`PASS ${s.name}: ${s.verdict.pass ?? `outcome "${r.outcome}" as expected; all ${r.expectations.length} expectations hold`}`);
  } else {
    const bad = r.expectations.find((e) => !e.ok);
    lines.push(`FAIL ${s.name}: ${s.verdict.fail ?? (bad === undefined ? r.outcome : `${bad.what} — ${bad.detail}`)}`);
    if (r.error !== undefined) lines.push(`  simulation error: ${r.error.kind}: ${r.error.message}`);
  }
  lines.push(`replay: ${o.replay}`);
  if (o.traceFile !== undefined) lines.push(`trace: ${o.traceFile}`);
  if (o.failureFile !== undefined) lines.push(`failure details: ${o.failureFile}`);
  return lines;
}
