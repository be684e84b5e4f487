/**
 * `apf compare FILE --guest a,b --host x,y [--vary TOGGLE ...]`: one scenario over a matrix of
 * guest profiles × host profiles (× on/off of each varied toggle), one line per combination:
 * outcome, async #PFs, page-readies, artificial halts, synchronous faults, the longest wait,
 * which checkers fired, and whether the file's expectations hold. This is the SEND_ALWAYS
 * regression view. Exit 0 once the table is printed (the cells are the answer), 2 on bad input.
 */
import * as path from 'node:path';
import { formatDuration } from '../../../sim/clock';
import { guestProfileNames, hostProfileNames } from '../../registry';
import { runScenario, type RunReport } from '../../runner';
import { loadScenarioFile } from '../../scenario/load';
import { applyOverrides, checkProfile, parseToggle, replayLine, UsageError, type Overrides, type ToggleSetting } from '../../scenario/overrides';
import { flag, helpText, list, parse, str, type OptionSpecs } from '../args';
import type { CliDeps } from '../cli';
import { shownPath, type CliIo } from '../io';
import { COMMON_OPTIONS, HELP_OPTION, overridesFrom } from './run';

const OPTIONS: OptionSpecs = {
  ...COMMON_OPTIONS,
  guest: { type: 'string', value: 'P1,P2|all', help: 'guest profiles to compare (default: the scenario\'s)' },
  host: { type: 'string', value: 'P1,P2|all', help: 'host profiles to compare (default: the scenario\'s)' },
  vary: { type: 'string', multiple: true, value: 'TOGGLE', help: 'also run each combination with this toggle on and off (repeatable)' },
  ...HELP_OPTION,
};

export const COMPARE_HELP = helpText(
  'apf compare FILE --guest P1,P2 --host P1,P2 [--vary TOGGLE ...] [options]',
  [
    'Runs one scenario for every guest × host profile combination (and on/off of each --vary toggle) and',
    'prints one line per combination: outcome, async #PFs, page-readies, halts, sync faults, longest wait,',
    'checkers that fired and whether the file\'s expectations hold. --toggle applies to every cell.',
  ],
  OPTIONS,
  ['example:', '  apf compare scenarios/send-always-kernel-fault.json --guest linux-5.2,linux-5.2-user-only,current --host linux-4.19,current'],
);

function profiles(side: 'guest' | 'host', arg: string | undefined, fallback: string): string[] {
  if (arg === undefined) return [fallback];
  const all = side === 'guest' ? guestProfileNames() : (hostProfileNames() as readonly string[]);
  if (arg === 'all') return [...all];
  const names = arg.split(',').map((x) => x.trim()).filter((x) => x !== '');
  if (names.length === 0) throw new UsageError(`apf compare: --${side} needs at least one profile`);
  for (const n of names) checkProfile(side, n);
  return names;
}

export interface CompareCell {
  readonly guest: string;
  readonly host: string;
  readonly varied: Readonly<Record<string, boolean>>;
  readonly outcome: string;
  readonly ok: boolean;
  readonly panic: string | null;
  readonly asyncPfInjected: number;
  readonly pageReadyDelivered: number;
  readonly artificialHalts: number;
  readonly syncFaults: number;
  readonly maxWaitNs: number;
  readonly fired: Readonly<Record<string, number>>;
  readonly traceHash: string;
  readonly replay: string;
}

function cellOf(guest: string, host: string, varied: Record<string, boolean>, r: RunReport, replay: string): CompareCell {
  const fired: Record<string, number> = {};
  for (const v of r.violations) fired[v.checker] = (fired[v.checker] ?? 0) + 1;
  return {
    guest,
    host,
    varied,
    outcome: r.outcome,
    ok: r.ok,
    panic: r.panic ?? null,
    asyncPfInjected: r.summary.asyncPfInjected,
    pageReadyDelivered: r.summary.pageReadyDelivered,
    artificialHalts: r.summary.artificialHalts,
    syncFaults: r.summary.syncFaults,
    maxWaitNs: Math.max(0, ...r.summary.waits.map((w) => w.maxNs)),
    fired,
    traceHash: r.traceHash,
    replay,
  };
}

/** A few words for one cell of the matrix. */
function cellWord(c: CompareCell | undefined): string {
  if (c === undefined) return '';
  const what: string[] = [];
  if (c.panic !== null) what.push('PANIC');
  else if (c.outcome !== 'completed') what.push(c.outcome);
  if (c.asyncPfInjected > 0) what.push('async');
  if (c.artificialHalts > 0) what.push('halt');
  if (c.syncFaults > 0) what.push('sync');
  if (what.length === 0) what.push('-');
  return what.join('+') + (Object.keys(c.fired).length > 0 ? '!' : '') + (c.ok ? '' : ' ✗');
}

