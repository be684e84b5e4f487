/**
 * The scenario file format, as a zod 4 schema. The schema does two jobs:
 * - validation with messages that name the problem in words a scenario author understands
 *   (the loader adds the path and the file name);
 * - conversion from the file's notation (hex strings, "10us", "64MiB") to the numbers the
 *   simulation takes (`Gva`, integer nanoseconds, bytes), so the parsed output is typed.
 *
 * docs/scenario-format.md explains the format; docs/scenario.schema.json is generated from this
 * schema (`apf schema`), and a test keeps it up to date.
 *
 * Cross-field rules (task names unique, CPUs in range, user vs kernel operations, known event
 * names) are checked after parsing, in `validate.ts`, so that each gets its own clear message.
 */
import { z } from 'zod';
import { PAGE_SIZE, type Gva } from '../../shared-abi/addr';
import type { PageBacking, Latency } from '../../host/config';
import { fmtDuration, parseHexNumber, parseTime } from '../util/units';
import { closest, oneOf } from '../util/names';
import { checkerNames, guestProfileNames, guestToggleInfo, hostProfileNames, hostToggleInfo, kvmFeatureNames } from '../registry';
import { CHECKERS } from '../checkers';
import { bool, HexOrInt, int, nameOf, obj, PageGva, Size, Time, toggles, U32, U64, union, choice } from './scalars';
import { NESTED_MIGRATE_SHAPE, NestedSchema } from './nested';
import { DESIGN_NAMES } from '../../shared-abi/designs';
import { GUEST_KNOBS, HOST_KNOBS, knobShape } from './knobs';

// ---------------------------------------------------------------------------------------------
// Machine
// ---------------------------------------------------------------------------------------------

const GuestConfig = obj(
  {
    profile: nameOf('guest profile', guestProfileNames).optional().meta({ description: 'Which guest kernel (default "current").' }),
    toggles: toggles('guest', guestToggleInfo).optional(),
    ...knobShape(GUEST_KNOBS),
  },
  'The guest kernel: profile and toggles.',
);

const HostConfig = obj(
  {
    profile: nameOf('host profile', hostProfileNames).optional().meta({ description: 'Which KVM (default "current").' }),
    toggles: toggles('host', hostToggleInfo).optional(),
    ...knobShape(HOST_KNOBS),
  },
  'The host KVM: profile, toggles and VM options.',
);

const Cpuid = z
  .union([z.literal('auto'), z.array(nameOf('KVM CPUID feature', kvmFeatureNames))], {
    error: (iss) => {
      const base = `expected "auto" or a list of KVM feature names such as ["ASYNC_PF", "ASYNC_PF_INT"]`;
      // A list with a misspelt name: say which one, and the closest feature.
      const names = kvmFeatureNames() as readonly string[];
      const bad = Array.isArray(iss.input) ? (iss.input as unknown[]).find((x) => typeof x !== 'string' || !names.includes(x)) : undefined;
      const h = typeof bad === 'string' ? closest(bad, names) : undefined;
      return bad === undefined ? base : `${base} (got ${JSON.stringify(bad)}${h === undefined ? '' : `; did you mean "${h}"?`})`;
    },
  })
  .meta({ description: 'KVM features in CPUID 0x40000001.EAX: "auto" (what the host profile offers) or a list of names.' });

/** Largest guest RAM a scenario may ask for (the simulation allocates all of it). */
export const MAX_GUEST_MEMORY = 1024 ** 3;

function fmtSize(bytes: number): string {
  return bytes % 1024 ** 3 === 0 ? `${bytes / 1024 ** 3}GiB` : bytes % 1024 ** 2 === 0 ? `${bytes / 1024 ** 2}MiB` : `${bytes} bytes`;
}

const Machine = obj(
  {
    vcpus: int('a vCPU count', 1, 64).optional().meta({ description: 'Number of vCPUs (default 1).' }),
    memory: Size.check((ctx) => {
      if (ctx.value > MAX_GUEST_MEMORY) ctx.issues.push({ code: 'custom', message: `expected at most 1GiB of guest RAM (got ${fmtSize(ctx.value)}); the simulation holds all of it in memory`, input: ctx.value });
    })
      .optional()
      .meta({ description: 'Guest RAM (default "64MiB", at most "1GiB").' }),
    guest: GuestConfig.optional(),
    host: HostConfig.optional(),
    cpuid: Cpuid.optional(),
    nested: NestedSchema.optional(),
    design: nameOf('design', () => DESIGN_NAMES).optional().meta({
      description: 'Async-PF design, host and guest together (docs/designs.md): current (default), mc, retry_pf, error_flag, error_code, ve.',
    }),
  },
  'The virtual machine.',
);

// ---------------------------------------------------------------------------------------------
// Host memory
// ---------------------------------------------------------------------------------------------

const Backing = choice(['resident', 'swapped', 'remote', 'failing'], 'expected a backing: "resident", "swapped", "remote" or "failing"')
  .meta({ description: 'resident: in host RAM; swapped: paged in from swap; remote: post-copy fetch; failing: page-in returns an error.' });

