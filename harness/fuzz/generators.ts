/**
 * fast-check generators of random scenarios for the guest kernel on the simulated KVM.
 *
 * A generated case is a *model* (plain data that fast-check can shrink: arrays lose elements,
 * numbers move toward their minimum) turned into a scenario document in file notation by
 * `toScenarioDoc`. Every cross reference (task names, pages, vCPU numbers, tokens) is derived
 * in that last step, so any shrunk model still makes a valid scenario.
 *
 * What is randomized:
 * - workload: vCPUs, tasks (user tasks, threads sharing an mm, kernel threads), their CPUs,
 *   affinity, start times and nice values, programs (user touches, compute, sleep, yield,
 *   syscalls with copy_*_user and kernel accesses, preempt/IRQ/RCU/spinlock sections, loops);
 * - host: page backings (resident, swapped, post-copy remote), page-in latencies (fixed, uniform,
 *   exponential), a host memory limit (LRU evictions), scheduled evictions, work-item allocation
 *   failures, VM-exit cost, the token counter near its 20-bit wrap, and schedule perturbation
 *   (`stepJitter`: seeded jitter of every vCPU run-loop iteration);
 * - guest: CONFIG_PREEMPT, the timer rate, a perf-style NMI that reads user memory, and
 *   `nmi_saves_cr2` where the profile reads CR2 at #PF entry;
 * - injected events, at virtual times or on protocol trace points (an async #PF injected, the
 *   flags read, a task parking, a worker completing, page-ready sent or handled, the token slot
 *   cleared — i.e. just before the ACK — or an artificial halt), each with a delay: NMI, SMI,
 *   CPU offline/online (or INIT of the offlined CPU), APF disable/re-enable, LAPIC off/on,
 *   suspend/resume, migration save/restore, evictions, spurious device interrupts, and a page-ready
 *   for a predicted token on another vCPU (wake before wait).
 *
 * Every generated scenario expects what a correct guest on a correct host does: the workload
 * completes and every checker stays quiet. Events that are expected to end a run otherwise
 * (reboot, kexec, crash, VM teardown, INIT of a running CPU, failing pages → #MC → panic) are not
 * generated; disables are always paired with a later re-enable.
 */
import fc from 'fast-check';
import { allocApfToken } from '../../shared-abi/apf';
import { resolveGuestProfile, type GuestProfileName, type GuestToggle } from '../../guest/profiles';
import { TRAMPOLINE_SIPI_VECTOR } from '../../guest/lapic';
import { resolveHostProfile } from '../../host/profiles';
import type { HostProfileName, HostToggle } from '../../host/config';
import { compact, hexStr, time, type Json, type JsonObject } from './doc';

export type FuzzSize = 'small' | 'medium' | 'large';
export const FUZZ_SIZES: readonly FuzzSize[] = ['small', 'medium', 'large'];

export interface GenOptions {
  readonly guest: GuestProfileName;
  readonly host: HostProfileName;
  readonly hostToggles: Readonly<Partial<Record<HostToggle, boolean>>>;
  readonly guestToggles: Readonly<Partial<Record<GuestToggle, boolean>>>;
  readonly size: FuzzSize;
}

interface Limits {
  readonly vcpus: number;
  readonly tasks: number;
  readonly ops: number;
  readonly events: number;
  readonly pages: number;
}

export const SIZE_LIMITS: Readonly<Record<FuzzSize, Limits>> = {
  small: { vcpus: 2, tasks: 3, ops: 4, events: 3, pages: 4 },
  medium: { vcpus: 3, tasks: 4, ops: 6, events: 5, pages: 6 },
  large: { vcpus: 4, tasks: 6, ops: 8, events: 8, pages: 8 },
};

/** First user page of the generated workloads; page i is PAGE_BASE + i * 4 KiB. */
export const PAGE_BASE = 0x7f00_0000_1000;
const pageGva = (i: number): string => hexStr(PAGE_BASE + i * 0x1000);

/** A user address no generated task maps: an NMI handler reading it takes a #PF (fixed up). */
const NMI_FAULTING_READ = '0x600000000000';

/** Budgets of a generated run: far beyond what a healthy run needs, small enough that a hang ends quickly. */
export const FUZZ_BUDGET = { maxEvents: 300_000, maxTime: '50ms' } as const;

// ---------------------------------------------------------------------------------------------
// The model
// ---------------------------------------------------------------------------------------------

type Backing = 'resident' | 'swapped' | 'remote';
type LatencyModel = { readonly kind: 'fixed'; readonly ns: number } | { readonly kind: 'uniform'; readonly min: number; readonly span: number } | { readonly kind: 'exponential'; readonly mean: number; readonly cap: number };

/** An access to one of the scenario's pages; `word` picks a word in the task's own slice of the page. */
interface Access {
  readonly page: number;
  readonly word: number;
  readonly value: number;
}

