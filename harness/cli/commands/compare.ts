/**
 * `apf compare FILE... --guest a,b --host x,y [--vary TOGGLE ...] [--markdown]`: scenarios over a
 * matrix of guest profiles × host profiles (× on/off of each varied toggle), one line per
 * combination: outcome, async #PFs, page-readies, artificial halts, synchronous faults, the longest
 * guest-side wait, how long the vCPU stood still (artificial halts and synchronous faults), which
 * checkers fired, and whether the file's expectations hold. This is the SEND_ALWAYS regression view.
 *
 * Several files make a third axis, the context: each file is the same situation in another place
 * (e.g. a kernel-mode fault with preemption disabled, under a spinlock, in the idle task...).
 * A profile may carry toggles, `linux-4.19+honour_send_always=off`, so a column can be "this host
 * with that behaviour". Exit 0 once the table is printed (the cells are the answer), 2 on bad input.
 */
import * as path from 'node:path';
import { formatDuration } from '../../../sim/clock';
import { PAGE_SIZE } from '../../../shared-abi/addr';
import { eventSet, type EventsIn, type TraceConsumer, type TraceRecordOf } from '../../trace/consumer';
import { guestProfileNames, hostProfileNames } from '../../registry';
import { runScenario, type RunReport } from '../../runner';
import { loadScenarioFile, ScenarioError } from '../../scenario/load';
import { applyOverrides, checkProfile, parseToggle, replayLine, UsageError, type Overrides, type ToggleSetting } from '../../scenario/overrides';
import type { Scenario } from '../../scenario/types';
import { flag, helpText, list, parse, str, type OptionSpecs } from '../args';
import type { CliDeps } from '../cli';
import { shownPath, type CliIo } from '../io';
import { loadHandlers, type LoadedHandlers } from '../../handlers-file';
import { checkHandlersApply, COMMON_OPTIONS, handlersMachine, HELP_OPTION, overridesFrom } from './run';

const OPTIONS: OptionSpecs = {
  ...COMMON_OPTIONS,
  guest: { type: 'string', value: 'P1,P2|all', help: 'guest profiles to compare (default: the scenario\'s); P+TOGGLE=on|off adds guest toggles to one' },
  host: { type: 'string', value: 'P1,P2|all', help: 'host profiles to compare (default: the scenario\'s); P+TOGGLE=on|off adds host toggles to one' },
  vary: { type: 'string', multiple: true, value: 'TOGGLE', help: 'also run each combination with this toggle on and off (repeatable)' },
  handlers: { type: 'string', value: 'H1,H2', help: 'guest handler sets to compare side by side: "stock" (the profile\'s own), a .ts/.js module exporting `handlers`, or "canary:NAME" (docs/handlers.md)' },
  markdown: { type: 'boolean', help: 'print the matrix and the runs as Markdown tables (for docs)' },
  ...HELP_OPTION,
};

export const COMPARE_HELP = helpText(
  'apf compare FILE... --guest P1,P2 --host P1,P2 [--vary TOGGLE ...] [options]',
  [
    'Runs scenarios for every guest × host profile combination (and on/off of each --vary toggle) and',
    'prints one line per combination: outcome, async #PFs, page-readies, halts, sync faults, longest guest wait,',
    'time the vCPU stood still, checkers that fired and whether the file\'s expectations hold. --toggle applies',
    'to every cell. Several FILEs add a context axis (one file per context). A profile can carry toggles:',
    '--host linux-4.19,linux-4.19+honour_send_always=off.',
  ],
  OPTIONS,
  [
    'examples:',
    '  apf compare scenarios/send-always-kernel-fault.json --guest linux-5.2,linux-5.2-user-only,current --host linux-4.19,current',
    '  apf compare scenarios/default.json --handlers stock,canary:no-ack',
  ],
);

/** One entry of --guest or --host: a profile and the toggles it carries. */
export interface AxisEntry {
  /** As written on the command line, e.g. "linux-4.19+honour_send_always=off". */
  readonly label: string;
  readonly profile: string;
  readonly toggles: readonly ToggleSetting[];
}