/** A reference to guest pages: a GVA string (that page in every task that maps it), `{task, page}` or `{gfn, count}`. */
export type PageRef = { readonly kind: 'gva'; readonly page: Gva; readonly task?: string } | { readonly kind: 'gfn'; readonly gfn: number; readonly count: number };

const PageRefObj = obj({
  task: z.string({ error: 'expected a task name' }).optional(),
  page: PageGva.optional(),
  gfn: HexOrInt('a guest frame number').optional(),
  count: int('a page count', 1, 1 << 20).optional(),
});

const PageRefSchema = union([PageGva, PageRefObj], 'expected a page: a GVA like "0x7f0000001000", {"task": ..., "page": ...} or {"gfn": ..., "count": ...}')
  .transform((v, ctx): PageRef => {
    if (typeof v === 'number') return { kind: 'gva', page: v as Gva };
    if (v.gfn !== undefined) {
      if (v.page !== undefined || v.task !== undefined) {
        ctx.addIssue({ code: 'custom', message: 'give either "gfn" (a frame) or "page" (a GVA, optionally with "task"), not both', input: v });
        return z.NEVER;
      }
      return { kind: 'gfn', gfn: v.gfn, count: v.count ?? 1 };
    }
    if (v.page === undefined) {
      ctx.addIssue({ code: 'custom', message: 'expected "page" (a GVA) or "gfn"', input: v });
      return z.NEVER;
    }
    if (v.count !== undefined) {
      ctx.addIssue({ code: 'custom', message: '"count" goes with "gfn"; list GVAs one by one', input: v });
      return z.NEVER;
    }
    return v.task === undefined ? { kind: 'gva', page: v.page } : { kind: 'gva', page: v.page, task: v.task };
  })
  .meta({ id: 'PageRef', description: 'Guest pages: a GVA (that page in every task mapping it), {"task", "page"}, or {"gfn", "count"}.' });

const LatencySchema = union(
  [z.number(), z.string(), obj({ uniform: obj({ min: Time, max: Time }) }), obj({ exponential: obj({ mean: Time, max: Time.optional() }) })],
  'expected a latency: a time like "100us", {"uniform": {"min": ..., "max": ...}} or {"exponential": {"mean": ..., "max": ...}}',
)
  .transform((v, ctx): Latency => {
    if (typeof v === 'number' || typeof v === 'string') {
      const p = parseTime(v);
      if (p.ok) return { kind: 'fixed', ns: p.value };
      ctx.addIssue({ code: 'custom', message: `expected ${p.error}`, input: v });
      return z.NEVER;
    }
    if ('uniform' in v) {
      if (v.uniform.min > v.uniform.max) {
        ctx.addIssue({ code: 'custom', message: `uniform latency: min (${fmtDuration(v.uniform.min)}) is above max (${fmtDuration(v.uniform.max)})`, input: v });
        return z.NEVER;
      }
      return { kind: 'uniform', min: v.uniform.min, max: v.uniform.max };
    }
    return v.exponential.max === undefined ? { kind: 'exponential', mean: v.exponential.mean } : { kind: 'exponential', mean: v.exponential.mean, max: v.exponential.max };
  })
  .meta({ id: 'Latency', description: 'A latency distribution: a fixed time, {"uniform": {"min", "max"}} or {"exponential": {"mean", "max"?}}.' });

const HostMemory = obj(
  {
    default: Backing.optional().meta({ description: 'Backing of pages not listed (default "resident").' }),
    pages: z
      .array(
        obj({
          task: z.string({ error: 'expected a task name' }).optional(),
          page: PageGva.optional(),
          gfn: HexOrInt('a guest frame number').optional(),
          count: int('a page count', 1, 1 << 20).optional(),
          backing: Backing,
        }),
        { error: 'expected a list of pages with their backing' },
      )
      .optional(),
    latency: obj({ swap: LatencySchema.optional(), remote: LatencySchema.optional(), fail: LatencySchema.optional() }).optional(),
    limitPages: int('a page count', 1, 1 << 24).optional().meta({ description: 'Host RAM for the guest, in pages; beyond it the LRU page is evicted.' }),
    evictions: z.array(obj({ at: Time, pages: z.array(PageRefSchema, { error: 'expected a list of pages' }) }), { error: 'expected a list of evictions' }).optional(),
    memslots: z
      .array(obj({ gfn: HexOrInt('a guest frame number'), count: HexOrInt('a page count').optional() }), { error: 'expected a list of memslots: {"gfn": ..., "count"?: ...}' })
      .optional()
      .meta({
        description:
          'Memslots over guest RAM, numbered from 0 in this order (default: one slot over all RAM). "count" defaults to the rest of RAM up to the next slot. ' +
          'Frames outside every slot are not RAM. An explicit layout puts the host translation records on the trace from the start (docs/caches.md).',
      }),
  },
  'How the host backs guest memory.',
);

// ---------------------------------------------------------------------------------------------
// Workload: tasks and their programs
// ---------------------------------------------------------------------------------------------

const offset = int('an offset within the page (0..4092)', 0, PAGE_SIZE - 4);

const noArgs = <N extends string>(op: N) => obj({ op: z.literal(op) });