export type AtomicOpModel =
  | ({ readonly op: 'copy_from_user' | 'copy_to_user' | 'kernel_read' | 'kernel_write' } & Access)
  | { readonly op: 'compute'; readonly ns: number };
type AtomicKind = 'preempt' | 'irq' | 'rcu' | 'spin';
export type KernelOpModel =
  | AtomicOpModel
  | { readonly op: 'sleep'; readonly ns: number }
  | { readonly op: 'schedule' }
  | { readonly op: 'atomic'; readonly kind: AtomicKind; readonly lock: number; readonly raw: boolean; readonly body: readonly AtomicOpModel[] };
type SimpleUserOpModel = ({ readonly op: 'read' | 'write' } & Access) | { readonly op: 'compute'; readonly ns: number } | { readonly op: 'yield' };
export type UserOpModel =
  | SimpleUserOpModel
  | { readonly op: 'sleep'; readonly ns: number }
  | { readonly op: 'syscall'; readonly body: readonly KernelOpModel[] }
  | { readonly op: 'loop'; readonly times: number; readonly body: readonly SimpleUserOpModel[] };
type KthreadOpModel =
  | { readonly op: 'compute'; readonly ns: number }
  | { readonly op: 'sleep'; readonly ns: number }
  | { readonly op: 'schedule' }
  | { readonly op: 'atomic'; readonly kind: AtomicKind; readonly lock: number; readonly raw: boolean; readonly ns: number };

interface TaskCommon {
  readonly cpu: number | null;
  readonly pin: boolean;
  readonly start: number;
  readonly nice: number;
}
export type TaskModel =
  | (TaskCommon & { readonly kind: 'user'; readonly mm: number | null; readonly program: readonly UserOpModel[] })
  | (TaskCommon & { readonly kind: 'kthread'; readonly program: readonly KthreadOpModel[] });

/** Protocol trace points events can be triggered on. */
export const TRIGGERS: readonly JsonObject[] = [
  { event: 'kvm_async_pf_not_present', fields: { injected: true } },
  { event: 'kvm_inj_exception', fields: { async: true } },
  { event: 'kvm_read_and_reset_apf_flags' },
  { event: 'kvm_async_pf_task_wait_schedule' },
  { event: 'kvm_async_pf_completed' },
  { event: 'kvm_async_pf_ready', fields: { notified: true } },
  { event: 'sysvec_kvm_asyncpf_interrupt' },
  { event: 'apf_token_clear' },
  { event: 'kvm_async_pf_halt' },
  { event: 'sched_switch' },
];

type Timing = { readonly kind: 'at'; readonly t: number } | { readonly kind: 'on'; readonly trigger: number; readonly nth: number; readonly cpu: number | null; readonly after: number };

type ActionModel =
  | { readonly do: 'nmi'; readonly cpu: number }
  | { readonly do: 'perf_nmi'; readonly nth: number; readonly frac: number; readonly every: boolean }
  | { readonly do: 'smi'; readonly cpu: number; readonly ns: number }
  | { readonly do: 'apf_cycle' | 'lapic_cycle'; readonly cpu: number; readonly gap: number }
  | { readonly do: 'cpu_cycle'; readonly cpu: number; readonly gap: number; readonly viaInit: boolean }
  | { readonly do: 'suspend_cycle'; readonly gap: number }
  | { readonly do: 'save_restore'; readonly cpu: number; readonly intFirst: boolean; readonly reset: boolean }
  | { readonly do: 'evict'; readonly pages: readonly number[] }
  | { readonly do: 'irq'; readonly cpu: number; readonly vector: number }
  | { readonly do: 'page_ready'; readonly faultCpu: number; readonly nth: number };

export interface EventModel {
  readonly when: Timing;
  readonly action: ActionModel;
}

export interface ScenarioModel {
  readonly seed: number;
  readonly vcpus: number;
  readonly host: {
    readonly exitCost: number | null;
    readonly allocFailure: number | null;
    readonly jitter: number;
    readonly tokenCounter: number | null;
  };
  readonly guest: { readonly preempt: boolean; readonly hz: number | null; readonly nmiRead: number | null; readonly nmiSavesCr2: boolean };
  readonly pages: readonly Backing[];
  readonly swap: LatencyModel | null;
  readonly remote: LatencyModel | null;
  readonly limitPages: number | null;
  readonly evictions: readonly { readonly t: number; readonly pages: readonly number[] }[];
  readonly tasks: readonly TaskModel[];
  readonly events: readonly EventModel[];
}

// ---------------------------------------------------------------------------------------------
// Arbitraries
// ---------------------------------------------------------------------------------------------

const US = 1000;
const nsIn = (min: number, max: number): fc.Arbitrary<number> => fc.integer({ min, max });
const opt = <T>(a: fc.Arbitrary<T>, freq = 2): fc.Arbitrary<T | null> => fc.option(a, { nil: null, freq });

