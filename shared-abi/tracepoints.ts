/**
 * The async-PF tracepoints of include/trace/events/kvm.h (spec §6): names, fields and formats
 * as data, and a renderer that prints a record the way the kernel's format string does.
 */

/** spec §6: C types of tracepoint fields (`unsigned long` is 64-bit on x86-64). */
export type TraceFieldType = 'u64' | 'unsigned long';

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
} as const satisfies Readonly<Record<string, TracepointDef>>;

/** spec §6: a key of `TRACEPOINTS`. */
export type TracepointKey = keyof typeof TRACEPOINTS;

/** spec §6: old event names of renamed tracepoints (the rename commit is not pinned, §8.2). */
export const TRACEPOINT_OLD_NAMES = { kvm_async_pf_repeated_fault: 'kvm_async_pf_doublefault' } as const;

/** spec §6: the field values of one record of tracepoint `K` (integers; negative values wrap like C). */
export type TracepointFields<K extends TracepointKey> = {
  readonly [F in (typeof TRACEPOINTS)[K]['fields'][number]['name']]: number | bigint;
};

/**
 * spec §6: render integers with a C printf format. Supports %%, and %x/%u/%d with optional `#`
 * flag and `l`/`ll` length (`l` and `ll` are 64-bit, none is 32-bit). Like C, `%#x` prints 0 as `0`.
 */
export function formatPrintf(format: string, args: readonly (number | bigint)[]): string {
  let i = 0;
  const out = format.replace(/%(#?)(ll|l|)([xud%]?)/g, (whole, alt: string, len: string, conv: string) => {
    if (conv === '' || conv === '%') {
      if (whole !== '%%') throw new Error(`unsupported printf conversion '${whole}'`);
      return '%';
    }
    const arg = args[i++];
    if (arg === undefined) throw new Error(`printf format '${format}' needs more than ${args.length} argument(s)`);
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
  const values = fields as Readonly<Record<string, number | bigint | undefined>>;
  const args = def.args.map((name) => {
    const v = values[name];
    if (v === undefined) throw new Error(`tracepoint ${def.event}: missing field '${name}'`);
    return v;
  });
  return formatPrintf(def.format, args);
}