/** One program operation in the file's notation (user and kernel operations together; `validate.ts` checks where each may appear). */
export const OpSchema = z.discriminatedUnion(
  'op',
  [
    obj({ op: z.literal('touch'), page: PageGva, write: bool('write').optional(), offset: offset.optional(), value: U32.optional() }).meta({ description: 'User-mode read (or write) of one 4-byte word on a user page.' }),
    obj({ op: z.literal('compute'), for: Time }).meta({ description: 'Spin on the CPU for a while.' }),
    obj({
      op: z.literal('syscall'),
      name: z.string().optional(),
      get body() {
        return z.array(OpSchema, { error: 'expected a list of kernel operations' });
      },
    }).meta({ description: 'Enter the kernel and run body (kernel operations), then return to user mode.' }),
    obj({ op: z.literal('sleep'), for: Time }).meta({ description: 'Sleep (msleep in the kernel) for a while.' }),
    noArgs('yield').meta({ description: 'sched_yield().' }),
    obj({
      op: z.literal('loop'),
      times: int('a repeat count', 1, 1_000_000),
      get body() {
        return z.array(OpSchema, { error: 'expected a list of operations' });
      },
    }).meta({ description: 'Repeat body.' }),
    obj({ op: z.literal('exit'), code: int('an exit code', -255, 255).optional() }).meta({ description: 'Exit the task (implicit at the end).' }),
    obj({ op: z.literal('copy_from_user'), page: PageGva, offset: offset.optional() }).meta({ description: 'Kernel read of a user page with an exception-table fixup.' }),
    obj({ op: z.literal('copy_to_user'), page: PageGva, offset: offset.optional(), value: U32.optional() }).meta({ description: 'Kernel write to a user page with a fixup.' }),
    obj({ op: z.literal('kernel_touch'), page: PageGva, write: bool('write').optional(), offset: offset.optional(), value: U32.optional() }).meta({
      description: 'Kernel access to a user page without a fixup.',
    }),
    noArgs('preempt_disable'),
    noArgs('preempt_enable'),
    obj({ op: z.literal('spin_lock'), lock: z.string({ error: 'expected a lock name' }), raw: bool('raw').optional() }),
    obj({ op: z.literal('spin_unlock'), lock: z.string({ error: 'expected a lock name' }), raw: bool('raw').optional() }),
    noArgs('local_irq_disable'),
    noArgs('local_irq_enable'),
    noArgs('rcu_read_lock'),
    noArgs('rcu_read_unlock'),
    noArgs('schedule').meta({ description: 'schedule() voluntarily (cond_resched).' }),
  ],
  {
    error: (iss) => {
      const input = iss.input as { op?: unknown } | undefined;
      if (input === undefined || typeof input !== 'object' || input === null) return 'expected an operation object like {"op": "touch", "page": "0x7f0000001000"}';
      if (input.op === undefined) return `missing "op"; valid ops: ${oneOf([...ALL_OPS])}`;
      const hint = typeof input.op === 'string' ? closest(input.op, ALL_OPS) : undefined;
      return `unknown op ${JSON.stringify(input.op)}${hint === undefined ? '' : ` (did you mean "${hint}"?)`}; valid ops: ${oneOf([...ALL_OPS])}`;
    },
  },
).meta({ id: 'Op' });

export type OpInput = z.output<typeof OpSchema>;

/** Every op name of the file format. */
export const ALL_OPS = [
  'touch', 'compute', 'syscall', 'sleep', 'yield', 'loop', 'exit', 'copy_from_user', 'copy_to_user', 'kernel_touch', 'preempt_disable',
  'preempt_enable', 'spin_lock', 'spin_unlock', 'local_irq_disable', 'local_irq_enable', 'rcu_read_lock', 'rcu_read_unlock', 'schedule',
] as const;

const TaskSchema = obj({
  name: z.string({ error: 'expected a task name' }).min(1, { error: 'expected a non-empty task name' }),
  kind: choice(['user', 'kthread'], 'expected "user" or "kthread"').optional(),
  mm: z.string({ error: 'expected an address-space name' }).optional().meta({ description: 'Address space (default: the task name); tasks with the same mm are threads of one process.' }),
  cpu: int('a vCPU index', 0, 63).optional().meta({ description: 'CPU the task starts on (default: round-robin).' }),
  affinity: z.array(int('a vCPU index', 0, 63), { error: 'expected a list of vCPU indices' }).optional(),
  start: Time.optional().meta({ description: 'When the task is created (default 0).' }),
  nice: int('a nice value', -20, 19).optional(),
  pages: z.array(PageGva, { error: 'expected a list of page GVAs' }).optional().meta({ description: 'User pages the task maps (default: every page its program touches).' }),
  program: z.array(OpSchema, { error: 'expected a program: a list of operations' }),
});

export type TaskInput = z.output<typeof TaskSchema>;

// ---------------------------------------------------------------------------------------------
// Trace matching (triggers and expectations)
// ---------------------------------------------------------------------------------------------

/** How one field of a record is matched. */
export type FieldMatch =
  /** `text`: the hex string as written, when `value` was read from one ("0x1000"). */
  | { readonly kind: 'eq'; readonly value: number | bigint | string | boolean; readonly text?: string }
  | { readonly kind: 'not'; readonly value: number | bigint | string | boolean; readonly text?: string }
  | { readonly kind: 'range'; readonly min?: number; readonly max?: number }
  | { readonly kind: 'capture'; readonly name: string };