const latencyArb = (lo: number, hi: number): fc.Arbitrary<LatencyModel> =>
  fc.oneof(
    { weight: 3, arbitrary: nsIn(lo, hi).map((ns): LatencyModel => ({ kind: 'fixed', ns })) },
    { weight: 3, arbitrary: fc.record({ min: nsIn(lo, hi), span: nsIn(0, hi) }).map((r): LatencyModel => ({ kind: 'uniform', ...r })) },
    { weight: 1, arbitrary: fc.record({ mean: nsIn(lo, hi), cap: nsIn(hi, 4 * hi) }).map((r): LatencyModel => ({ kind: 'exponential', ...r })) },
  );

const accessArb = (pages: number): fc.Arbitrary<Access> =>
  fc.record({ page: fc.integer({ min: 0, max: pages - 1 }), word: fc.integer({ min: 0, max: 15 }), value: fc.integer({ min: 0, max: 0xffffffff }) });

const atomicOpArb = (pages: number): fc.Arbitrary<AtomicOpModel> =>
  fc.oneof(
    { weight: 3, arbitrary: fc.tuple(fc.constantFrom('copy_from_user' as const, 'copy_to_user' as const, 'kernel_read' as const, 'kernel_write' as const), accessArb(pages)).map(([op, a]): AtomicOpModel => ({ op, ...a })) },
    { weight: 1, arbitrary: nsIn(US, 30 * US).map((ns): AtomicOpModel => ({ op: 'compute', ns })) },
  );

const atomicKindArb = fc.constantFrom<AtomicKind>('preempt', 'irq', 'rcu', 'spin');

const kernelOpArb = (pages: number): fc.Arbitrary<KernelOpModel> =>
  fc.oneof(
    { weight: 4, arbitrary: atomicOpArb(pages) },
    { weight: 1, arbitrary: nsIn(5 * US, 500 * US).map((ns): KernelOpModel => ({ op: 'sleep', ns })) },
    { weight: 1, arbitrary: fc.constant<KernelOpModel>({ op: 'schedule' }) },
    {
      weight: 2,
      arbitrary: fc
        .record({ kind: atomicKindArb, lock: fc.integer({ min: 0, max: 1 }), raw: fc.boolean(), body: fc.array(atomicOpArb(pages), { minLength: 1, maxLength: 3 }) })
        .map((r): KernelOpModel => ({ op: 'atomic', ...r })),
    },
  );

const simpleUserOpArb = (pages: number): fc.Arbitrary<SimpleUserOpModel> =>
  fc.oneof(
    { weight: 4, arbitrary: fc.tuple(fc.constantFrom('read' as const, 'write' as const), accessArb(pages)).map(([op, a]): SimpleUserOpModel => ({ op, ...a })) },
    { weight: 2, arbitrary: nsIn(US, 200 * US).map((ns): SimpleUserOpModel => ({ op: 'compute', ns })) },
    { weight: 1, arbitrary: fc.constant<SimpleUserOpModel>({ op: 'yield' }) },
  );

const userOpArb = (pages: number): fc.Arbitrary<UserOpModel> =>
  fc.oneof(
    { weight: 6, arbitrary: simpleUserOpArb(pages) },
    { weight: 1, arbitrary: nsIn(10 * US, 1000 * US).map((ns): UserOpModel => ({ op: 'sleep', ns })) },
    { weight: 2, arbitrary: fc.array(kernelOpArb(pages), { minLength: 1, maxLength: 4 }).map((body): UserOpModel => ({ op: 'syscall', body })) },
    {
      weight: 1,
      arbitrary: fc.record({ times: fc.integer({ min: 2, max: 3 }), body: fc.array(simpleUserOpArb(pages), { minLength: 1, maxLength: 3 }) }).map((r): UserOpModel => ({ op: 'loop', ...r })),
    },
  );

const kthreadOpArb: fc.Arbitrary<KthreadOpModel> = fc.oneof(
  { weight: 3, arbitrary: nsIn(US, 200 * US).map((ns): KthreadOpModel => ({ op: 'compute', ns })) },
  { weight: 2, arbitrary: nsIn(10 * US, 500 * US).map((ns): KthreadOpModel => ({ op: 'sleep', ns })) },
  { weight: 1, arbitrary: fc.constant<KthreadOpModel>({ op: 'schedule' }) },
  { weight: 2, arbitrary: fc.record({ kind: atomicKindArb, lock: fc.integer({ min: 0, max: 1 }), raw: fc.boolean(), ns: nsIn(US, 50 * US) }).map((r): KthreadOpModel => ({ op: 'atomic', ...r })) },
);

const taskCommonArb: fc.Arbitrary<TaskCommon> = fc.record({
  cpu: opt(fc.integer({ min: 0, max: 63 })),
  pin: fc.boolean(),
  start: fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: nsIn(0, 500 * US) }),
  nice: fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 1, arbitrary: fc.integer({ min: -5, max: 5 }) }),
});