/** Parses `P1,P2+TOGGLE=off,...` (or `all`) for one side; `fallback` is the scenario's own profile. */
export function axisEntries(side: 'guest' | 'host', arg: string | undefined, fallback: string): AxisEntry[] {
  if (arg === undefined) return [{ label: fallback, profile: fallback, toggles: [] }];
  const all = side === 'guest' ? guestProfileNames() : (hostProfileNames() as readonly string[]);
  if (arg === 'all') return all.map((p) => ({ label: p, profile: p, toggles: [] }));
  const items = arg.split(',').map((x) => x.trim()).filter((x) => x !== '');
  if (items.length === 0) throw new UsageError(`apf compare: --${side} needs at least one profile`);
  return items.map((label) => {
    const [profile = '', ...toggles] = label.split('+');
    checkProfile(side, profile);
    return { label, profile, toggles: toggles.map((t) => parseToggle(t.startsWith(`${side}.`) ? t : `${side}.${t}`)) };
  });
}

export interface CompareCell {
  /** The scenario's name (the context when several files are compared). */
  readonly context: string;
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
  /** How the guest waited for async #PFs: parked the task ('schedule'), halted the CPU ('halt'), both, or not at all. */
  readonly guestWait: 'schedule' | 'halt' | 'both' | null;
  /** Time a vCPU stood still on the host for a fault: artificial halts plus synchronous fault-ins. */
  readonly stalledNs: number;
  readonly fired: Readonly<Record<string, number>>;
  readonly traceHash: string;
  readonly replay: string;
}

const STALL_EVENTS = eventSet(['kvm_page_fault', 'kvm_async_pf_not_present', 'kvm_async_pf_sync', 'kvm_async_pf_halt', 'kvm_async_pf_unhalt', 'kvm_async_pf_task_wait_schedule', 'kvm_async_pf_task_wait_halt']);

/** Watches one run's records for the guest's wait kind and the time vCPUs stood still. */
class StallMeter implements TraceConsumer<EventsIn<typeof STALL_EVENTS>> {
  readonly events = STALL_EVENTS;
  stalledNs = 0;
  private readonly haltSince = new Map<number, number>();
  private readonly faultSince = new Map<string, number>();
  waitSchedule = false;
  waitHalt = false;

  onRecord(r: TraceRecordOf<EventsIn<typeof STALL_EVENTS>>): void {
    switch (r.event) {
      case 'kvm_page_fault': {
        const key = `${r.cpu}:${Math.floor(r.fault_address / PAGE_SIZE)}`;
        if (!this.faultSince.has(key)) this.faultSince.set(key, r.t);
        return;
      }
      case 'kvm_async_pf_not_present':
        this.faultSince.delete(`${r.cpu}:${Math.floor(r.gva / PAGE_SIZE)}`);
        return;
      case 'kvm_async_pf_sync': {
        const key = `${r.cpu}:${r.gfn}`;
        const since = this.faultSince.get(key);
        if (since !== undefined) this.stalledNs += r.t - since;
        this.faultSince.delete(key);
        return;
      }
      case 'kvm_async_pf_halt':
        if (!this.haltSince.has(r.cpu)) this.haltSince.set(r.cpu, r.t);
        return;
      case 'kvm_async_pf_unhalt': {
        const since = this.haltSince.get(r.cpu);
        if (since !== undefined) this.stalledNs += r.t - since;
        this.haltSince.delete(r.cpu);
        return;
      }
      case 'kvm_async_pf_task_wait_schedule':
        this.waitSchedule = true;
        return;
      case 'kvm_async_pf_task_wait_halt':
        this.waitHalt = true;
        return;
    }
  }

  finish(endT: number): void {
    for (const since of this.haltSince.values()) this.stalledNs += endT - since;
    this.haltSince.clear();
  }
}