const scalarValue = (v: number | string | boolean): number | bigint | string | boolean => {
  if (typeof v === 'string' && /^0x[0-9a-f_]+$/i.test(v)) {
    const big = BigInt(v.replace(/_/g, ''));
    return big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
  }
  return v;
};

const Scalar = z.union([z.number(), z.string(), z.boolean()]);

const FieldMatchSchema = union(
  [Scalar, obj({ not: Scalar }), obj({ min: z.number().optional(), max: z.number().optional() })],
  'expected a field value (number, "0x..." hex, string, boolean, "$name" to capture) or {"not": v} or {"min": n, "max": n}',
)
  .transform((v): FieldMatch => {
    if (typeof v === 'string' && /^\$[A-Za-z_][A-Za-z0-9_]*$/.test(v)) return { kind: 'capture', name: v.slice(1) };
    const text = (x: unknown): { text?: string } => (typeof x === 'string' && typeof scalarValue(x) !== 'string' ? { text: x } : {});
    if (typeof v !== 'object') return { kind: 'eq', value: scalarValue(v), ...text(v) };
    if ('not' in v) return { kind: 'not', value: scalarValue(v.not), ...text(v.not) };
    return { kind: 'range', ...(v.min === undefined ? {} : { min: v.min }), ...(v.max === undefined ? {} : { max: v.max }) };
  })
  .meta({ id: 'FieldMatch', description: 'A field value to match: a number, "0x..." hex, string or boolean; "$name" captures (in sequences); {"not": v}; {"min", "max"}.' });

const Src = choice(['host', 'worker', 'guest', 'cpu', 'harness', 'check'], 'expected a source: host, worker, guest, cpu, harness or check');

const MatchSchema = obj({
  event: z.string({ error: 'expected an event name such as "kvm_async_pf_not_present"' }),
  cpu: int('a vCPU index (-1: not per-CPU)', -1, 63).optional(),
  src: Src.optional(),
  fields: z.record(z.string(), FieldMatchSchema, { error: 'expected an object of field matches' }).optional(),
}).meta({ id: 'Match', description: 'A trace record pattern: event name, optional cpu/src, and field matches.' });

export type MatchInput = z.output<typeof MatchSchema>;

// ---------------------------------------------------------------------------------------------
// Injected events
// ---------------------------------------------------------------------------------------------

const timing = {
  at: Time.optional().meta({ description: 'Virtual time at which to act.' }),
  on: MatchSchema.optional().meta({ description: 'Act when a trace record matches (its first match, or the nth).' }),
  after: Time.optional().meta({ description: 'Delay after the trigger (default 0).' }),
  nth: int('a match number', 1, 1_000_000).optional().meta({ description: 'Act on the nth matching record (default 1).' }),
  every: bool('every').optional().meta({ description: 'Act on every matching record from the nth on.' }),
};
const cpu = int('a vCPU index', 0, 63);
const cpuOpt = cpu.optional();

export const ACTIONS = {
  nmi: 'inject an NMI into a vCPU',
  smi: 'inject an SMI (enter SMM: CR0.PG off, for `duration`, then RSM)',
  init: 'send INIT to a vCPU (KVM vcpu INIT: APF state reset)',
  reset: 'RESET a vCPU',
  irq: 'inject a fixed interrupt with `vector`',
  cpu_offline: 'guest: take a CPU offline (disables APF on it, wakes its sleepers)',
  cpu_online: 'guest: bring a CPU back online (re-enables APF)',
  suspend: 'guest: suspend (APF off on every CPU)',
  resume: 'guest: resume (APF re-enabled)',
  reboot: 'guest: reboot',
  kexec: 'guest: kexec into a new kernel',
  crash: 'guest: crash (kdump path)',
  apf_disable: 'guest: kvm_pv_disable_apf() on a CPU',
  apf_enable: 'guest: re-run kvm_guest_cpu_init() on a CPU',
  lapic_disable: 'guest: software-disable the LAPIC (SPIV)',
  lapic_enable: 'guest: software-enable the LAPIC',
  vcpu_destroy: 'host: destroy a vCPU',
  vm_destroy: 'host: destroy the VM',
  evict: 'host: swap out pages now',
  set_msr: 'host-initiated MSR write (as userspace does on restore)',
  get_msr: 'host-initiated MSR read (KVM_GET_MSRS, as userspace does on save), traced as kvm_get_msr_host',
  save_restore: 'migration: save the APF MSRs, continue on a fresh destination vCPU (no queue, token counter 0), restore them in `order`',
  nested_migrate: 'migration with post-copy while nested guests run: restore the nested state (`restore`) with its pages still on the source (docs/nested.md)',
  page_ready: 'host: send page-ready for `token` to a vCPU (write its token slot, raise its vector; the ABI allows any vCPU)',
  memslot_delete: 'VMM: delete memslot `slot` (its frames stop being RAM; the memory is kept for a re-add) (docs/caches.md)',
  memslot_readd: 'VMM: re-create a deleted memslot at its frames, over its old memory or (`newBacking`) new memory with the contents copied',
  memslot_move: 'VMM: move memslot `slot` to start at guest frame `gfn` (same host memory)',
  memslot_resize: 'VMM: re-create memslot `slot` with `count` pages over the same host memory',
  hot_unplug: 'VMM: memory hot-unplug of memslot `slot` (deleted, its memory unmapped and freed)',
  page_migrate: 'host: migrate the host pages behind `pages` to other host frames (same GPA, contents copied)',
  stop: 'end the run here (outcome "stopped")',
} as const;
export type ActionName = keyof typeof ACTIONS;

