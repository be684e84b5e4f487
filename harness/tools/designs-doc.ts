/**
 * Generates the comparison table of docs/designs.md: every async-PF design
 * (shared-abi/designs.ts) × every context scenario, each cell read from the trace of an in-process
 * run of that scenario with `machine.design` set. test/designs/table.test.ts checks that the
 * checked-in table is what this produces.
 *
 *   npx ts-node --transpile-only harness/tools/designs-doc.ts           # rewrite the table in docs/designs.md
 *   npx ts-node --transpile-only harness/tools/designs-doc.ts --check   # exit 1 if it is stale
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DESIGN_NAMES, KVM_PV_REASON_PAGE_ERROR, type DesignName } from '../../shared-abi/designs';
import type { TraceRecord } from '../../sim/trace';
import { PACKAGE_ROOT } from '../cli/io';
import { runScenario, type RunReport } from '../runner';
import { loadScenarioFile } from '../scenario/load';
import type { Scenario } from '../scenario/types';

export const DESIGNS_DOC = path.join(PACKAGE_ROOT, 'docs', 'designs.md');
export const BEGIN = '<!-- BEGIN GENERATED TABLE (harness/tools/designs-doc.ts) -->';
export const END = '<!-- END GENERATED TABLE -->';

/** The contexts (columns of the issue): a scenario each, or the reason it is not modelled. */
export const CONTEXTS: readonly { readonly id: string; readonly what: string; readonly file: string | null; readonly reason?: string }[] = [
  { id: 'user', what: 'user-mode fault', file: 'scenarios/page-failure/user-sigbus.json' },
  { id: 'kernel-fixup', what: 'kernel fault with fixup (copy_from_user)', file: 'scenarios/page-failure/kernel-fixup.json' },
  { id: 'kernel-nofixup', what: 'kernel fault without fixup', file: 'scenarios/page-failure/kernel-panic.json' },
  { id: 'irqs-off', what: 'IRQs disabled 10 s after not-present (Vivek Goyal)', file: 'scenarios/page-failure/vivek-irqs-off-10s.json' },
  {
    id: 'pf-irqs-off',
    what: 'an unrelated #PF with IRQs disabled while the page-ready is pending',
    file: 'scenarios/designs/unrelated-pf-irqs-off.json',
  },
  { id: 'nmi', what: 'NMI arriving mid-delivery', file: 'scenarios/designs/nmi-mid-delivery.json' },
  { id: 'nested', what: 'nested guest (L2 touches the failing memory)', file: 'scenarios/designs/nested-l2-failing.json' },
];

/** The task whose access hits the failing page in every context scenario. */
const VICTIM = 'victim';

export interface Cell {
  readonly design: DesignName;
  readonly context: string;
  readonly outcome: string;
  /** When the guest kernel first heard of the completion (page-ready, #MC, #PF), after the failed page-in. */
  readonly notified: string;
  /** What the victim task sees, and when relative to the host's failed page-in. */
  readonly sees: string;
  /** Whether the error or a wake-up was lost in this run. */
  readonly lost: string;
  /** The guest entry points that handled the failure (what a guest of this design must implement). */
  readonly guest: string;
}

function fmtDelay(ns: number): string {
  if (ns >= 1e9) return `${(ns / 1e9).toFixed(1)} s`;
  if (ns >= 1e6) return `${(ns / 1e6).toFixed(1)} ms`;
  return `${Math.round(ns / 1e3)} µs`;
}

const ENTRY_WORDS: Readonly<Record<string, string>> = {
  pf_error_code: '#PF: error code 0xaaaa = not present',
  page_ready_error_flag: 'page-ready handler reads the error flag',
  mce_token: '#MC handler: action-optional error names a token → wake it',
  ve: '#VE handler (token in the info word)',
};

