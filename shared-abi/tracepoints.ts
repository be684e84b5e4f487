/**
 * The async-PF tracepoints of include/trace/events/kvm.h (spec §6) and the x86 KVM tracepoints
 * of arch/x86/kvm/trace.h that the simulation also emits (MSR access, exception and interrupt
 * injection, LAPIC accept and EOI, the host page fault): names, fields and formats as data, and a
 * renderer that prints a record the way the kernel's format string does.
 *
 * A format argument (`args`) is a field name or one of the few C expressions the kernel's
 * TP_printk lines use: `field ? "yes" : "no"`, `field ? other : 0`, and
 * `__print_symbolic(field [>> N] [& M], TABLE)` with TABLE one of TRACE_SYMBOLS.
 */

/** spec §6: C types of tracepoint fields (`unsigned long` is 64-bit on x86-64). */
export type TraceFieldType = 'u64' | 'unsigned long' | 'u32' | 'u16' | 'u8' | 'unsigned int' | 'unsigned' | 'int' | 'bool';

/** spec §6: one tracepoint field. */
export interface TraceFieldDef {
  readonly name: string;
  readonly type: TraceFieldType;
}

/** spec §6: one tracepoint: its event name, event class, fields (struct order), format and the format's arguments. */
export interface TracepointDef {
  readonly event: string;
  readonly class: string | null;
  readonly fields: readonly TraceFieldDef[];
  readonly format: string;
  readonly args: readonly string[];
}

const GET_PAGE_FIELDS = [
  { name: 'gva', type: 'u64' },
  { name: 'gfn', type: 'u64' },
] as const;
const GET_PAGE_FORMAT = 'gva = %#llx, gfn = %#llx';
const NOPRESENT_READY_FIELDS = [
  { name: 'token', type: 'u64' },
  { name: 'gva', type: 'u64' },
] as const;
const NOPRESENT_READY_FORMAT = 'token %#llx gva %#llx';

/**
 * spec §6: the tracepoints, keyed by event name; `kvm_async_pf_completed_old` is the older
 * field set of `kvm_async_pf_completed` (with pfn), and `kvm_async_pf_doublefault` the old name
 * of `kvm_async_pf_repeated_fault`. The `gva` fields carry cr2_or_gpa (a GPA under TDP).
 */
