/**
 * The checker contract. A checker watches trace records and reports violations of one protocol
 * invariant. It never drives the simulation: it gets records, keeps its own bookkeeping, and
 * reports `{t, cpu, message}` through the callback it was created with, either when it sees the
 * problem or at the end of the run (`finish`).
 */
import type { z } from 'zod';
import { KVM_APF_WAKE_ALL_TOKEN } from '../../shared-abi/apf';
import type { AnyTraceRecord, TraceConsumer, TraceEventName, TraceRecordOf } from '../trace/consumer';

export { eventSet } from '../trace/consumer';
export { hex } from '../../shared-abi/addr';

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
export const ABRUPT_OUTCOMES: ReadonlySet<string> = new Set(['panic', 'error', 'stopped', 'vm_destroyed', 'triple_fault']);

export type Report = (t: number, cpu: number, message: string) => void;

/**
 * One live checker instance for one run: a trace consumer (harness/trace/consumer.ts) that also
 * hears how the run ended. It receives records of its declared `events` only, typed (a run has
 * tens of records per round trip; most checkers care about a few);
 * test/harness/checker-routing.test.ts checks that routing never changes a verdict.
 */
export interface Checker<E extends TraceEventName = TraceEventName> extends TraceConsumer<E> {
  finish(end: RunEndInfo): void;
}

/** A checker kind: name, one-line description, its options (zod shape) and a factory. */
export interface CheckerDef {
  readonly name: string;
  readonly description: string;
  /** The invariant in a sentence, for docs/checkers.md and `apf list`. */
  readonly invariant: string;
  readonly options: Readonly<Record<string, z.ZodType>>;
  /** The events the checker acts on. */
  readonly events: ReadonlySet<TraceEventName>;
  create(options: Readonly<Record<string, unknown>>, report: Report): Checker;
}

/** What a checker's `create` returns: its handling of the declared events' records, and its end-of-run check. */
export interface CheckerBody<E extends TraceEventName> {
  onRecord(rec: TraceRecordOf<E>): void;
  finish(end: RunEndInfo): void;
}

/**
 * Defines a checker. `events` lists the events it acts on; its `onRecord` receives records of
 * those events only, typed (a `case` for an event not in `events` is a compile error). `create`
 * receives its options typed (the scenario schema has validated them).
 */
export function defineChecker<S extends Readonly<Record<string, z.ZodType>>, E extends TraceEventName>(def: {
  name: string;
  description: string;
  invariant: string;
  options: S;
  events: ReadonlySet<E>;
  create(options: Partial<{ [K in keyof S]: z.output<S[K]> }>, report: Report): CheckerBody<E>;
}): CheckerDef {
  return {
    name: def.name,
    description: def.description,
    invariant: def.invariant,
    options: def.options,
    events: def.events,
    create: (options, report) => {
      const body = def.create(options as Partial<{ [K in keyof S]: z.output<S[K]> }>, report);
      const checker: Checker<E> = { events: def.events, onRecord: (rec) => body.onRecord(rec), finish: (end) => body.finish(end) };
      return checker;
    },
  };
}

/** A comma-separated list of tokens ("0x1001,0x2001" or "4097,8193"); empty string: none. */
export function tokenList(v: string): number[] {
  const out: number[] = [];
  for (const part of v.split(',')) {
    const p = part.trim();
    if (p === '') continue;
    const n = /^0x/i.test(p) ? Number.parseInt(p.slice(2), 16) : Number(p);
    if (Number.isFinite(n)) out.push(n);
  }
  return out;
}

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

/** Guest lifecycle events after which the kernel that set up APF is gone. */
export const KERNEL_GONE = new Set(['kexec', 'crash', 'reboot'] as const) as ReadonlySet<'kexec' | 'crash' | 'reboot'>;

/** Whether `event` is one of `KERNEL_GONE` (for records of any event). */
export function isKernelGone(event: string): boolean {
  return (KERNEL_GONE as ReadonlySet<string>).has(event);
}

/** The broadcast wake-all token. */
export const WAKE_ALL = KVM_APF_WAKE_ALL_TOKEN;

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
export const APF_DROP_EVENTS = new Set(['kvm_async_pf_clear_queue', 'kvm_vcpu_reset', 'kvm_vcpu_init', 'kvm_vcpu_destroy', 'kvm_vm_destroy'] as const) as ReadonlySet<ApfDropEvent>;
export type ApfDropEvent = 'kvm_async_pf_clear_queue' | 'kvm_vcpu_reset' | 'kvm_vcpu_init' | 'kvm_vcpu_destroy' | 'kvm_vm_destroy';

export function apfDrop(rec: AnyTraceRecord | TraceRecordOf<ApfDropEvent>): ApfDrop | undefined {
  switch (rec.event) {
    case 'kvm_async_pf_clear_queue': {
      return { kind: 'tokens', tokens: tokenList(rec.tokens), why: `queue cleared (${rec.reason})` };
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