const ACTION_NAMES = Object.keys(ACTIONS) as ActionName[];

const MSR_NAMES = { ASYNC_PF_EN: 0x4b564d02, ASYNC_PF_INT: 0x4b564d06, ASYNC_PF_ACK: 0x4b564d07 } as const;

const MsrIndex = z
  .union([z.number(), z.string()], { error: 'expected an MSR: "ASYNC_PF_EN", "ASYNC_PF_INT", "ASYNC_PF_ACK" or an index like "0x4b564d02"' })
  .transform((v, ctx) => {
    if (typeof v === 'string' && v in MSR_NAMES) return MSR_NAMES[v as keyof typeof MSR_NAMES];
    const p = parseHexNumber(v, true);
    if (p.ok && p.value <= 0xffffffff) return p.value;
    ctx.addIssue({ code: 'custom', message: `expected an MSR: ${Object.keys(MSR_NAMES).join(', ')} or a 32-bit index like "0x4b564d02" (got ${JSON.stringify(v)})`, input: v });
    return z.NEVER;
  });

const act = <N extends ActionName, S extends z.core.$ZodLooseShape>(name: N, shape: S) =>
  obj({ do: z.literal(name), ...timing, ...shape }).meta({ description: ACTIONS[name] });

const InjectionSchema = z.discriminatedUnion(
  'do',
  [
    act('nmi', { cpu }),
    act('smi', { cpu, duration: Time.optional() }),
    act('init', { cpu }),
    act('reset', { cpu }),
    act('irq', { cpu, vector: int('a vector', 32, 255) }),
    act('cpu_offline', { cpu }),
    act('cpu_online', { cpu }),
    act('suspend', {}),
    act('resume', {}),
    act('reboot', {}),
    act('kexec', { cpu: cpuOpt }),
    act('crash', { cpu: cpuOpt }),
    act('apf_disable', { cpu }),
    act('apf_enable', { cpu }),
    act('lapic_disable', { cpu }),
    act('lapic_enable', { cpu }),
    act('vcpu_destroy', { cpu }),
    act('vm_destroy', {}),
    act('evict', { pages: z.array(PageRefSchema, { error: 'expected a list of pages' }) }),
    act('set_msr', { cpu, msr: MsrIndex, value: U64 }),
    act('get_msr', { cpu, msr: MsrIndex }),
    act('save_restore', {
      cpu,
      order: choice(['en-int', 'int-en'], 'expected "en-int" (EN restored first) or "int-en"').optional(),
      reset: bool('reset').optional(),
    }),
    act('page_ready', { cpu, token: U32 }),
    act('memslot_delete', { slot: int('a memslot number', 0, 511) }),
    act('memslot_readd', { slot: int('a memslot number', 0, 511), newBacking: bool('newBacking').optional() }),
    act('memslot_move', { slot: int('a memslot number', 0, 511), gfn: HexOrInt('a guest frame number') }),
    act('memslot_resize', { slot: int('a memslot number', 0, 511), count: HexOrInt('a page count') }),
    act('hot_unplug', { slot: int('a memslot number', 0, 511) }),
    act('page_migrate', { pages: z.array(PageRefSchema, { error: 'expected a list of pages' }) }),
    act('nested_migrate', NESTED_MIGRATE_SHAPE),
    act('stop', { reason: z.string().optional() }),
  ],
  {
    error: (iss) => {
      const input = iss.input as { do?: unknown } | undefined;
      if (input === undefined || typeof input !== 'object' || input === null) return 'expected an event object like {"at": "1ms", "do": "nmi", "cpu": 0}';
      if (input.do === undefined) return `missing "do"; valid actions: ${oneOf(ACTION_NAMES)}`;
      const hint = typeof input.do === 'string' ? closest(input.do, ACTION_NAMES) : undefined;
      return `unknown action ${JSON.stringify(input.do)}${hint === undefined ? '' : ` (did you mean "${hint}"?)`}; valid actions: ${oneOf(ACTION_NAMES)}`;
    },
  },
).meta({ id: 'Event' });

export type InjectionInput = z.output<typeof InjectionSchema>;

// ---------------------------------------------------------------------------------------------
// Expectations, checkers, budget
// ---------------------------------------------------------------------------------------------