export const TRACEPOINTS = {
  kvm_try_async_get_page: {
    event: 'kvm_try_async_get_page',
    class: 'kvm_async_get_page_class',
    fields: GET_PAGE_FIELDS,
    format: GET_PAGE_FORMAT,
    args: ['gva', 'gfn'],
  },
  kvm_async_pf_repeated_fault: {
    event: 'kvm_async_pf_repeated_fault',
    class: 'kvm_async_get_page_class',
    fields: GET_PAGE_FIELDS,
    format: GET_PAGE_FORMAT,
    args: ['gva', 'gfn'],
  },
  kvm_async_pf_doublefault: {
    event: 'kvm_async_pf_doublefault',
    class: 'kvm_async_get_page_class',
    fields: GET_PAGE_FIELDS,
    format: GET_PAGE_FORMAT,
    args: ['gva', 'gfn'],
  },
  kvm_async_pf_not_present: {
    event: 'kvm_async_pf_not_present',
    class: 'kvm_async_pf_nopresent_ready',
    fields: NOPRESENT_READY_FIELDS,
    format: NOPRESENT_READY_FORMAT,
    args: ['token', 'gva'],
  },
  kvm_async_pf_ready: {
    event: 'kvm_async_pf_ready',
    class: 'kvm_async_pf_nopresent_ready',
    fields: NOPRESENT_READY_FIELDS,
    format: NOPRESENT_READY_FORMAT,
    args: ['token', 'gva'],
  },
  kvm_async_pf_completed: {
    event: 'kvm_async_pf_completed',
    class: null,
    fields: [
      { name: 'address', type: 'unsigned long' },
      { name: 'gva', type: 'u64' },
    ],
    format: 'gva %#llx address %#lx',
    args: ['gva', 'address'],
  },
  kvm_async_pf_completed_old: {
    event: 'kvm_async_pf_completed',
    class: null,
    fields: [
      { name: 'address', type: 'unsigned long' },
      { name: 'pfn', type: 'u64' },
      { name: 'gva', type: 'u64' },
    ],
    format: 'gva %#llx address %#lx pfn %#llx',
    args: ['gva', 'address', 'pfn'],
  },
  // arch/x86/kvm/trace.h: the kernel formats of the other KVM tracepoints the simulation emits.
  kvm_msr: {
    event: 'kvm_msr',
    class: null,
    fields: [
      { name: 'write', type: 'unsigned' },
      { name: 'ecx', type: 'u32' },
      { name: 'data', type: 'u64' },
      { name: 'exception', type: 'u8' },
    ],
    format: 'msr_%s %x = 0x%llx%s',
    args: ['write ? "write" : "read"', 'ecx', 'data', 'exception ? " (#GP)" : ""'],
  },
  kvm_inj_exception: {
    event: 'kvm_inj_exception',
    class: null,
    fields: [
      { name: 'exception', type: 'u8' },
      { name: 'has_error', type: 'u8' },
      { name: 'error_code', type: 'u32' },
    ],
    format: '%s (0x%x)',
    args: ['__print_symbolic(exception, kvm_trace_sym_exc)', 'has_error ? error_code : 0'],
  },
  kvm_inj_virq: {
    event: 'kvm_inj_virq',
    class: null,
    fields: [{ name: 'irq', type: 'unsigned int' }],
    format: 'irq %u',
    args: ['irq'],
  },
  kvm_apic_accept_irq: {
    event: 'kvm_apic_accept_irq',
    class: null,
    fields: [
      { name: 'apicid', type: 'u32' },
      { name: 'dm', type: 'u16' },
      { name: 'tm', type: 'u16' },
      { name: 'vec', type: 'u8' },
    ],
    format: 'apicid %x vec %u (%s|%s)',
    args: ['apicid', 'vec', '__print_symbolic(dm >> 8 & 0x7, kvm_deliver_mode)', 'tm ? "level" : "edge"'],
  },
  kvm_eoi: {
    event: 'kvm_eoi',
    class: null,
    fields: [
      { name: 'apicid', type: 'u32' },
      { name: 'vector', type: 'int' },
    ],
    format: 'apicid %x vector %d',
    args: ['apicid', 'vector'],
  },
  /**
   * The error code is `unsigned int` in the kernels whose format this is; the simulation's error
   * codes carry bits above 31 (the "fault during the final translation" bit of a TDP fault), so
   * the field is kept 64 bits wide here. Newer kernels also print the vCPU and RIP.
   */
  kvm_page_fault: {
    event: 'kvm_page_fault',
    class: null,
    fields: [
      { name: 'fault_address', type: 'unsigned long' },
      { name: 'error_code', type: 'u64' },
    ],
    format: 'address %lx error_code %llx',
    args: ['fault_address', 'error_code'],
  },
} as const satisfies Readonly<Record<string, TracepointDef>>;

/**
 * Symbol tables of `__print_symbolic` in the formats above: exception vectors as the kernel's
 * `kvm_trace_sym_exc` names them, and the LAPIC delivery modes of `kvm_deliver_mode`. A value
 * without a name prints as hex, as the kernel's helper does.
 */
export const TRACE_SYMBOLS: Readonly<Record<string, Readonly<Record<number, string>>>> = {
  kvm_trace_sym_exc: { 0: '#DE', 1: '#DB', 3: '#BP', 4: '#OF', 5: '#BR', 6: '#UD', 7: '#NM', 8: '#DF', 10: '#TS', 11: '#NP', 12: '#SS', 13: '#GP', 14: '#PF', 16: '#MF', 17: '#AC', 18: '#MC' },
  kvm_deliver_mode: { 0: 'Fixed', 1: 'LowPrio', 2: 'SMI', 4: 'NMI', 5: 'INIT', 6: 'SIPI', 7: 'ExtINT' },
};

type ArgValue = number | bigint | string;

const SYMBOLIC = /^__print_symbolic\((\w+)(?: >> (\d+))?(?: & (0x[0-9a-f]+|\d+))?, (\w+)\)$/;
const TERNARY = /^(\w+) \? (.+) : (.+)$/;

