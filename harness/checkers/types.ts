/**
 * The checker contract. A checker watches trace records and reports violations of one protocol
 * invariant. It never drives the simulation: it gets records, keeps its own bookkeeping, and
 * reports `{t, cpu, message}` through the callback it was created with, either when it sees the
 * problem or at the end of the run (`finish`).
 */
import type { z } from 'zod';
import type { TraceRecord } from '../../sim/trace';

/** A reported problem. */
export interface Violation {
  readonly checker: string;
  /** Virtual time (ns) of the record that showed the problem, or of the end of the run. */
  readonly t: number;
  /** vCPU concerned (-1: the VM). */
  readonly cpu: number;
  readonly message: string;
}

/** How the run ended, for checkers that look at what is left over. */
export interface RunEndInfo {
  readonly t: number;
  /** The run outcome (see OUTCOMES in scenario/schema.ts). */
  readonly outcome: string;
}

/** Outcomes after which nothing left in flight is a finding (the machine stopped mid-way on purpose or broke). */
export const ABRUPT_OUTCOMES: ReadonlySet<string> = new Set(['panic', 'error', 'stopped', 'vm_destroyed', 'triple_fault', 'impossible_action', 'bad_machine']);

export type Report = (t: number, cpu: number, message: string) => void;

/** One live checker instance for one run. */
export interface Checker {
  /**
   * The record events `onRecord` acts on. Records of other events are not delivered to it (a run
   * has tens of records per round trip; most checkers care about a few). Absent: every record.
   * test/harness/checker-routing.test.ts checks that routing never changes a verdict.
   */
  readonly events?: ReadonlySet<string>;
  onRecord(rec: TraceRecord): void;
  finish(end: RunEndInfo): void;
}

/** A checker kind: name, one-line description, its options (zod shape) and a factory. */
export interface CheckerDef {
  readonly name: string;
  readonly description: string;
  /** The invariant in a sentence, for docs/checkers.md and `apf list`. */
  readonly invariant: string;
  readonly options: Readonly<Record<string, z.ZodType>>;
  create(options: Readonly<Record<string, unknown>>, report: Report): Checker;
}

/** Defines a checker whose `create` receives its options typed (the scenario schema has validated them). */
export function defineChecker<S extends Readonly<Record<string, z.ZodType>>>(def: {
  name: string;
  description: string;
  invariant: string;
  options: S;
  create(options: Partial<{ [K in keyof S]: z.output<S[K]> }>, report: Report): Checker;
}): CheckerDef {
  return {
    name: def.name,
    description: def.description,
    invariant: def.invariant,
    options: def.options,
    create: (options, report) => def.create(options as Partial<{ [K in keyof S]: z.output<S[K]> }>, report),
  };
}

// --- typed reads of record fields -----------------------------------------------------------

/** A numeric field (bigints converted when exact enough), else undefined. */
export function num(rec: TraceRecord, key: string): number | undefined {
  const v = rec[key];
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  return undefined;
}

export function str(rec: TraceRecord, key: string): string | undefined {
  const v = rec[key];
  return typeof v === 'string' ? v : undefined;
}

export function flag(rec: TraceRecord, key: string): boolean | undefined {
  const v = rec[key];
  return typeof v === 'boolean' ? v : undefined;
}

/** A comma-separated list of tokens ("0x1001,0x2001" or "4097,8193"); empty string: none. */
export function tokenList(v: unknown): number[] | undefined {
  if (typeof v === 'number') return [v];
  if (typeof v !== 'string') return undefined;
  const out: number[] = [];
  for (const part of v.split(',')) {
    const p = part.trim();
    if (p === '') continue;
    const n = /^0x/i.test(p) ? Number.parseInt(p.slice(2), 16) : Number(p);
    if (Number.isFinite(n)) out.push(n);
  }
  return out;
}

export const hex = (n: number): string => '0x' + n.toString(16);

/** A duration for messages, e.g. "1.204ms". */
export function dur(ns: number): string {
  if (ns < 1_000) return `${ns}ns`;
  if (ns < 1_000_000) return `${trim(ns / 1_000)}us`;
  if (ns < 1_000_000_000) return `${trim(ns / 1_000_000)}ms`;
  return `${trim(ns / 1_000_000_000)}s`;
}

/** A virtual time for messages, e.g. "t=1.204ms". */
export const at = (t: number): string => `t=${dur(t)}`;

function trim(x: number): string {
  return String(Number(x.toFixed(3)));
}

/** The union of event-name groups, for `Checker.events`. */
export function eventSet(...groups: ReadonlyArray<Iterable<string>>): ReadonlySet<string> {
  const out = new Set<string>();
  for (const g of groups) for (const e of g) out.add(e);
  return out;
}

/** Guest lifecycle events after which the kernel that set up APF is gone. */
export const KERNEL_GONE: ReadonlySet<string> = new Set(['kexec', 'crash', 'reboot']);

/** The broadcast wake-all token. */
export const WAKE_ALL = 0xffffffff;

/**
 * What a host record drops of the outstanding async PFs, by one of the documented paths that end
 * them without a page-ready (spec §3.10): a cleared queue (listing its tokens, or all of the
 * vCPU's when the list is missing), a vCPU reset/INIT/destroy, or VM destruction (`cpu` -1).
 * Undefined for any other record.
 */
export type ApfDrop =
  | { readonly kind: 'tokens'; readonly tokens: readonly number[]; readonly why: string }
  | { readonly kind: 'cpu'; readonly cpu: number; readonly why: string };

/** The events `apfDrop` looks at. */
export const APF_DROP_EVENTS: ReadonlySet<string> = new Set(['kvm_async_pf_clear_queue', 'kvm_vcpu_reset', 'kvm_vcpu_init', 'kvm_vcpu_destroy', 'kvm_vm_destroy']);

export function apfDrop(rec: TraceRecord): ApfDrop | undefined {
  switch (rec.event) {
    case 'kvm_async_pf_clear_queue': {
      const why = `queue cleared (${typeof rec.reason === 'string' ? rec.reason : 'unknown reason'})`;
      const tokens = tokenList(rec.tokens);
      return tokens === undefined ? { kind: 'cpu', cpu: rec.cpu, why } : { kind: 'tokens', tokens, why };
    }
    case 'kvm_vcpu_reset':
    case 'kvm_vcpu_init':
    case 'kvm_vcpu_destroy':
      return { kind: 'cpu', cpu: rec.cpu, why: rec.event };
    case 'kvm_vm_destroy':
      return { kind: 'cpu', cpu: -1, why: rec.event };
    default:
      return undefined;
  }
}