export const OUTCOMES = {
  completed: 'the workload finished: every task exited (or the bare script ran to its end)',
  panic: 'the guest panicked',
  triple_fault: 'a vCPU triple-faulted (shutdown)',
  deadlock: 'nothing left to run while the workload still waited',
  budget: 'the event or virtual-time budget ran out first',
  stopped: 'a "stop" event ended the run',
  vm_destroyed: 'the VM was destroyed',
  impossible_action: 'an injected event asked for something the machine cannot do at that moment (re-adding a memslot that exists, bringing a CPU online with none online to send the INIT)',
  bad_machine: 'the machine cannot be built from the scenario (guest memory too small for the workload, host pages outside guest RAM); apf run reports it as bad input',
  error: 'the simulation raised an unexpected error (a bug in the model)',
} as const;
export type Outcome = keyof typeof OUTCOMES;
const OUTCOME_NAMES = Object.keys(OUTCOMES) as Outcome[];

const CountSchema = union(
  [
    int('a count', 0, Number.MAX_SAFE_INTEGER),
    obj({
      min: int('a count', 0, Number.MAX_SAFE_INTEGER).optional(),
      max: int('a count', 0, Number.MAX_SAFE_INTEGER).optional(),
      cpu: int('a vCPU index', -1, 63).optional(),
      src: Src.optional(),
      fields: z.record(z.string(), FieldMatchSchema).optional(),
      window: obj({
        from: Time.optional().meta({ description: 'Count records at or after this virtual time (default 0).' }),
        to: Time.optional().meta({ description: 'Count records before this virtual time (default: the end of the run).' }),
      })
        .optional()
        .meta({ description: 'Count only the records in this virtual-time window [from, to).' }),
    }),
  ],
  'expected a count (a number) or {"min": n, "max": n, "cpu"?: n, "fields"?: {...}, "window"?: {"from"?, "to"?}}',
);

/** A latency expectation: the time from each record matching `from` to the first later record matching `to`. */
const LatencyExpectSchema = obj({
  from: MatchSchema.meta({ description: 'The record that starts the clock; "$name" captures bind per pair.' }),
  to: MatchSchema.meta({ description: 'The record that stops it: the first later one that matches, with the same captures.' }),
  min: Time.optional().meta({ description: 'Every pair takes at least this long.' }),
  max: Time.optional().meta({ description: 'Every pair takes at most this long; a "from" never followed by its "to" fails.' }),
}).meta({ id: 'LatencyExpectation', description: 'The latency between two matched events, e.g. not-present token T to the wake of token T.' });

const CheckerList = z.array(nameOf('checker', checkerNames), { error: 'expected a list of checker names' });

const Expect = obj(
  {
    outcome: nameOf('outcome', () => OUTCOME_NAMES).optional().meta({ description: 'How the run must end (default "completed").' }),
    panic: z.string().optional().meta({ description: 'Text the panic message must contain (implies outcome "panic").' }),
    counts: z.record(z.string(), CountSchema, { error: 'expected an object: event name -> count' }).optional().meta({ description: 'Event counts: exact, or {"min", "max"} with optional cpu/src/fields filter.' }),
    sequence: z.array(MatchSchema, { error: 'expected a list of trace patterns' }).optional().meta({ description: 'Records that must occur in this order (other records may come between).' }),
    absent: z.array(MatchSchema, { error: 'expected a list of trace patterns' }).optional().meta({ description: 'Records that must not occur.' }),
    latency: z
      .array(LatencyExpectSchema, { error: 'expected a list of latencies {"from", "to", "min"?, "max"?}' })
      .optional()
      .meta({ description: 'Latencies between matched events: each "from" record to the first later "to" record with the same captures, within [min, max].' }),
    checkers: obj({ pass: CheckerList.optional(), fire: CheckerList.optional() }).optional().meta({
      description: 'Checkers that must stay quiet (default: every enabled checker not listed under "fire") or must fire.',
    }),
  },
  'What must be true at the end of the run.',
).meta({ id: 'Expect', description: 'What must be true at the end of the run.' });

function checkerConfigShape() {
  const shape: Record<string, z.ZodType> = {};
  for (const c of CHECKERS) {
    const opts = Object.keys(c.options);
    shape[c.name] = union(
      [z.boolean(), obj(c.options as z.core.$ZodLooseShape)],
      `expected true/false or options for checker "${c.name}"${opts.length > 0 ? ` (${opts.join(', ')})` : ''}`,
    )
      .optional()
      .meta({ description: c.description });
  }
  return shape;
}

const Checkers = z.lazy(() => {
  const names = CHECKERS.map((c) => c.name);
  return z.strictObject(checkerConfigShape(), {
    error: (iss) => {
      if (iss.code === 'unrecognized_keys') {
        const k = iss.keys[0] ?? '';
        const hint = closest(k, names);
        return `unknown checker "${k}"${hint === undefined ? '' : ` (did you mean "${hint}"?)`}; valid: ${oneOf(names)}`;
      }
      return 'expected an object: checker name -> true/false or options';
    },
  });
});

const Budget = obj({
  maxEvents: int('an event budget', 1, Number.MAX_SAFE_INTEGER).optional(),
  maxTime: Time.optional(),
}, 'Limits that end a runaway run (outcome "budget").');

const Verdict = obj({
  pass: z.string().optional().meta({ description: 'Printed when the expectations hold.' }),
  fail: z.string().optional().meta({ description: 'Printed when they do not.' }),
});