function cellOf(context: string, guest: string, host: string, varied: Record<string, boolean>, r: RunReport, m: StallMeter, replay: string): CompareCell {
  const fired: Record<string, number> = {};
  for (const v of r.violations) fired[v.checker] = (fired[v.checker] ?? 0) + 1;
  return {
    context,
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
    guestWait: m.waitSchedule && m.waitHalt ? 'both' : m.waitSchedule ? 'schedule' : m.waitHalt ? 'halt' : null,
    stalledNs: m.stalledNs,
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
  if (c.asyncPfInjected > 0) what.push(c.guestWait === 'halt' ? 'async(hlt)' : 'async');
  if (c.artificialHalts > 0) what.push('halt');
  if (c.syncFaults > 0) what.push('sync');
  if (what.length === 0) what.push('-');
  return what.join('+') + (Object.keys(c.fired).length > 0 ? '!' : '') + (c.ok ? '' : ' ✗');
}

/** A duration rounded for tables: ns below 1 µs, whole µs below 1 ms, else ms with two decimals. */
export function shortDuration(ns: number): string {
  if (ns < 1000) return `${ns} ns`;
  if (ns < 1_000_000) return `${Math.round(ns / 1000)} µs`;
  return `${(ns / 1_000_000).toFixed(2)} ms`;
}

/** A Markdown cell of the matrix: what the fault turned into, how long it took, what fired. */
function markdownCell(c: CompareCell | undefined): string {
  if (c === undefined) return '';
  const parts: string[] = [];
  if (c.panic !== null) parts.push('**PANIC**');
  else if (c.outcome !== 'completed') parts.push(`**${c.outcome}**`);
  if (c.asyncPfInjected > 0 && c.panic === null) {
    const how = c.guestWait === 'halt' ? 'guest HLTs' : c.guestWait === 'schedule' ? 'task sleeps' : c.guestWait === 'both' ? 'sleeps/HLTs' : 'no wait';
    parts.push(`async #PF, ${how}${c.maxWaitNs > 0 ? ` ${shortDuration(c.maxWaitNs)}` : ''}`);
  } else if (c.asyncPfInjected > 0) {
    parts.push('async #PF');
  }
  if (c.artificialHalts > 0) parts.push(`halt ${shortDuration(c.stalledNs)}`);
  else if (c.syncFaults > 0) parts.push(`sync ${shortDuration(c.stalledNs)}`);
  const fired = Object.keys(c.fired);
  if (fired.length > 0) parts.push(`⚑ ${fired.join(', ')}`);
  return parts.length === 0 ? '-' : parts.join('; ');
}

/** Most runs one `apf compare` makes. */
export const MAX_COMPARE_RUNS = 1024;

interface Context {
  readonly given: string;
  readonly scenario: Scenario;
}

export function compareCommand(argv: readonly string[], io: CliIo, deps: CliDeps): number {
  const p = parse('compare', argv, OPTIONS, Number.MAX_SAFE_INTEGER);
  if (flag(p, 'help')) {
    io.out(COMPARE_HELP);
    return 0;
  }
  if (p.positionals.length === 0) throw new UsageError('apf compare: which scenario? (apf compare FILE... --guest ... --host ...)');
  const base = overridesFrom('compare', { values: { ...p.values, guest: undefined, host: undefined }, positionals: [] });
  // The matrix is bounded before any file is read or any run starts: each --vary doubles it.
  const runs = p.positionals.length * axisEntries('guest', str(p, 'guest'), 'current').length * axisEntries('host', str(p, 'host'), 'current').length * 2 ** list(p, 'vary').length;
  if (runs > MAX_COMPARE_RUNS) {
    throw new UsageError(`apf compare: ${runs > 1e9 ? 'over a billion' : runs} runs (files × guests × hosts × 2^--vary); the limit is ${MAX_COMPARE_RUNS}: compare fewer profiles or vary fewer toggles`);
  }
  const contexts: Context[] = p.positionals.map((given) => ({ given, scenario: loadScenarioFile(path.resolve(io.cwd, given), given) }));
  const first = contexts[0]!;
  const guests = axisEntries('guest', str(p, 'guest'), first.scenario.machine.guest.profile);
  const hosts = axisEntries('host', str(p, 'host'), first.scenario.machine.host.profile);
  const varyNames = list(p, 'vary');
  const vary = varyNames.map((n) => {
    try {
      return parseToggle(`${n}=on`);
    } catch (e) {
      // The message names --toggle NAME=on; the user wrote --vary NAME.
      if (e instanceof UsageError) throw new UsageError(`apf compare: --vary ${n}: ${e.message.replace(/^--toggle [^:]*: /, '').replace(/^the value must be on or off.*/, 'expected a toggle name (without =on/off)')}`);
      throw e;
    }
  });
  let combos: ToggleSetting[][] = [[]];
  for (const v of vary) combos = combos.flatMap((c) => [[...c, { ...v, value: true, text: v.text }], [...c, { ...v, value: false, text: v.text.replace(/=on$/, '=off') }]]);
  const multi = contexts.length > 1;
  // Handler sets are a row axis, shown with the guest: "current", "current+handlers=my.ts".
  const handlerSets = (str(p, 'handlers') ?? '').split(',').map((x) => x.trim()).filter((x) => x !== '').map((spec) => loadHandlers('compare', spec, io.cwd));
  if (str(p, 'handlers') !== undefined && handlerSets.length === 0) throw new UsageError('apf compare: --handlers needs at least one handler set (stock, a module file, canary:NAME)');
  const handlerAxis: (LoadedHandlers | undefined)[] = handlerSets.length === 0 ? [undefined] : handlerSets;

  const cells: CompareCell[] = [];
  for (const ctx of contexts) {
    for (const guest of guests) {
      for (const hs of handlerAxis) {
        const guestLabel = hs === undefined ? guest.label : `${guest.label}+handlers=${hs.spec}`;
        const machine = deps.machine ?? (hs === undefined ? undefined : handlersMachine(hs.handlers));
        for (const combo of combos) {
          for (const host of hosts) {
            const o: Overrides = { ...base, guest: guest.profile, host: host.profile, toggles: [...(base.toggles ?? []), ...guest.toggles, ...host.toggles, ...combo], ...(hs === undefined ? {} : { handlers: hs.spec }) };
            const s = applyOverrides({ ...ctx.scenario, file: ctx.given }, o);
            checkHandlersApply('compare', hs, s, ctx.given);
            const meter = new StallMeter();
            const r = runScenario(s, { ...(machine === undefined ? {} : { machine }), consumers: [meter] });
            // A machine that cannot be built is the file's mistake, whichever the profiles: bad input.
            if (r.outcome === 'bad_machine') throw new ScenarioError(ctx.given, '', r.endDetail ?? 'the machine cannot be built from this scenario');
            meter.finish(r.endT);
            const varied: Record<string, boolean> = {};
            for (const t of combo) varied[t.name] = t.value;
            cells.push(cellOf(ctx.scenario.name, guestLabel, host.label, varied, r, meter, replayLine(shownPath(io.cwd, ctx.given), s, o)));
          }
        }
      }
    }
  }

  if (flag(p, 'json')) {
    io.out(JSON.stringify({ scenario: first.scenario.name, file: first.given, contexts: contexts.map((c) => ({ name: c.scenario.name, file: c.given })), cells }, null, 2) + '\n');
    return 0;
  }
  if (flag(p, 'markdown')) {
    io.out(compareMarkdown(cells, varyNames) + '\n');
    return 0;
  }
  const rowKey = (c: CompareCell): string => [...(multi ? [c.context] : []), c.guest, ...varyNames.map((n) => `${n}=${c.varied[n] === true ? 'on' : 'off'}`)].join(' ');
  const rowKeys = [...new Set(cells.map(rowKey))];
  const hostLabels = hosts.map((h) => h.label);
  const panics = cells.filter((c) => c.panic !== null);

  const header = [...(multi ? ['context'] : []), 'guest', 'host', ...varyNames, 'outcome', 'async #PF', 'ready', 'halts', 'sync', 'max wait', 'stalled', 'checkers fired', 'expect'];
  const rows = cells.map((c) => [
    ...(multi ? [c.context] : []),
    c.guest,
    c.host,
    ...varyNames.map((n) => (c.varied[n] === true ? 'on' : 'off')),
    c.outcome,
    String(c.asyncPfInjected),
    String(c.pageReadyDelivered),
    String(c.artificialHalts),
    String(c.syncFaults),
    c.maxWaitNs === 0 ? '-' : formatDuration(c.maxWaitNs),
    c.stalledNs === 0 ? '-' : formatDuration(c.stalledNs),
    Object.entries(c.fired).map(([k, n]) => `${k}×${n}`).join(' ') || '-',
    c.ok ? '✓' : '✗',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const fmt = (r: readonly string[]): string => r.map((x, i) => x.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  const title = multi ? `${contexts.length} scenarios (${contexts.map((c) => c.scenario.name).join(', ')})` : `${first.scenario.name} (${first.given})`;
  const lines = [`${title}: ${cells.length} run${cells.length === 1 ? '' : 's'}`, '', fmt(header), fmt(widths.map((w) => '─'.repeat(w))), ...rows.map(fmt)];
  // The same runs as a grid: what the faults turned into.
  const grid = [['', ...hostLabels], ...rowKeys.map((rk) => [rk, ...hostLabels.map((h) => cellWord(cells.find((c) => rowKey(c) === rk && c.host === h)))])];
  const gw = hostLabels.map((_, i) => Math.max(...grid.map((r) => (r[i + 1] ?? '').length)));
  const rw = Math.max(...grid.map((r) => (r[0] ?? '').length));
  lines.push(
    '',
    `matrix (rows: ${multi ? 'context, ' : ''}guest; columns: host; async = async #PF injected, (hlt) = the guest halted instead of scheduling, halt = artificial halt, sync = synchronous fault, ! = a checker fired, ✗ = expectations not met):`,
  );
  for (const r of grid) lines.push('  ' + [(r[0] ?? '').padEnd(rw), ...r.slice(1).map((x, i) => x.padEnd(gw[i] ?? 0))].join('  ').trimEnd());
  if (panics.length > 0) {
    lines.push('', 'panics:');
    for (const c of panics) lines.push(`  ${multi ? `${c.context}: ` : ''}${c.guest} on ${c.host}: ${c.panic ?? ''}`);
  }
  const fixed = (base.toggles ?? []).map((t) => ` --toggle ${t.text}`).join('');
  const file = multi ? 'FILE' : first.given;
  lines.push('', `replay a line: npx apf run ${file} --seed ${String(base.seed ?? first.scenario.seed)} --guest GUEST --host HOST${fixed}${varyNames.map((n) => ` --toggle ${n}=on|off`).join('')}${handlerSets.length === 0 ? '' : ' --handlers H'} (--json lists each run's replay line)`);
  io.out(lines.join('\n') + '\n');
  return 0;
}

/**
 * The matrix and the runs as Markdown tables (what `--markdown` prints), from the cells of a compare
 * run in their order (contexts, then guests, then varied toggles, then hosts).
 */
export function compareMarkdown(cells: readonly CompareCell[], varyNames: readonly string[] = []): string {
  const multi = new Set(cells.map((c) => c.context)).size > 1;
  const rowKey = (c: CompareCell): string => [...(multi ? [c.context] : []), c.guest, ...varyNames.map((n) => `${n}=${c.varied[n] === true ? 'on' : 'off'}`)].join(' ');
  const rowKeys = [...new Set(cells.map(rowKey))];
  const hostLabels = [...new Set(cells.map((c) => c.host))];
  const panics = cells.filter((c) => c.panic !== null);
  const md = (s: string): string => s.replace(/\|/g, '\\|');
  const lines: string[] = [];
  const first = (rk: string): CompareCell | undefined => cells.find((c) => rowKey(c) === rk);
  const rowHead = [...(multi ? ['context'] : []), 'guest', ...varyNames];
  lines.push(`| ${[...rowHead, ...hostLabels.map((h) => `host \`${h}\``)].join(' | ')} |`, `|${[...rowHead, ...hostLabels].map(() => '---').join('|')}|`);
  for (const rk of rowKeys) {
    const c0 = first(rk);
    if (c0 === undefined) continue;
    const head = [...(multi ? [c0.context] : []), `\`${c0.guest}\``, ...varyNames.map((n) => (c0.varied[n] === true ? 'on' : 'off'))];
    lines.push(`| ${[...head, ...hostLabels.map((h) => md(markdownCell(cells.find((c) => rowKey(c) === rk && c.host === h))))].join(' | ')} |`);
  }
  if (panics.length > 0) {
    lines.push('', 'Panics:', '');
    const byText = new Map<string, string[]>();
    for (const c of panics) byText.set(c.panic ?? '', [...(byText.get(c.panic ?? '') ?? []), `${multi ? `${c.context}, ` : ''}\`${c.guest}\` on \`${c.host}\``]);
    for (const [text, where] of byText) lines.push(`- "${md(text)}": ${where.join('; ')}`);
  }
  lines.push('', 'Every run:', '');
  const head = [...(multi ? ['context'] : []), 'guest', 'host', ...varyNames, 'outcome', 'async #PF', 'page-ready', 'artificial halts', 'sync faults', 'guest wait (max)', 'vCPU stalled', 'checkers fired'];
  lines.push(`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`);
  for (const c of cells) {
    const row = [
      ...(multi ? [c.context] : []),
      `\`${c.guest}\``,
      `\`${c.host}\``,
      ...varyNames.map((n) => (c.varied[n] === true ? 'on' : 'off')),
      c.outcome,
      String(c.asyncPfInjected),
      String(c.pageReadyDelivered),
      String(c.artificialHalts),
      String(c.syncFaults),
      c.maxWaitNs === 0 ? '-' : `${shortDuration(c.maxWaitNs)}${c.guestWait === 'halt' ? ' (halted)' : ''}`,
      c.stalledNs === 0 ? '-' : shortDuration(c.stalledNs),
      Object.entries(c.fired).map(([k, n]) => `${k} ×${n}`).join(', ') || '-',
    ];
    lines.push(`| ${row.map(md).join(' | ')} |`);
  }
  return lines.join('\n');
}