const taskArb = (l: Limits): fc.Arbitrary<TaskModel> =>
  fc.oneof(
    {
      weight: 5,
      arbitrary: fc
        .tuple(taskCommonArb, opt(fc.integer({ min: 0, max: 1 }), 3), fc.array(userOpArb(l.pages), { minLength: 1, maxLength: l.ops }))
        .map(([c, mm, program]): TaskModel => ({ ...c, kind: 'user', mm, program })),
    },
    { weight: 1, arbitrary: fc.tuple(taskCommonArb, fc.array(kthreadOpArb, { minLength: 1, maxLength: l.ops })).map(([c, program]): TaskModel => ({ ...c, kind: 'kthread', program })) },
  );

/** Events at fixed times come after boot: an NMI before the guest loaded its IDT is a triple fault by design. */
export const EARLIEST_AT = 100 * US;

const timingArb: fc.Arbitrary<Timing> = fc.oneof(
  { weight: 2, arbitrary: nsIn(EARLIEST_AT, 3000 * US).map((t): Timing => ({ kind: 'at', t })) },
  {
    weight: 3,
    arbitrary: fc
      .record({
        trigger: fc.integer({ min: 0, max: TRIGGERS.length - 1 }),
        nth: fc.integer({ min: 1, max: 3 }),
        cpu: opt(fc.integer({ min: 0, max: 63 }), 3),
        // Mostly tiny delays: the races live within a few instructions of the trigger.
        after: fc.oneof({ weight: 3, arbitrary: nsIn(0, 2 * US) }, { weight: 1, arbitrary: nsIn(0, 300 * US) }),
      })
      .map((r): Timing => ({ kind: 'on', ...r })),
  },
);

const cpuArb = fc.integer({ min: 0, max: 63 });
const gapArb = fc.oneof(nsIn(0, 5 * US), nsIn(5 * US, 500 * US));

const actionArb = (l: Limits): fc.Arbitrary<ActionModel> =>
  fc.oneof(
    { weight: 4, arbitrary: cpuArb.map((cpu): ActionModel => ({ do: 'nmi', cpu })) },
    // An NMI (perf) within the first instructions of an async #PF handler: where CR2 and the APF flags are read.
    { weight: 2, arbitrary: fc.record({ nth: fc.integer({ min: 1, max: 2 }), frac: fc.integer({ min: 0, max: 1000 }), every: fc.boolean() }).map((r): ActionModel => ({ do: 'perf_nmi', ...r })) },
    { weight: 2, arbitrary: fc.record({ cpu: cpuArb, ns: nsIn(2 * US, 100 * US) }).map((r): ActionModel => ({ do: 'smi', ...r })) },
    { weight: 2, arbitrary: fc.record({ cpu: cpuArb, gap: gapArb }).map((r): ActionModel => ({ do: 'apf_cycle', ...r })) },
    { weight: 2, arbitrary: fc.record({ cpu: cpuArb, gap: gapArb }).map((r): ActionModel => ({ do: 'lapic_cycle', ...r })) },
    { weight: 1, arbitrary: fc.record({ cpu: cpuArb, gap: gapArb, viaInit: fc.boolean() }).map((r): ActionModel => ({ do: 'cpu_cycle', ...r })) },
    { weight: 1, arbitrary: gapArb.map((gap): ActionModel => ({ do: 'suspend_cycle', gap })) },
    { weight: 2, arbitrary: fc.record({ cpu: cpuArb, intFirst: fc.boolean(), reset: fc.boolean() }).map((r): ActionModel => ({ do: 'save_restore', ...r })) },
    { weight: 2, arbitrary: fc.array(fc.integer({ min: 0, max: l.pages - 1 }), { minLength: 1, maxLength: 3 }).map((pages): ActionModel => ({ do: 'evict', pages })) },
    { weight: 1, arbitrary: fc.record({ cpu: cpuArb, vector: fc.constantFrom(0x31, 0x41, 0x51, 0x61, 0xb0) }).map((r): ActionModel => ({ do: 'irq', ...r })) },
    { weight: 2, arbitrary: fc.record({ faultCpu: cpuArb, nth: fc.integer({ min: 0, max: 2 }) }).map((r): ActionModel => ({ do: 'page_ready', ...r })) },
  );