/** Reads one cell from a run's records. */
export function cellOf(design: DesignName, context: string, report: RunReport, records: readonly TraceRecord[]): Cell {
  const failedAt = records.find((r) => r.event === 'host_page_fault_in' && r.ok === false)?.t;
  const own = (r: TraceRecord): boolean => r.task === VICTIM;
  const sig = records.find((r) => r.event === 'signal' && own(r));
  const fix = records.find((r) => r.event === 'uaccess_fixup' && own(r));
  const panic = records.find((r) => r.event === 'panic');
  const l2oops = records.find((r) => r.event === 'nested_l2_oops');
  let sees: string;
  let seenAt: number | undefined;
  if (sig !== undefined) {
    sees = String(sig.sig);
    seenAt = sig.t;
  } else if (fix !== undefined) {
    sees = 'copy returns -EFAULT';
    seenAt = fix.t;
  } else if (l2oops !== undefined) {
    sees = `L2 oops "${String(l2oops.message)}"`;
    seenAt = l2oops.t;
  } else if (panic !== undefined) {
    sees = `guest panic "${String(panic.message)}"`;
    seenAt = panic.t;
  } else {
    const exit = records.find((r) => r.event === 'task_exit' && own(r));
    sees = exit === undefined ? 'never runs again' : `nothing (exits ${String(exit.code)})`;
  }
  if (seenAt !== undefined && failedAt !== undefined) sees += `, ${fmtDelay(seenAt - failedAt)} after the failed page-in`;
  for (const r of records) if (r.event === 'signal' && !own(r)) sees += `; also ${String(r.sig)} to task ${String(r.task)}`;
  const NOTICE = new Set(['sysvec_kvm_asyncpf_interrupt', 'machine_check', 'apf_design_entry', 'signal', 'uaccess_fixup', 'panic', 'unexpected_exception']);
  const notice = failedAt === undefined ? undefined : records.find((r) => r.src === 'guest' && r.t >= failedAt && NOTICE.has(r.event) && (r.task === undefined || own(r) || r.event === 'machine_check'));
  const notified = notice === undefined || failedAt === undefined ? 'never' : `${fmtDelay(notice.t - failedAt)} (${notice.event})`;
  // A panic counts as the error reaching the guest only when the failed access itself oopsed.
  const ownPanic = panic !== undefined && records.some((r) => (r.event === 'machine_check' && r.action === 'panic') || (r.event === 'unexpected_exception' && r.cpl === 0));
  const errorSeen = sig !== undefined || fix !== undefined || ownPanic || l2oops !== undefined;
  const checkers = report.violations.map((v) => v.checker);
  const lostWake = checkers.includes('apf-answered') || records.some((r) => r.event === 'hung_task') || report.outcome === 'deadlock' || report.outcome === 'budget';
  const lost = [failedAt !== undefined && !errorSeen ? (panic !== undefined ? 'error lost (the guest panicked elsewhere)' : 'error lost') : '', lostWake ? 'wake-up lost' : ''].filter((x) => x !== '').join(', ') || 'no';
  const guest: string[] = [];
  for (const r of records) {
    if (r.src !== 'guest') continue;
    let w: string | undefined;
    if (r.event === 'apf_design_entry') w = ENTRY_WORDS[String(r.entry)];
    else if (r.event === 'machine_check') w = `#MC handler: action-required error → ${String(r.action)}`;
    else if (r.event === 'apf_page_error') w = `woken waiter checks the token's error → ${String(r.action)}`;
    else if (r.event === 'signal' && r.sig === 'SIGBUS' && r.error_code !== undefined) w = '#PF on a present user page → SIGBUS';
    else if (r.event === 'uaccess_fixup' && !records.some((x) => x.event === 'machine_check')) w = '#PF exception-table fixup';
    else if (r.event === 'kvm_read_and_reset_apf_flags' && (Number(r.flags) & KVM_PV_REASON_PAGE_ERROR) !== 0) w = `#PF entry reads flags 0x${Number(r.flags).toString(16)} (the error flag) as an async #PF`;
    else if (r.event === 'nested_l2_oops') w = `L2 oops on vector ${String(r.vector)} (no #MC forwarding through L1 in the model)`;
    else if (r.event === 'unexpected_exception') w = `oops on vector ${String(r.vector)}`;
    if (w !== undefined && !guest.includes(w)) guest.push(w);
  }
  return { design, context, outcome: report.outcome, notified, sees, lost, guest: guest.join('; ') || '—' };
}

export function withDesign(s: Scenario, design: DesignName): Scenario {
  return { ...s, machine: { ...s.machine, design } };
}

/** Runs every design × context. */
export function runCells(): Cell[] {
  const cells: Cell[] = [];
  for (const c of CONTEXTS) {
    if (c.file === null) continue;
    const base = loadScenarioFile(path.join(PACKAGE_ROOT, c.file), c.file);
    for (const d of DESIGN_NAMES) {
      const records: TraceRecord[] = [];
      const report = runScenario(withDesign(base, d), { onRecord: (r) => records.push(r) });
      cells.push(cellOf(d, c.id, report, records));
    }
  }
  return cells;
}

const esc = (s: string): string => s.replace(/\|/g, '\\|');

/** The generated markdown block (between BEGIN and END). */
export function tableMarkdown(cells: readonly Cell[] = runCells()): string {
  const out: string[] = [BEGIN, ''];
  for (const c of CONTEXTS) {
    out.push(`### ${c.what}`, '');
    if (c.file === null) {
      out.push(`${c.reason ?? 'not modelled'}.`, '');
      continue;
    }
    out.push(`Scenario: [${path.basename(c.file)}](../${c.file})`, '');
    out.push('| design | outcome | guest kernel hears of it | what the task sees | error or wake-up lost | what the guest had to handle |', '|---|---|---|---|---|---|');
    for (const cell of cells.filter((x) => x.context === c.id)) {
      out.push(`| \`${cell.design}\` | ${cell.outcome} | ${cell.notified} | ${esc(cell.sees)} | ${cell.lost} | ${esc(cell.guest)} |`);
    }
    out.push('');
  }
  out.push(END);
  return out.join('\n');
}

/** The document with its table replaced. */
export function renderDoc(current: string, table: string): string {
  const a = current.indexOf(BEGIN);
  const b = current.indexOf(END);
  if (a < 0 || b < a) throw new Error(`${DESIGNS_DOC}: no generated-table markers`);
  return current.slice(0, a) + table + current.slice(b + END.length);
}

function main(argv: readonly string[]): number {
  const doc = fs.readFileSync(DESIGNS_DOC, 'utf8');
  const next = renderDoc(doc, tableMarkdown());
  if (argv.includes('--check')) {
    if (next !== doc) {
      process.stderr.write('docs/designs.md: the table is stale; run npx ts-node --transpile-only harness/tools/designs-doc.ts\n');
      return 1;
    }
    return 0;
  }
  fs.writeFileSync(DESIGNS_DOC, next);
  return 0;
}

if (require.main === module) process.exitCode = main(process.argv.slice(2));