/** The field names an argument expression reads. */
export function argFields(arg: string): string[] {
  const sym = SYMBOLIC.exec(arg);
  if (sym !== null) return [sym[1] ?? ''];
  const t = TERNARY.exec(arg);
  if (t !== null) return [t[1] ?? '', ...[t[2] ?? '', t[3] ?? ''].filter((x) => /^[A-Za-z_]\w*$/.test(x))];
  return [arg];
}

/** Evaluates one argument expression over the record's fields. */
function evalArg(arg: string, v: (name: string) => number | bigint): ArgValue {
  const sym = SYMBOLIC.exec(arg);
  if (sym !== null) {
    let x = BigInt(v(sym[1] ?? ''));
    if (sym[2] !== undefined) x >>= BigInt(sym[2]);
    if (sym[3] !== undefined) x &= BigInt(sym[3]);
    const table = TRACE_SYMBOLS[sym[4] ?? ''];
    if (table === undefined) throw new Error(`unknown symbol table in '${arg}'`);
    return table[Number(x)] ?? '0x' + x.toString(16);
  }
  const t = TERNARY.exec(arg);
  if (t !== null) {
    const side = BigInt(v(t[1] ?? '')) !== 0n ? (t[2] ?? '') : (t[3] ?? '');
    if (side.startsWith('"')) return JSON.parse(side) as string;
    if (/^\d+$/.test(side)) return Number(side);
    return v(side);
  }
  return v(arg);
}

/** spec §6: a key of `TRACEPOINTS`. */
export type TracepointKey = keyof typeof TRACEPOINTS;

/** spec §6: old event names of renamed tracepoints (the rename commit is not pinned, §8.2). */
export const TRACEPOINT_OLD_NAMES = { kvm_async_pf_repeated_fault: 'kvm_async_pf_doublefault' } as const;

/** spec §6: the field values of one record of tracepoint `K` (integers; negative values wrap like C). */
export type TracepointFields<K extends TracepointKey> = {
  readonly [F in (typeof TRACEPOINTS)[K]['fields'][number]['name']]: number | bigint | boolean;
};

/**
 * spec §6: render values with a C printf format. Supports %%, %s (a string), and %x/%u/%d with
 * optional `#` flag and `l`/`ll` length (`l` and `ll` are 64-bit, none is 32-bit). Like C, `%#x`
 * prints 0 as `0`.
 */
export function formatPrintf(format: string, args: readonly (number | bigint | string)[]): string {
  let i = 0;
  const out = format.replace(/%(#?)(ll|l|)([xuds%]?)/g, (whole, alt: string, len: string, conv: string) => {
    if (conv === '' || conv === '%') {
      if (whole !== '%%') throw new Error(`unsupported printf conversion '${whole}'`);
      return '%';
    }
    const arg = args[i++];
    if (arg === undefined) throw new Error(`printf format '${format}' needs more than ${args.length} argument(s)`);
    if (conv === 's') {
      if (typeof arg !== 'string' || whole !== '%s') throw new Error(`printf conversion '${whole}' needs a string`);
      return arg;
    }
    if (typeof arg === 'string') throw new Error(`printf conversion '${whole}' needs a number, got a string`);
    const bits = len === '' ? 32 : 64;
    const v = BigInt(arg);
    if (conv === 'd') return BigInt.asIntN(bits, v).toString(10);
    const u = BigInt.asUintN(bits, v);
    if (conv === 'u') return u.toString(10);
    return (alt === '#' && u !== 0n ? '0x' : '') + u.toString(16);
  });
  if (i !== args.length) throw new Error(`printf format '${format}' takes ${i} argument(s), got ${args.length}`);
  return out;
}

/** spec §6: the kernel's text for one record, e.g. `token 0x1000 gva 0x7f0000001000`. */
export function formatTracepoint<K extends TracepointKey>(key: K, fields: TracepointFields<K>): string {
  const def: TracepointDef = TRACEPOINTS[key];
  const values = fields as Readonly<Record<string, number | bigint | boolean | undefined>>;
  const get = (name: string): number | bigint => {
    const v = values[name];
    if (v === undefined) throw new Error(`tracepoint ${def.event}: missing field '${name}'`);
    return typeof v === 'boolean' ? (v ? 1 : 0) : v;
  };
  return formatPrintf(def.format, def.args.map((a) => evalArg(a, get)));
}