export function compareCommand(argv: readonly string[], io: CliIo, deps: CliDeps): number {
  const p = parse('compare', argv, OPTIONS, 1);
  if (flag(p, 'help')) {
    io.out(COMPARE_HELP);
    return 0;
  }
  const given = p.positionals[0];
  if (given === undefined) throw new UsageError('apf compare: which scenario? (apf compare FILE --guest ... --host ...)');
  const base = overridesFrom('compare', { values: { ...p.values, guest: undefined, host: undefined }, positionals: [] });
  const loaded = loadScenarioFile(path.resolve(io.cwd, given), given);
  const guests = profiles('guest', str(p, 'guest'), loaded.machine.guest.profile);
  const hosts = profiles('host', str(p, 'host'), loaded.machine.host.profile);
  const varyNames = list(p, 'vary');
  const vary = varyNames.map((n) => parseToggle(`${n}=on`));
  let combos: ToggleSetting[][] = [[]];
  for (const v of vary) combos = combos.flatMap((c) => [[...c, { ...v, value: true, text: v.text }], [...c, { ...v, value: false, text: v.text.replace(/=on$/, '=off') }]]);

  const cells: CompareCell[] = [];
  for (const guest of guests) {
    for (const combo of combos) {
      for (const host of hosts) {
        const o: Overrides = { ...base, guest, host, toggles: [...(base.toggles ?? []), ...combo] };
        const s = applyOverrides({ ...loaded, file: given }, o);
        const r = runScenario(s, deps.machine === undefined ? {} : { machine: deps.machine });
        const varied: Record<string, boolean> = {};
        for (const t of combo) varied[t.name] = t.value;
        cells.push(cellOf(guest, host, varied, r, replayLine(shownPath(io.cwd, given), s, o)));
      }
    }
  }

  if (flag(p, 'json')) {
    io.out(JSON.stringify({ scenario: loaded.name, file: given, cells }, null, 2) + '\n');
    return 0;
  }
  const header = ['guest', 'host', ...varyNames, 'outcome', 'async #PF', 'ready', 'halts', 'sync', 'max wait', 'checkers fired', 'expect'];
  const rows = cells.map((c) => [
    c.guest,
    c.host,
    ...varyNames.map((n) => (c.varied[n] === true ? 'on' : 'off')),
    c.outcome,
    String(c.asyncPfInjected),
    String(c.pageReadyDelivered),
    String(c.artificialHalts),
    String(c.syncFaults),
    c.maxWaitNs === 0 ? '-' : formatDuration(c.maxWaitNs),
    Object.entries(c.fired).map(([k, n]) => `${k}×${n}`).join(' ') || '-',
    c.ok ? '✓' : '✗',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const fmt = (r: readonly string[]): string => r.map((x, i) => x.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  const lines = [`${loaded.name} (${given}): ${cells.length} run${cells.length === 1 ? '' : 's'}`, '', fmt(header), fmt(widths.map((w) => '─'.repeat(w))), ...rows.map(fmt)];
  // The same runs as a guest x host grid: what a kernel-mode or user-mode fault turned into.
  const rowKey = (c: CompareCell): string => [c.guest, ...varyNames.map((n) => `${n}=${c.varied[n] === true ? 'on' : 'off'}`)].join(' ');
  const rowKeys = [...new Set(cells.map(rowKey))];
  const grid = [['', ...hosts], ...rowKeys.map((rk) => [rk, ...hosts.map((h) => cellWord(cells.find((c) => rowKey(c) === rk && c.host === h)))])];
  const gw = hosts.map((_, i) => Math.max(...grid.map((r) => (r[i + 1] ?? '').length)));
  const rw = Math.max(...grid.map((r) => (r[0] ?? '').length));
  lines.push('', 'matrix (rows: guest; columns: host; async = async #PF injected, halt = artificial halt, sync = synchronous fault, ! = a checker fired, ✗ = expectations not met):');
  for (const r of grid) lines.push('  ' + [(r[0] ?? '').padEnd(rw), ...r.slice(1).map((x, i) => x.padEnd(gw[i] ?? 0))].join('  ').trimEnd());
  const panics = cells.filter((c) => c.panic !== null);
  if (panics.length > 0) {
    lines.push('', 'panics:');
    for (const c of panics) lines.push(`  ${c.guest} on ${c.host}: ${c.panic ?? ''}`);
  }
  const fixed = (base.toggles ?? []).map((t) => ` --toggle ${t.text}`).join('');
  lines.push('', `replay a line: apf run ${given} --seed ${String(base.seed ?? loaded.seed)} --guest GUEST --host HOST${fixed}${varyNames.map((n) => ` --toggle ${n}=on|off`).join('')} (--json lists each run's replay line)`);
  io.out(lines.join('\n') + '\n');
  return 0;
}
