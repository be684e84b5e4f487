/**
 * The scenario table of docs/nested.md, generated from scenarios/nested/*.json: scenario, the
 * configuration that matters, the outcome the scenario expects, and why (its verdict).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Scenario } from '../../harness/scenario/types';
import type { L2UserOp } from '../../guest/nested/program';

export const TABLE_BEGIN = '<!-- BEGIN nested-scenarios: generated from scenarios/nested by test/nested/scenarios.test.ts (APF_UPDATE_DOCS=1 npx jest test/nested rewrites it) -->';
export const TABLE_END = '<!-- END nested-scenarios -->';

/** L2's CPL at its first access: 0 when it happens inside a syscall. */
function firstAccessCpl(ops: readonly L2UserOp[]): 0 | 3 | undefined {
  for (const op of ops) {
    if (op.op === 'touch') return 3;
    if (op.op === 'syscall' && op.body.some((k) => k.op === 'touch')) return 0;
    if (op.op === 'loop') {
      const c = firstAccessCpl(op.body);
      if (c !== undefined) return c;
    }
  }
  return undefined;
}

/** The configuration of a nested scenario in a few words. */
export function configOf(s: Scenario): string {
  const m = s.machine;
  const migrate = s.events.map((e) => e.action).find((a) => a.do === 'nested_migrate');
  if (migrate !== undefined && migrate.do === 'nested_migrate') {
    const parts = [`restore=${migrate.restore ?? 'two_step'}`, `fetch=${migrate.fetch ?? 'listener'}`, `listener=${migrate.listener ?? 'before_set_nested_state'}`];
    if (migrate.fetchFails === true) parts.push('source fails');
    if (migrate.l2Memory === true) parts.push('L2 memory remote too');
    return parts.join(', ');
  }
  const bit2 = (m.cpuid === 'auto' || m.cpuid.includes('ASYNC_PF_VMEXIT')) && m.guest.toggles.pf_vmexit !== false;
  const parts = [`bit 2 ${bit2 ? 'on' : 'off'}`];
  const l2 = m.nested?.l2 ?? [];
  const cpl = l2[0] === undefined ? undefined : firstAccessCpl(l2[0].program);
  if (cpl !== undefined) parts.push(`L2 CPL ${cpl}`);
  parts.push(`SEND_ALWAYS ${m.guest.toggles.send_always === true ? 'on' : 'off'}`);
  for (const [k, v] of Object.entries(m.host.toggles)) parts.push(`host ${k} ${v ? 'on' : 'off'}`);
  for (const [k, v] of Object.entries(m.guest.toggles)) if (k !== 'send_always' && k !== 'pf_vmexit') parts.push(`guest ${k} ${v ? 'on' : 'off'}`);
  if (l2.length > 1) parts.push(`${l2.length} L2 guests on one vCPU`);
  if (m.nested?.exitHandlingNs !== undefined) parts.push(`L1 exit handling ${m.nested.exitHandlingNs / 1000}us`);
  if (s.events.some((e) => e.action.do === 'nmi')) parts.push('NMI right after the #PF VM-exit');
  return parts.join(', ');
}

export interface TableRow {
  readonly file: string;
  readonly name: string;
  readonly config: string;
  readonly outcome: string;
  readonly why: string;
}

export function rowOf(file: string, s: Scenario): TableRow {
  return { file: path.basename(file), name: s.name, config: configOf(s), outcome: s.expect.outcome, why: s.verdict.pass ?? '' };
}

const cell = (t: string): string => t.replace(/\|/g, '\\|');

export function renderTable(rows: readonly TableRow[]): string {
  const lines = [
    TABLE_BEGIN,
    '',
    '| scenario | config | outcome | why |',
    '|---|---|---|---|',
    ...rows.map((r) => `| [${cell(r.name.replace(/^nested\//, ''))}](../scenarios/nested/${r.file}) | ${cell(r.config)} | ${r.outcome} | ${cell(r.why)} |`),
    '',
    TABLE_END,
  ];
  return lines.join('\n');
}

/** The generated block as it stands in `doc` (undefined when the markers are missing). */
export function tableIn(doc: string): string | undefined {
  const a = doc.indexOf(TABLE_BEGIN);
  const b = doc.indexOf(TABLE_END);
  if (a < 0 || b < a) return undefined;
  return doc.slice(a, b + TABLE_END.length);
}

/** Replace the generated block of the file at `docPath` with `table`. */
export function writeTable(docPath: string, table: string): void {
  const doc = fs.readFileSync(docPath, 'utf8');
  const old = tableIn(doc);
  if (old === undefined) throw new Error(`${docPath}: no generated-table markers`);
  fs.writeFileSync(docPath, doc.replace(old, table));
}