const VariantGuest = obj(
  {
    profile: nameOf('guest profile', guestProfileNames).optional().meta({ description: "Replaces the scenario's guest profile." }),
    toggles: toggles('guest', guestToggleInfo).optional().meta({ description: "Set on top of the scenario's guest toggles." }),
  },
  "The guest of this variant: profile and toggles changed from the scenario's.",
);

const VariantHost = obj(
  {
    profile: nameOf('host profile', hostProfileNames).optional().meta({ description: "Replaces the scenario's host profile." }),
    toggles: toggles('host', hostToggleInfo).optional().meta({ description: "Set on top of the scenario's host toggles." }),
  },
  "The host of this variant: profile and toggles changed from the scenario's.",
);

const Variant = obj(
  {
    description: z.string().optional().meta({ description: 'What differs in this run, in a few words (e.g. "linux-4.19 host, before 2a266f23550b").' }),
    guest: VariantGuest.optional(),
    host: VariantHost.optional(),
    events: z
      .array(InjectionSchema, { error: 'expected a list of events' })
      .optional()
      .meta({ description: "Replaces the scenario's events (for hazards without a kernel fix, where the runs differ in what happens, not in which kernel runs)." }),
    expect: Expect,
    verdict: Verdict.optional(),
  },
  'A variant of the scenario: the same machine and workload with other profiles or toggles (or events), and its own expectations and verdict.',
);

// ---------------------------------------------------------------------------------------------
// The bare-metal scripted guest (kvm-unit-tests style): guest/bare's BareStep in file notation
// ---------------------------------------------------------------------------------------------

const GpaHex = HexOrInt('a guest-physical address').meta({ description: 'A guest-physical address (hex string or number); the bare guest identity-maps memory, so it is also the GVA.' });

const BareCondition = z
  .discriminatedUnion(
    'kind',
    [
      obj({ kind: z.literal('time'), t: Time }),
      obj({ kind: z.literal('page_ready'), count: int('a count', 1, 1_000_000).optional() }),
      obj({ kind: z.literal('token'), token: U32 }),
      obj({ kind: z.literal('wake_all'), count: int('a count', 1, 1_000_000).optional() }),
      obj({ kind: z.literal('async_pf'), count: int('a count', 1, 1_000_000).optional() }),
      obj({ kind: z.literal('vector'), vector: int('a vector', 0, 255), count: int('a count', 1, 1_000_000).optional() }),
    ],
    { error: 'expected a condition: {"kind": "time" | "page_ready" | "token" | "wake_all" | "async_pf" | "vector", ...}' },
  )
  .meta({ id: 'BareCondition', description: 'When a bare-guest wait ends.' });

const BarePfPolicy = obj({
  clearFlags: bool('clearFlags').optional(),
  wait: choice(['sti_hlt', 'none'], 'expected "sti_hlt" or "none"').optional(),
  waitFor: choice(['token', 'token_or_wake_all'], 'expected "token" or "token_or_wake_all"').optional(),
  limit: Time.optional(),
}).meta({ description: '#PF handler policy: clear the flags, wait (STI;HLT) for the token or also a wake-all, give up after `limit`.' });

const BarePageReadyPolicy = obj({ zeroToken: bool('zeroToken').optional(), ack: bool('ack').optional(), eoi: bool('eoi').optional() }).meta({
  description: 'Page-ready interrupt handler policy: zero the token slot, ACK, EOI.',
});

export const BARE_OPS = [
  'wrmsr', 'rdmsr', 'cpuid', 'sti', 'cli', 'cpl', 'touch', 'hlt', 'sti_hlt', 'spin', 'lapic', 'paging', 'idt', 'apf_enable', 'apf_disable', 'ack', 'eoi', 'write_area',
  'read_area', 'wait', 'policy', 'log', 'repeat',
] as const;