/** The model arbitrary for `opts` (profiles fixed, everything else random). */
export function scenarioModelArb(opts: GenOptions): fc.Arbitrary<ScenarioModel> {
  const l = SIZE_LIMITS[opts.size];
  return fc.record({
    seed: fc.integer({ min: 0, max: 0x7fffffff }),
    vcpus: fc.integer({ min: 1, max: l.vcpus }),
    host: fc.record({
      exitCost: opt(nsIn(100, 2 * US), 2),
      allocFailure: opt(fc.integer({ min: 2, max: 8 }), 5),
      jitter: fc.oneof({ weight: 1, arbitrary: fc.constant(0) }, { weight: 3, arbitrary: nsIn(1, 3 * US) }),
      tokenCounter: opt(fc.constantFrom(0xffffe, 0xfffff), 6),
    }),
    guest: fc.record({
      preempt: fc.oneof({ weight: 3, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
      hz: opt(fc.constantFrom(100, 1000), 4),
      nmiRead: opt(fc.integer({ min: 0, max: l.pages }), 2),
      nmiSavesCr2: fc.boolean(),
    }),
    pages: fc.array(fc.constantFrom<Backing>('swapped', 'swapped', 'resident', 'remote'), { minLength: 1, maxLength: l.pages }),
    swap: opt(latencyArb(10 * US, 500 * US), 4),
    remote: opt(latencyArb(50 * US, 1000 * US), 4),
    limitPages: opt(fc.integer({ min: 1, max: 4 }), 4),
    evictions: fc.array(fc.record({ t: nsIn(0, 3000 * US), pages: fc.array(fc.integer({ min: 0, max: l.pages - 1 }), { minLength: 1, maxLength: 3 }) }), { maxLength: 2 }),
    tasks: fc.array(taskArb(l), { minLength: 1, maxLength: l.tasks }),
    events: fc.array(fc.record({ when: timingArb, action: actionArb(l) }), { maxLength: l.events }),
  });
}

// ---------------------------------------------------------------------------------------------
// Model → scenario document
// ---------------------------------------------------------------------------------------------

function latencyDoc(l: LatencyModel): Json {
  switch (l.kind) {
    case 'fixed':
      return time(l.ns);
    case 'uniform':
      return { uniform: { min: time(l.min), max: time(l.min + l.span) } };
    case 'exponential':
      return { exponential: { mean: time(l.mean), max: time(Math.max(l.cap, l.mean)) } };
  }
}

/** Word offsets are per task (16 words each), so tasks sharing a page never overwrite each other's data. */
const offsetOf = (task: number, a: Access): number => ((task * 16 + a.word) * 4) % 4096;

interface DocCtx {
  readonly task: number;
  readonly pages: number;
  readonly used: Set<number>;
}

function accessDoc(c: DocCtx, op: string, a: Access, write: boolean): JsonObject {
  const page = a.page % c.pages;
  c.used.add(page);
  const offset = offsetOf(c.task, a);
  return compact({ op, page: pageGva(page), offset: offset === 0 ? undefined : offset, write: op === 'touch' || op === 'kernel_touch' ? (write ? true : undefined) : undefined, value: write ? a.value : undefined });
}

function atomicOpDoc(c: DocCtx, o: AtomicOpModel): JsonObject {
  switch (o.op) {
    case 'compute':
      return { op: 'compute', for: time(o.ns) };
    case 'copy_from_user':
      return accessDoc(c, 'copy_from_user', o, false);
    case 'copy_to_user':
      return accessDoc(c, 'copy_to_user', o, true);
    case 'kernel_read':
      return accessDoc(c, 'kernel_touch', o, false);
    case 'kernel_write':
      return accessDoc(c, 'kernel_touch', o, true);
  }
}

const LOCKS = ['fuzz_lock_a', 'fuzz_lock_b'];

function sectionDoc(kind: AtomicKind, lock: number, raw: boolean, body: readonly JsonObject[]): JsonObject[] {
  switch (kind) {
    case 'preempt':
      return [{ op: 'preempt_disable' }, ...body, { op: 'preempt_enable' }];
    case 'irq':
      return [{ op: 'local_irq_disable' }, ...body, { op: 'local_irq_enable' }];
    case 'rcu':
      return [{ op: 'rcu_read_lock' }, ...body, { op: 'rcu_read_unlock' }];
    case 'spin': {
      const l = compact({ lock: LOCKS[lock % LOCKS.length] ?? 'fuzz_lock_a', raw: raw ? true : undefined });
      return [{ op: 'spin_lock', ...l }, ...body, { op: 'spin_unlock', ...l }];
    }
  }
}

function kernelOpsDoc(c: DocCtx, ops: readonly KernelOpModel[]): JsonObject[] {
  const out: JsonObject[] = [];
  for (const o of ops) {
    if (o.op === 'sleep') out.push({ op: 'sleep', for: time(o.ns) });
    else if (o.op === 'schedule') out.push({ op: 'schedule' });
    else if (o.op === 'atomic') {
      // Under a spinlock only compute: a holder that touches a user page may sit in an artificial
      // halt for the whole page-in (milliseconds for a remote page) while other CPUs spin on the
      // lock one PAUSE at a time, which is correct but costs millions of events.
      const body = o.kind === 'spin' ? o.body.filter((b) => b.op === 'compute') : o.body;
      out.push(...sectionDoc(o.kind, o.lock, o.raw, (body.length > 0 ? body : [{ op: 'compute' as const, ns: US }]).map((b) => atomicOpDoc(c, b))));
    }
    else out.push(atomicOpDoc(c, o));
  }
  return out;
}

function simpleUserOpDoc(c: DocCtx, o: SimpleUserOpModel): JsonObject {
  switch (o.op) {
    case 'read':
      return accessDoc(c, 'touch', o, false);
    case 'write':
      return accessDoc(c, 'touch', o, true);
    case 'compute':
      return { op: 'compute', for: time(o.ns) };
    case 'yield':
      return { op: 'yield' };
  }
}

function userOpDoc(c: DocCtx, o: UserOpModel): JsonObject {
  switch (o.op) {
    case 'sleep':
      return { op: 'sleep', for: time(o.ns) };
    case 'syscall':
      return { op: 'syscall', body: kernelOpsDoc(c, o.body) };
    case 'loop':
      return { op: 'loop', times: o.times, body: o.body.map((b) => simpleUserOpDoc(c, b)) };
    default:
      return simpleUserOpDoc(c, o);
  }
}

function kthreadOpsDoc(ops: readonly KthreadOpModel[]): JsonObject[] {
  const out: JsonObject[] = [];
  for (const o of ops) {
    if (o.op === 'compute' || o.op === 'sleep') out.push({ op: o.op, for: time(o.ns) });
    else if (o.op === 'schedule') out.push({ op: 'schedule' });
    else out.push(...sectionDoc(o.kind, o.lock, o.raw, [{ op: 'compute', for: time(o.ns) }]));
  }
  return out;
}

/** Token of the `nth` (0-based) fault on `vcpu`, as the host's allocator hands them out. */
export function predictedToken(vcpu: number, nth: number, tokenCounter: number, avoidZero: boolean): number {
  let id = tokenCounter >>> 0;
  let token = 0;
  for (let i = 0; i <= nth; i++) {
    const a = allocApfToken(id, vcpu, { avoidZero });
    token = a.token;
    id = a.nextId;
  }
  return token >>> 0;
}

/** The scenario document of a model. */
export function toScenarioDoc(m: ScenarioModel, opts: GenOptions, name = 'fuzz'): JsonObject {
  const n = m.vcpus;
  const cpuOf = (c: number): number => c % n;
  const pages = m.pages.length;
  const used = new Set<number>();
  const guestCfg = resolveGuestProfile(opts.guest, opts.guestToggles);
  const hostCfg = resolveHostProfile(opts.host, opts.hostToggles);

  // A page-ready the scenario injects (wake before wait) goes to a relay vCPU on which no user task
  // runs: the injection writes the token slot directly, and on a vCPU with page-readies of its own
  // it could overwrite one the host posted (a real host only writes a free slot).
  const relay =
    n >= 2 && guestCfg.facts.pageReady === 'interrupt' && hostCfg.toggles.interrupt_page_ready && m.events.some((e) => e.action.do === 'page_ready') ? n - 1 : null;
  const userCpus = relay === null ? n : n - 1;

  // --- tasks ---
  const tasks: JsonObject[] = m.tasks.map((t, i) => {
    const user = t.kind === 'user';
    const cpu = t.cpu === null ? undefined : user ? t.cpu % userCpus : cpuOf(t.cpu);
    const common = compact({
      name: `t${i}`,
      cpu,
      affinity: t.pin && cpu !== undefined ? [cpu] : user && relay !== null ? Array.from({ length: userCpus }, (_, c) => c) : undefined,
      start: t.start === 0 ? undefined : time(t.start),
      nice: t.nice === 0 ? undefined : t.nice,
    });
    if (t.kind === 'kthread') return { ...common, kind: 'kthread', program: kthreadOpsDoc(t.program) };
    const c: DocCtx = { task: i, pages, used };
    return { ...common, ...compact({ mm: t.mm === null ? undefined : `proc${t.mm}` }), program: t.program.map((o) => userOpDoc(c, o)) };
  });
  const usedPages = [...used].sort((a, b) => a - b);
  const mapped = (ps: readonly number[]): number[] => [...new Set(ps.map((p) => p % pages))].filter((p) => used.has(p)).sort((a, b) => a - b);

  // --- host memory ---
  const hostPages = usedPages.filter((p) => (m.pages[p] ?? 'resident') !== 'resident').map((p) => ({ page: pageGva(p), backing: m.pages[p] ?? 'swapped' }));
  const evictions = m.evictions.map((e) => ({ at: time(e.t), pages: mapped(e.pages).map(pageGva) })).filter((e) => e.pages.length > 0);
  const latency = compact({ swap: m.swap === null ? undefined : latencyDoc(m.swap), remote: m.remote === null ? undefined : latencyDoc(m.remote) });

  // --- events ---
  const events: JsonObject[] = [];
  let pageReadyEvents = false;
  // With work-item allocations failing, the wake-all of a re-enable can fail too (spec §3.9 step 2:
  // -ENOMEM, ignored). A sleeper whose page-in the host dropped at the disable is then never woken:
  // real KVM behaves the same, so the two are not generated together.
  const wakeAllMayFail = m.host.allocFailure !== null;
  // Time for a guest's console request to finish after its last traced step (the MSR exit that
  // switched the LAPIC off, the dying CPU's last record) before the next request may follow it.
  const settle = 10 * US + 4 * m.host.jitter + 2 * (m.host.exitCost ?? 1000);
  const lifecycle = new Set<string>();
  // A CPU whose LAPIC the scenario switches off is deaf to the management console meanwhile (its
  // requests arrive as fixed interrupts): no other console request goes to it, and with any LAPIC
  // cycle there is no suspend or hotplug (their requests go to CPU 0 or another online CPU).
  const deaf = new Set<number>();
  for (const e of m.events) if (e.action.do === 'lapic_cycle') deaf.add(cpuOf(e.action.cpu));
  for (const e of m.events) {
    const w = e.when;
    const timing = (extra: number): JsonObject =>
      w.kind === 'at'
        ? { at: time(w.t + extra) }
        : compact({ on: { ...(TRIGGERS[w.trigger % TRIGGERS.length] ?? { event: 'kvm_async_pf_not_present' }), ...(w.cpu === null ? {} : { cpu: cpuOf(w.cpu) }) }, nth: w.nth === 1 ? undefined : w.nth, after: w.after + extra === 0 ? undefined : time(w.after + extra) });
    const a = e.action;
    switch (a.do) {
      case 'nmi':
        events.push({ ...timing(0), do: 'nmi', cpu: cpuOf(a.cpu) });
        break;
      case 'perf_nmi': {
        // Aimed at the handler's first instruction boundaries: the APF flags are read and reset
        // ~57 ns after delivery without jitter, ~2.2 jitters later with it (measured); the NMI comes
        // at 80% to 125% of that, around the flags read and the CR2 read.
        const after = Math.round((57 + 2.2 * m.host.jitter) * (0.8 + (0.45 * a.frac) / 1000));
        // On every vCPU, on the nth async #PF (or every one from the nth on): perf samples everywhere.
        for (let cpu = 0; cpu < n; cpu++) {
          events.push({
            on: { event: 'kvm_inj_exception', cpu, fields: { async: true } },
            ...compact({ nth: a.nth === 1 ? undefined : a.nth, after: after === 0 ? undefined : time(after), every: a.every ? true : undefined }),
            do: 'nmi',
            cpu,
          });
        }
        break;
      }
      case 'smi':
        events.push({ ...timing(0), do: 'smi', cpu: cpuOf(a.cpu), duration: time(a.ns) });
        break;
      case 'apf_cycle':
        if (wakeAllMayFail || deaf.has(cpuOf(a.cpu))) break;
        events.push({ ...timing(0), do: 'apf_disable', cpu: cpuOf(a.cpu) }, { ...timing(a.gap + 1), do: 'apf_enable', cpu: cpuOf(a.cpu) });
        break;
      case 'lapic_cycle': {
        // The enable follows the disable's SPIV write (one cycle per CPU): a request sent while the
        // console is still switching the LAPIC off can be lost with it (see docs/fuzzing.md).
        const cpu = cpuOf(a.cpu);
        if (lifecycle.has(`lapic${cpu}`)) break;
        lifecycle.add(`lapic${cpu}`);
        events.push({ ...timing(0), do: 'lapic_disable', cpu }, { on: { event: 'kvm_lapic_disable', cpu }, after: time(a.gap + settle), do: 'lapic_enable', cpu });
        break;
      }
      case 'cpu_cycle': {
        // Never the boot CPU; one hotplug cycle per CPU and none together with suspend, so an
        // online or INIT always finds the CPU offline.
        if (n < 2 || deaf.size > 0) break;
        const cpu = 1 + (a.cpu % (n - 1));
        if (lifecycle.has(`cpu${cpu}`) || lifecycle.has('suspend')) break;
        lifecycle.add(`cpu${cpu}`);
        events.push({ ...timing(0), do: 'cpu_offline', cpu });
        // Online (or INIT) once the CPU is really down: a request while it is still dying is refused.
        events.push({ on: { event: 'cpu_offline', cpu }, after: time(a.gap + settle), do: a.viaInit ? 'init' : 'cpu_online', cpu });
        // After an INIT an AP waits for a SIPI: send it, as the kernel's own bring-up does.
        if (a.viaInit) events.push({ on: { event: 'kvm_vcpu_init', cpu }, after: time(1000), do: 'sipi', cpu, vector: TRAMPOLINE_SIPI_VECTOR });
        break;
      }
      case 'suspend_cycle':
        if (deaf.size > 0 || [...lifecycle].some((k) => k.startsWith('cpu') || k === 'suspend')) break;
        lifecycle.add('suspend');
        events.push({ ...timing(0), do: 'suspend' }, { ...timing(a.gap + 1), do: 'resume' });
        break;
      case 'save_restore':
        if (wakeAllMayFail && a.reset) break;
        events.push({ ...timing(0), do: 'save_restore', cpu: cpuOf(a.cpu), ...compact({ order: a.intFirst ? 'int-en' : undefined, reset: a.reset ? undefined : false }) });
        break;
      case 'evict': {
        const ps = mapped(a.pages);
        if (ps.length > 0) events.push({ ...timing(0), do: 'evict', pages: ps.map(pageGva) });
        break;
      }
      case 'irq':
        events.push({ ...timing(0), do: 'irq', cpu: cpuOf(a.cpu), vector: a.vector });
        break;
      case 'page_ready': {
        // A page-ready on (preferably) another vCPU for the token the nth fault on faultCpu will get:
        // the ABI lets the host send it anywhere, and it may overtake the faulting task's wait.
        if (relay === null) break;
        const fault = a.faultCpu % userCpus;
        const token = predictedToken(fault, a.nth, m.host.tokenCounter ?? 0, hostCfg.toggles.nonzero_token);
        if (token === 0) break;
        pageReadyEvents = true;
        // Right after the host injected that fault (when its timing is a trace match), so that it
        // overtakes the faulting task's wait; else whenever the event's own timing says.
        const overtake = w.kind === 'on' ? { on: { event: 'kvm_async_pf_not_present', cpu: fault, fields: { injected: true } }, ...compact({ nth: a.nth === 0 ? undefined : a.nth + 1, after: w.after === 0 ? undefined : time(w.after % (2 * US)) }) } : timing(0);
        events.push({ ...overtake, do: 'page_ready', cpu: relay, token: hexStr(token) });
        break;
      }
    }
  }

  // --- machine ---
  const guestToggles: Record<string, boolean> = { ...opts.guestToggles };
  if (!m.guest.preempt && opts.guestToggles.config_preempt === undefined && opts.guestToggles.preempt_count === undefined) guestToggles.config_preempt = false;
  if (!m.guest.nmiSavesCr2 && guestCfg.toggles.cr2_read_at_entry && opts.guestToggles.nmi_saves_cr2 === undefined) guestToggles.nmi_saves_cr2 = false;
  // perf's NMI reads the interrupted task's user stack; an address nobody maps makes that read fault.
  const perf = m.events.some((e) => e.action.do === 'perf_nmi');
  const nmiRead =
    m.guest.nmiRead === null ? (perf ? NMI_FAULTING_READ : undefined) : m.guest.nmiRead < pages && used.has(m.guest.nmiRead) ? pageGva(m.guest.nmiRead) : NMI_FAULTING_READ;
  const machine = {
    vcpus: n,
    memory: '2MiB',
    guest: compact({
      profile: opts.guest,
      toggles: Object.keys(guestToggles).length > 0 ? guestToggles : undefined,
      hz: m.guest.hz ?? undefined,
      nmiUserRead: nmiRead,
    }),
    host: compact({
      profile: opts.host,
      toggles: Object.keys(opts.hostToggles).length > 0 ? (opts.hostToggles as Record<string, boolean>) : undefined,
      exitCost: m.host.exitCost === null ? undefined : time(m.host.exitCost),
      allocFailure: m.host.allocFailure === null ? undefined : `1/${m.host.allocFailure}`,
      tokenCounter: m.host.tokenCounter === null ? undefined : hexStr(m.host.tokenCounter),
      stepJitter: m.host.jitter === 0 ? undefined : time(m.host.jitter),
    }),
  };

  return compact({
    name,
    seed: m.seed,
    machine,
    hostMemory: compact({
      pages: hostPages.length > 0 ? hostPages : undefined,
      latency: Object.keys(latency).length > 0 ? latency : undefined,
      // At least one frame per task that may be faulting at the same time: below that, two tasks can
      // evict each other's page between page-in and retry for ever (thrashing is not what this is about).
      limitPages: m.limitPages === null ? undefined : Math.max(m.limitPages, m.tasks.filter((t) => t.kind === 'user').length + 1),
      evictions: evictions.length > 0 ? evictions : undefined,
    }),
    tasks,
    events: events.length > 0 ? events : undefined,
    // With a page-ready injected on the relay vCPU (as in scenarios/wake-before-wait-dummy.json): the
    // interrupts checker reports it as one the host did not send, and the early wake lets a task
    // finish before the host's own page-ready for that token arrives, which apf-answered would
    // report as unanswered at the end of the run.
    checkers: pageReadyEvents ? { interrupts: false, 'apf-answered': false } : undefined,
    budget: { ...FUZZ_BUDGET },
  });
}

/** The arbitrary of scenario documents (models mapped through `toScenarioDoc`). */
export function scenarioDocArb(opts: GenOptions): fc.Arbitrary<JsonObject> {
  return scenarioModelArb(opts).map((m) => toScenarioDoc(m, opts));
}