export const BareStepSchema = z
  .discriminatedUnion(
    'op',
    [
      obj({ op: z.literal('wrmsr'), msr: MsrIndex, value: U64 }),
      obj({ op: z.literal('rdmsr'), msr: MsrIndex }),
      obj({ op: z.literal('cpuid'), leaf: HexOrInt('a CPUID leaf'), subleaf: HexOrInt('a CPUID subleaf').optional() }),
      noArgs('sti'),
      noArgs('cli'),
      obj({ op: z.literal('cpl'), cpl: z.union([z.literal(0), z.literal(1), z.literal(2), z.literal(3)], { error: 'expected a privilege level: 0, 1, 2 or 3' }) }),
      obj({ op: z.literal('touch'), addr: GpaHex, write: bool('write').optional(), value: U32.optional() }),
      noArgs('hlt'),
      noArgs('sti_hlt'),
      obj({ op: z.literal('spin'), for: Time }),
      obj({ op: z.literal('lapic'), enable: bool('enable') }),
      obj({ op: z.literal('paging'), enable: bool('enable') }).meta({ description: 'Set or clear CR0.PG (memory is identity mapped).' }),
      obj({ op: z.literal('idt'), load: bool('load') }).meta({ description: 'Load the script\'s IDT, or an empty one (no gates: events escalate to #DF and triple fault).' }),
      obj({
        op: z.literal('apf_enable'),
        sendAlways: bool('sendAlways').optional(),
        int: bool('int').optional(),
        vector: int('a vector', 0, 255).optional(),
        pfVmexit: bool('pfVmexit').optional(),
        intAfterEn: bool('intAfterEn').optional(),
        reserved: U64.optional(),
      }),
      noArgs('apf_disable'),
      noArgs('ack'),
      noArgs('eoi'),
      obj({ op: z.literal('write_area'), field: choice(['flags', 'token'], 'expected "flags" or "token"'), value: U32 }),
      noArgs('read_area'),
      obj({ op: z.literal('wait'), until: BareCondition, timeout: Time.optional(), mode: choice(['sti_hlt', 'spin'], 'expected "sti_hlt" or "spin"').optional() }),
      obj({ op: z.literal('policy'), pf: BarePfPolicy.optional(), pageReady: BarePageReadyPolicy.optional() }),
      obj({ op: z.literal('log'), message: z.string({ error: 'expected a message' }) }),
      obj({
        op: z.literal('repeat'),
        times: int('a repeat count', 1, 1_000_000),
        get body() {
          return z.array(BareStepSchema, { error: 'expected a list of steps' });
        },
      }),
    ],
    {
      error: (iss) => {
        const input = iss.input as { op?: unknown } | undefined;
        if (input === undefined || typeof input !== 'object' || input === null) return 'expected a step object like {"op": "apf_enable"}';
        if (input.op === undefined) return `missing "op"; valid bare steps: ${oneOf([...BARE_OPS])}`;
        const hint = typeof input.op === 'string' ? closest(input.op, BARE_OPS) : undefined;
        return `unknown bare step ${JSON.stringify(input.op)}${hint === undefined ? '' : ` (did you mean "${hint}"?)`}; valid bare steps: ${oneOf([...BARE_OPS])}`;
      },
    },
  )
  .meta({ id: 'BareStep' });

export type BareStepInput = z.output<typeof BareStepSchema>;

const Bare = obj(
  {
    script: z.array(BareStepSchema, { error: 'expected a list of steps' }),
    pf: BarePfPolicy.optional(),
    pageReady: BarePageReadyPolicy.optional(),
    apfArea: GpaHex.optional().meta({ description: 'GPA of the APF area (64-byte aligned, default 0x1000).' }),
  },
  'A bare-metal scripted guest on one vCPU (kvm-unit-tests style) instead of the guest kernel.',
);

export type BareInput = z.output<typeof Bare>;

// ---------------------------------------------------------------------------------------------
// The scenario
// ---------------------------------------------------------------------------------------------

export const ScenarioSchema = obj(
  {
    $schema: z.string().optional(),
    name: z.string({ error: 'expected a name' }).optional().meta({ description: 'Short name (default: the file name).' }),
    description: z.string().optional().meta({ description: 'What the scenario shows; printed before the run.' }),
    notes: z.array(z.string()).optional().meta({ description: 'Lines printed before the run (e.g. what to look for).' }),
    seed: z.union([int('a seed', 0, Number.MAX_SAFE_INTEGER), z.string().min(1)], { error: 'expected a seed: a non-negative integer or a string' }).optional(),
    machine: Machine.optional(),
    hostMemory: HostMemory.optional(),
    tasks: z.array(TaskSchema, { error: 'expected a list of tasks' }).optional(),
    bare: Bare.optional(),
    events: z.array(InjectionSchema, { error: 'expected a list of events' }).optional(),
    expect: Expect.optional(),
    verdict: Verdict.optional(),
    regression: obj(
      {
        bug: z.string({ error: 'expected a sentence: what the bug was' }),
        fixedBy: z.string({ error: 'expected the fix: a commit and/or version' }),
        shows: z.string({ error: 'expected a sentence: what the run shows' }),
        spec: z.string().optional().meta({ description: 'Section of the spec, e.g. "§7.11".' }),
        variants: z
          .record(z.string().regex(/^[a-z][a-z0-9-]*$/), Variant, {
            error: (iss) =>
              iss.code === 'invalid_key'
                ? 'a variant name is lower-case letters, digits and dashes, e.g. "buggy"'
                : 'expected an object: variant name -> {guest?, host?, events?, expect, verdict?}',
          })
          .optional()
          .meta({ description: 'Other runs of the same scenario, by name (apf run FILE --variant NAME); "buggy" is the run with the bug present. The file itself is the fixed run.' }),
      },
      'For scenarios that reproduce a historical bug: what it was, what fixed it, what the run shows.',
    ).optional(),
    checkers: Checkers.optional(),
    budget: Budget.optional(),
  },
  'A kvm-apf-harness scenario: a machine, a workload, injected events and expectations.',
);

export type ScenarioInput = z.output<typeof ScenarioSchema>;
export type HostMemoryInput = z.output<typeof HostMemory>;
export type ExpectInput = z.output<typeof Expect>;
export type VariantInput = z.output<typeof Variant>;
export type CountInput = z.output<typeof CountSchema>;
export type LatencyExpectInput = z.output<typeof LatencyExpectSchema>;
export type { PageBacking };
export { MSR_NAMES };
