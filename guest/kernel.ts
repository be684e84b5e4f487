/**
 * The simulated guest kernel: per-CPU state, tasks, the GuestCode each vCPU runs, and the public
 * `GuestKernel` API the harness codes against.
 *
 * The kernel's code (scheduler, IDT entries, kvm.c, workloads, lifecycle paths) lives in the
 * sibling modules as generator functions over this object; this file holds the state and the
 * plumbing between the vCPUs and that code.
 */
import type { Gva } from '../shared-abi/addr';
import type { GuestCode, Insn, InsnResult, NestedVmexit, ResetKind, TrapFrame } from '../shared-abi/arch';
import { KVM_FEATURE, type KvmFeatureName } from '../shared-abi/cpuid';
import type { GuestMemory } from '../sim/memory';
import type { Simulation } from '../sim/engine';
import { forwardEmit, type FieldlessEventName, type TraceEventFrom, type TraceFields, type TraceFieldsOf } from '../sim/trace';
import type { Vcpu } from '../sim/cpu/vcpu';
import { Frame, FrameRunner, GuestCodeError, type Code } from './code';
import { idtHandler } from './entry';
import type { ApfHandlers, BugKind } from './handlers';
import { withRuleChecks, type ApfStep } from './handler-rules';
import { makeApfApi, profileDefaultHandlers } from './kvm';
import { GuestLayout, GuestLayoutPlan, directMap } from './layout';
import { apStartup, bootCpu0, cpuResetPath } from './lifecycle';
import { isAdminAction, MGMT_VECTOR, type AdminAction } from './admin';
import { resolveGuestProfile, type GuestProfileName, type GuestToggle, type ResolvedGuestConfig } from './profiles';
import type { KernelOp, TaskSpec, UserOp } from './program';
import { SleeperTable } from './sleepers';
import { Task, SpinLock, type KTimer, type TaskState } from './task';
import { kthreadProgram, userTaskStack } from './workload';
import { idleProgram } from './idle';
import type { DesignName } from '../shared-abi/designs';
import { guestDesign, type GuestDesign } from './designs';

export interface GuestKernelOptions {
  readonly sim: Simulation;
  readonly memory: GuestMemory;
  /** The vCPUs (sim/cpu) the kernel runs on; CPU n of the guest is cpus[n]. */
  readonly cpus: readonly Vcpu[];
  readonly profile: GuestProfileName;
  readonly toggles?: Partial<Record<GuestToggle, boolean>>;
  readonly tasks: readonly TaskSpec[];
  /** Replacement async-PF handlers (docs/handlers.md); the profile's defaults fill the rest. */
  readonly handlers?: Partial<ApfHandlers>;
  /** Async-PF design (guest/designs; default `current`). */
  readonly design?: DesignName;
  /** Timer tick frequency (default 250). */
  readonly hz?: number;
  /** Hung-task timeout in virtual ns (default 120 s). 0 disables the detector. */
  readonly hungTaskTimeoutNs?: number;
  /**
   * The management console device's interrupt line (AdminAction requests, vector 0x40): raise
   * `vector` on vCPU `cpu`. The composer wires it to the host (kvm.injectIrq).
   */
  readonly raiseIrq?: (cpu: number, vector: number) => void;
  /**
   * An NMI line to each vCPU (kvm.injectNmi). Used for `lapic_enable` requests: a CPU whose LAPIC
   * is software-disabled cannot receive the console's fixed interrupt, so the request is
   * signalled with an NMI and the NMI handler picks it up.
   */
  readonly raiseNmi?: (cpu: number) => void;
  /** Address the perf-style NMI handler reads in the interrupted task's address space (default: none). */
  readonly nmiUserRead?: Gva;
  /**
   * A kernel address the idle task reads with interrupts enabled on every pass of its idle loop
   * (default: none). Stands in for idle-time kernel code (cpuidle, tick management) touching memory
   * the host may have swapped out: a fault there is a kernel-mode fault in the idle task.
   */
  readonly idleRead?: Gva;
  /** The first `n` kzalloc(GFP_ATOMIC) calls for dummy nodes fail (default 0). */
  readonly dummyAllocFailures?: number;
  /** Stop the simulation when the guest panics (default true). */
  readonly stopOnPanic?: boolean;
  /** An in-kernel hypervisor running nested guests (guest/nested): this kernel is an L1. */
  readonly hypervisor?: GuestHypervisor;
  /**
   * The physical layout, when the caller planned it already (`planGuestLayout` with this memory
   * size, these CPUs and these tasks) because it needed the task pages' frames first; planned here
   * otherwise.
   */
  readonly layout?: GuestLayoutPlan;
}

/** Plan the physical layout a kernel with these tasks uses (which frame backs each task page). */
export function planGuestLayout(memorySize: number, cpus: number, tasks: readonly TaskSpec[]): GuestLayoutPlan {
  return new GuestLayoutPlan(
    memorySize,
    cpus,
    tasks.filter((t) => (t.kind ?? 'user') === 'user').map((t) => ({ mm: mmName(t), pages: t.pages ?? [] })),
  );
}

/**
 * The in-kernel hypervisor of an L1 kernel (guest/nested implements it): the code of the
 * `kvm_run` kernel operation, and where the vCPU reports a nested VM-exit.
 */
export interface GuestHypervisor {
  /** ioctl(KVM_RUN) for nested guest `vcpu`, on the current task, in kernel mode with IRQs on. */
  kvmRun(k: GuestKernel, vcpu: string): Code;
  /** The nested guest running on `pc` exited (the CPU is back in L1 with IF=0). */
  vmexit(pc: PerCpu, exit: NestedVmexit): void;
}

/** Lifecycle of a CPU as the kernel sees it. */
export type CpuState = 'down' | 'booting' | 'online' | 'dying' | 'offline' | 'suspended' | 'stopped' | 'next_kernel';

/** Lifecycle of the kernel. */
export type KernelMode = 'booting' | 'running' | 'panicked' | 'rebooted' | 'kexec' | 'crashed';

export interface PanicInfo {
  readonly message: string;
  readonly t: number;
  readonly cpu: number;
}

/** Public view of a task. */
export interface TaskView {
  readonly id: number;
  readonly name: string;
  readonly kind: 'user' | 'kthread' | 'idle';
  readonly state: TaskState;
  readonly cpu: number;
  readonly running: boolean;
  readonly exitCode: number | null;
  readonly switches: number;
  readonly waitReason: string;
}

export interface GuestStats {
  readonly mode: KernelMode;
  readonly cpus: ReadonlyArray<{ id: number; state: CpuState; apfEnabled: boolean; curr: string; runnable: number }>;
  readonly tasks: readonly TaskView[];
  readonly counters: Readonly<Record<string, number>>;
  readonly sleepers: { linked: number; dummiesLinked: number; dummiesAllocated: number; dummiesConsumed: number; dummiesFreed: number; dummiesLeaked: number };
  readonly warnings: readonly string[];
  readonly bugs: ReadonlyArray<{ kind: BugKind; message: string }>;
}

/** Per-CPU kernel state, and the GuestCode the vCPU runs. */
export class PerCpu implements GuestCode {
  readonly runner: FrameRunner;
  idle!: Task;
  curr!: Task;
  /** Runnable tasks waiting for this CPU (not the current one). */
  readonly queue: Task[] = [];
  readonly rqLock: SpinLock;
  state: CpuState = 'down';
  readonly timers: KTimer[] = [];
  /** TSC deadline currently programmed (0 = none). */
  programmed = 0;
  /** Next periodic tick (Infinity while the tick is stopped, i.e. idle). */
  tickDeadline = Infinity;
  /** smp_call_function work queued for this CPU (run by the 0xfc handler). */
  readonly calls: Array<() => Code> = [];
  /** APF enabled on this CPU (kernel bookkeeping mirror for stats; the real flag is in memory). */
  apfOn = false;
  /** APF-area accesses and MSR writes of the handler running now, for its rule checks (guest/handler-rules.ts); null outside. */
  apfSteps: ApfStep[] | null = null;
  /** Page-table root loaded in CR3 (what the kernel last wrote). */
  cr3 = 0;
  /** LAPIC software-enabled (as the kernel last programmed it). */
  lapicOn = false;
  /** Generation of the APF area in use (1 after kexec: the next kernel's). */
  apfGeneration = 0;
  /** Work for this CPU's hotplug thread (cpuhp/N) and the thread itself (created on first use). */
  readonly hpWork: Array<() => Code> = [];
  hpThread: Task | null = null;
  /** Which IDT is loaded: none (before lidt: a missing gate escalates), the kernel's, or the next kernel's. */
  idt: 'none' | 'kernel' | 'next_kernel' = 'none';

  constructor(
    readonly k: GuestKernel,
    readonly id: number,
    readonly vcpu: Vcpu,
  ) {
    this.rqLock = k.lock(`rq${id}`, true);
    this.runner = new FrameRunner(
      () => this.curr.stack,
      () => {
        throw new GuestCodeError(`cpu${id}: task '${this.curr.name}' has an empty stack`);
      },
      `cpu${id}`,
    );
  }

  get online(): boolean {
    return this.state === 'online';
  }

  /** This CPU's APF area (direct-map address). */
  apfAreaGva(): Gva {
    return directMap(this.k.layout.apfAreaGpa(this.id, this.apfGeneration));
  }

  /** This CPU's private kernel data (the per-CPU enabled bool at +0, preempt_count mirror at +8). */
  percpuGva(offset = 0): Gva {
    return directMap(this.k.layout.percpuGpa(this.id) + offset);
  }

  // --- GuestCode ---

  fetch(): Insn {
    const prev = this.k.executing;
    this.k.executing = this;
    try {
      return this.runner.fetch();
    } finally {
      this.k.executing = prev;
    }
  }

  retire(result: InsnResult): void {
    const prev = this.k.executing;
    this.k.executing = this;
    try {
      this.runner.retire(result);
    } finally {
      this.k.executing = prev;
    }
  }

  vector(tf: TrapFrame): boolean {
    const interrupted = this.runner.top();
    // An event taken while HLT waits completes the HLT (the saved RIP is past it).
    const p = interrupted.pending;
    if (p !== null && (p.op === 'hlt' || p.op === 'sti_hlt') && tf.savedCpl === 0) interrupted.skipPending();
    const h = idtHandler(this.k, this, tf, interrupted);
    if (h === null) return false;
    this.k.count(`vector_${tf.event.kind === 'exception' || tf.event.kind === 'interrupt' ? tf.event.vector : tf.event.kind}`);
    this.runner.push(new Frame('entry', h.name, h.code, tf));
    return true;
  }

  reset(kind: ResetKind): void {
    cpuResetPath(this.k, this, kind);
  }

  vmexit(exit: NestedVmexit): void {
    const h = this.k.hypervisor;
    if (h === undefined) throw new GuestCodeError(`cpu${this.id}: nested VM-exit in a kernel without a hypervisor`);
    h.vmexit(this, exit);
  }
}

/**
 * The guest kernel. Construct it, `boot()` it (attaches to the vCPUs and loads memory), then let
 * the host run the vCPUs.
 */
export class GuestKernel {
  readonly sim: Simulation;
  readonly memory: GuestMemory;
  readonly config: ResolvedGuestConfig;
  readonly layout: GuestLayout;
  readonly cpus: PerCpu[];
  readonly sleepers: SleeperTable;
  readonly handlers: ApfHandlers;
  readonly defaults: ApfHandlers;
  /** The async-PF design's guest half (guest/designs), chosen once here. */
  readonly design: GuestDesign;
  readonly hz: number;
  readonly tickNs: number;
  readonly hungTaskTimeoutNs: number;
  readonly nmiUserRead: Gva | null;
  readonly idleRead: Gva | null;
  readonly stopOnPanic: boolean;
  /** Dummy-node allocations still to fail (`dummyAllocFailures`). */
  dummyAllocFailuresLeft: number;
  /** All tasks (idle tasks and kthreads included). */
  readonly allTasks: Task[] = [];
  /** The CPU whose instruction stream is being resolved right now. */
  executing: PerCpu | null = null;
  mode: KernelMode = 'booting';
  /** KVM CPUID 0x40000001 EAX as detected at boot (0 without the KVM signature). */
  kvmFeatures = 0;
  /** The async-PF static key (G-new kvm_async_pf_enabled; G-5.2: the IDT hook installed). */
  apfStaticKey = false;
  /** The 0xf3 system vector handler is installed (v5.9+ with ASYNC_PF_INT and kvmapf). */
  apfIntGate = false;
  /** BSP finished global init; APs may proceed. */
  smpReady = false;
  /** Resume requested while suspended. */
  resumeRequested = false;
  /** Management console mailbox: requests waiting for their interrupt. */
  readonly mgmtQueue: Array<{ cpu: number; action: AdminAction; handler: number }> = [];
  readonly raiseIrq: ((cpu: number, vector: number) => void) | undefined;
  readonly raiseNmi: ((cpu: number) => void) | undefined;
  /** The in-kernel hypervisor (an L1 kernel), if any. */
  readonly hypervisor: GuestHypervisor | undefined;
  private panicInfo: PanicInfo | null = null;
  private readonly warnedOnce = new Set<string>();
  readonly warnings: string[] = [];
  readonly bugs: Array<{ kind: BugKind; message: string }> = [];
  private readonly counters = new Map<string, number>();
  private readonly locks = new Map<string, SpinLock>();
  private timerSeq = 0;
  /** The ApfApi, once built (`apfApi()`). */
  private apf: ReturnType<typeof makeApfApi> | null = null;
  /** Pending task creations (spec start times in the future). */
  readonly specs: readonly TaskSpec[];
  private booted = false;
  private taskSeq = 0;
  /** A hung-task check timer is armed somewhere. */
  hungArmed = false;
  /** The next kernel's snapshot of the old APF areas (after kexec / kdump). */
  /** The next kernel's copy of the old APF areas; `cpu` is the CPU that registered each. */
  staleSnapshot: Array<{ gva: Gva; gpa: number; value: number; cpu: number }> = [];

  constructor(opts: GuestKernelOptions) {
    this.sim = opts.sim;
    this.memory = opts.memory;
    this.config = resolveGuestProfile(opts.profile, opts.toggles);
    this.hz = opts.hz ?? 250;
    if (!Number.isInteger(this.hz) || this.hz < 1 || this.hz > 10_000) throw new RangeError(`guest hz must be 1..10000, got ${this.hz}`);
    this.tickNs = Math.round(1e9 / this.hz);
    this.hungTaskTimeoutNs = opts.hungTaskTimeoutNs ?? 120e9;
    this.nmiUserRead = opts.nmiUserRead ?? null;
    this.idleRead = opts.idleRead ?? null;
    this.stopOnPanic = opts.stopOnPanic ?? true;
    this.dummyAllocFailuresLeft = Math.max(0, Math.floor(opts.dummyAllocFailures ?? 0));
    this.raiseIrq = opts.raiseIrq;
    this.raiseNmi = opts.raiseNmi;
    this.hypervisor = opts.hypervisor;
    this.specs = opts.tasks;
    if (opts.cpus.length < 1) throw new RangeError('guest kernel needs at least one vCPU');
    validateSpecs(opts.tasks, opts.cpus.length);
    const plan = opts.layout ?? planGuestLayout(opts.memory.size, opts.cpus.length, opts.tasks);
    if (plan.cpus !== opts.cpus.length) throw new RangeError(`guest layout: planned for ${plan.cpus} CPUs, the kernel has ${opts.cpus.length}`);
    this.layout = new GuestLayout(opts.memory, plan);
    this.sleepers = new SleeperTable((i) => this.lock(`apf_sleepers[${i}]`, true));
    this.cpus = opts.cpus.map((v, i) => new PerCpu(this, i, v));
    this.defaults = profileDefaultHandlers(this.config);
    this.design = guestDesign(opts.design ?? 'current');
    this.handlers = withRuleChecks(this, { ...this.defaults, ...this.design.handlers(this), ...(opts.handlers ?? {}) });
  }

  // ------------------------------------------------------------------------------------------
  // Public API
  // ------------------------------------------------------------------------------------------

  /**
   * The boot loader: zero the per-CPU areas, give every CPU its idle task with the boot code,
   * attach to the vCPUs and register the deadlock waiter. Call once, before the host runs.
   */
  boot(): void {
    if (this.booted) throw new Error('GuestKernel.boot() called twice');
    this.booted = true;
    for (const pc of this.cpus) {
      for (let gen = 0; gen < 2; gen++) {
        const a = this.layout.apfAreaGpa(pc.id, gen);
        for (let i = 0; i < 128; i += 8) this.memory.writeU64(a + i, 0n);
      }
      const p = this.layout.percpuGpa(pc.id);
      for (let i = 0; i < 64; i += 8) this.memory.writeU64(p + i, 0n);
      const idle = this.newTask(pc.id === 0 ? 'swapper/0' : `swapper/${pc.id}`, 'idle', pc.id, [pc.id], 0, null, null, []);
      pc.idle = idle;
      pc.curr = idle;
      idle.state = 'running';
      idle.onCpu = true;
      idle.onRq = true;
      idle.stack = [new Frame('program', idle.name, pc.id === 0 ? idleProgram(this, bootCpu0(this)) : idleProgram(this, apStartup(this, false)))];
      pc.state = 'booting';
      pc.vcpu.attach(pc);
    }
    this.sim.registerWaiter({
      name: 'guest tasks',
      waiting: () => this.mode === 'running' && this.blockedTasks().length > 0,
      describe: () => this.blockedTasks().map((t) => `${t.name} (${t.state}: ${t.waitReason || 'sleeping'})`).join(', '),
    });
  }

  /**
   * An administrative request from outside (the harness): it lands in the management console
   * device's mailbox and the device raises vector 0x40 on the CPU that must handle it.
   */
  request(cpu: number, action: AdminAction): void {
    if (!isAdminAction(action)) throw new RangeError(`unknown admin action '${String(action)}'`);
    if (!Number.isInteger(cpu) || cpu < 0 || cpu >= this.cpus.length) throw new RangeError(`request: no CPU ${cpu}`);
    let handler = cpu;
    if (action === 'online') {
      const other = this.cpus.find((c) => c.online && c.id !== cpu);
      if (other === undefined) throw new Error(`request(${cpu}, 'online'): no online CPU to send the INIT from`);
      handler = other.id;
    } else if (action === 'suspend' || action === 'resume') {
      handler = 0;
    }
    this.mgmtQueue.push({ cpu, action, handler });
    this.count(`request_${action}`);
    if (action === 'lapic_enable' && !this.cpus[cpu]!.lapicOn && this.raiseNmi !== undefined) {
      this.raiseNmi(cpu);
      return;
    }
    if (this.raiseIrq === undefined) throw new Error('GuestKernel.request: no raiseIrq line was given (wire it to the host, e.g. kvm.injectIrq)');
    this.raiseIrq(handler, MGMT_VECTOR);
  }

  /** Tasks from the spec (user tasks and kthreads), in spec order. */
  get tasks(): readonly TaskView[] {
    return this.allTasks.filter((t) => t.spec !== null).map(viewOf);
  }

  /** Every task including idle tasks and kernel helpers. */
  allTaskViews(): TaskView[] {
    return this.allTasks.map(viewOf);
  }

  task(name: string): TaskView | undefined {
    const t = this.allTasks.find((x) => x.name === name);
    return t === undefined ? undefined : viewOf(t);
  }

  /** Every spec'd task has been created and has exited. */
  allTasksExited(): boolean {
    // Asked after every simulation event (the runner's stop condition): no allocation, and it
    // stops at the first task still alive.
    let n = 0;
    for (const t of this.allTasks) {
      if (t.spec === null) continue;
      if (t.state !== 'dead') return false;
      n++;
    }
    return n === this.specs.length;
  }

  panicked(): PanicInfo | null {
    return this.panicInfo;
  }

  /** Guest-physical address of a task's user page (for host backing configuration). */
  userPageGpa(taskOrMm: string, page: number): number | undefined {
    const spec = this.specs.find((s) => s.name === taskOrMm);
    return this.layout.userPageGpa(spec === undefined ? taskOrMm : mmName(spec), page);
  }

  stats(): GuestStats {
    const s = this.sleepers.stats;
    return {
      mode: this.mode,
      cpus: this.cpus.map((c) => ({ id: c.id, state: c.state, apfEnabled: c.apfOn, curr: c.curr?.name ?? '', runnable: c.queue.length })),
      tasks: this.allTasks.map(viewOf),
      counters: Object.fromEntries([...this.counters.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1))),
      sleepers: {
        linked: this.sleepers.all().length,
        dummiesLinked: this.sleepers.dummies().length,
        dummiesAllocated: s.dummiesAllocated,
        dummiesConsumed: s.dummiesConsumed,
        dummiesFreed: s.dummiesFreed,
        dummiesLeaked: s.dummiesLeaked,
      },
      warnings: [...this.warnings],
      bugs: [...this.bugs],
    };
  }

  // ------------------------------------------------------------------------------------------
  // Internals used by the kernel's code modules
  // ------------------------------------------------------------------------------------------

  /** The CPU running the code being resolved (smp_processor_id()). */
  cpu(): PerCpu {
    const pc = this.executing;
    if (pc === null) throw new GuestCodeError('kernel code asked for the current CPU outside instruction resolution');
    return pc;
  }

  /** current. */
  current(): Task {
    return this.cpu().curr;
  }

  /** The frame whose generator is being resumed (for exception-table annotations). */
  runningFrame(): Frame {
    return this.cpu().runner.top();
  }

  lock(name: string, raw: boolean): SpinLock {
    let l = this.locks.get(name);
    if (l === undefined) {
      l = new SpinLock(name, this.layout.lockGva(name), raw);
      this.locks.set(name, l);
    }
    return l;
  }

  /** This CPU holds a raw spinlock (PREEMPT_RT allocation check). */
  rawLockHeldHere(): boolean {
    const me = this.cpu().id;
    for (const l of this.locks.values()) if (l.raw && l.owner === me) return true;
    return false;
  }

  hasFeature(name: KvmFeatureName): boolean {
    return ((this.kvmFeatures >>> KVM_FEATURE[name]) & 1) === 1;
  }

  newTask(
    name: string,
    kind: 'user' | 'kthread' | 'idle',
    cpu: number,
    affinity: readonly number[],
    nice: number,
    spec: TaskSpec | null,
    mm: string | null,
    program: readonly UserOp[] | readonly KernelOp[],
  ): Task {
    const as = mm === null ? null : (this.layout.addressSpace(mm) ?? null);
    const t = new Task(++this.taskSeq, name, kind, cpu, affinity, nice, as, spec, program);
    t.startTime = this.sim.now;
    this.allTasks.push(t);
    return t;
  }

  /** Build a task from a spec with its initial stack (not yet runnable). */
  createSpecTask(spec: TaskSpec, cpu: number): Task {
    const kind = spec.kind ?? 'user';
    const affinity = spec.affinity ?? this.cpus.map((c) => c.id);
    const t = this.newTask(spec.name, kind, cpu, affinity, spec.nice ?? 0, spec, kind === 'user' ? mmName(spec) : null, spec.program);
    t.stack = kind === 'user' ? userTaskStack(this, t) : [new Frame('program', t.name, kthreadProgram(this, t))];
    this.emit(cpu, 'task_new', { task: t.name, kind });
    return t;
  }

  emit<E extends TraceEventFrom<'guest'>>(cpu: number, event: E, fields: TraceFieldsOf<E>): void;
  emit<E extends TraceEventFrom<'guest'> & FieldlessEventName>(cpu: number, event: E): void;
  emit(cpu: number, event: TraceEventFrom<'guest'>, fields?: TraceFields): void {
    forwardEmit(this.sim.trace, 'guest', cpu, event, fields);
  }

  /** Emit on the executing CPU (or -1 outside resolution). */
  emitHere<E extends TraceEventFrom<'guest'>>(event: E, fields: TraceFieldsOf<E>): void;
  emitHere<E extends TraceEventFrom<'guest'> & FieldlessEventName>(event: E): void;
  emitHere(event: TraceEventFrom<'guest'>, fields?: TraceFields): void {
    forwardEmit(this.sim.trace, 'guest', this.executing?.id ?? -1, event, fields);
  }

  count(what: string, n = 1): void {
    this.counters.set(what, (this.counters.get(what) ?? 0) + n);
  }

  counter(what: string): number {
    return this.counters.get(what) ?? 0;
  }

  warn(message: string): void {
    this.warnings.push(message);
    this.count('warn');
    this.emitHere('warn', { message });
  }

  /** WARN_ONCE: `key` (default the message) identifies the call site. */
  warnOnce(message: string, key = message): void {
    if (this.warnedOnce.has(key)) return;
    this.warnedOnce.add(key);
    this.warn(message);
  }

  bug(kind: BugKind, message: string): void {
    this.bugs.push({ kind, message });
    this.count(`bug_${kind}`);
    const t = this.executing?.curr;
    this.emitHere('bug', { kind, task: t?.name ?? '', message });
  }

  /** Record the panic (the code that called it then stops the CPU). */
  recordPanic(message: string): void {
    if (this.panicInfo !== null) return;
    const cpu = this.executing?.id ?? -1;
    this.panicInfo = { message, t: this.sim.now, cpu };
    this.mode = 'panicked';
    this.emit(cpu, 'panic', { message });
    if (this.stopOnPanic) this.sim.stop(`guest panic: ${message}`);
  }

  newTimer(expires: number, label: string, fn: () => Code | void): KTimer {
    return { expires, label, seq: ++this.timerSeq, fn, cancelled: false };
  }

  /** Tasks that wait for something other than a timer (for the deadlock report). */
  blockedTasks(): Task[] {
    return this.allTasks.filter(
      (t) => t.spec !== null && (t.state === 'uninterruptible' || t.state === 'interruptible') && !this.cpus.some((c) => c.timers.some((x) => !x.cancelled && x.label === `wake:${t.id}`)),
    );
  }

  /**
   * The ApfApi handed to handlers. Built once and frozen: its functions read the executing CPU and
   * task when called, so one object serves every call (it is asked for on every #PF and page-ready).
   */
  apfApi(): ReturnType<typeof makeApfApi> {
    if (this.apf === null) this.apf = Object.freeze(makeApfApi(this));
    return this.apf;
  }
}

function viewOf(t: Task): TaskView {
  return {
    id: t.id,
    name: t.name,
    kind: t.kind,
    state: t.state,
    cpu: t.cpu,
    running: t.onCpu,
    exitCode: t.exitCode,
    switches: t.switches,
    waitReason: t.waitReason,
  };
}

/** The address space a task spec uses (tasks sharing `mm` are threads of one process). */
export function mmName(spec: TaskSpec): string {
  return spec.mm ?? spec.name;
}

function validateSpecs(specs: readonly TaskSpec[], ncpus: number): void {
  const names = new Set<string>();
  for (const s of specs) {
    if (names.has(s.name)) throw new RangeError(`duplicate task name '${s.name}'`);
    names.add(s.name);
    if (s.cpu !== undefined && (!Number.isInteger(s.cpu) || s.cpu < 0 || s.cpu >= ncpus)) throw new RangeError(`task '${s.name}': no CPU ${s.cpu}`);
    for (const c of s.affinity ?? []) if (!Number.isInteger(c) || c < 0 || c >= ncpus) throw new RangeError(`task '${s.name}': affinity names CPU ${c}`);
    if (s.affinity !== undefined && s.affinity.length === 0) throw new RangeError(`task '${s.name}': empty affinity`);
    if (s.start !== undefined && (!Number.isSafeInteger(s.start) || s.start < 0)) throw new RangeError(`task '${s.name}': bad start time ${s.start}`);
    if (s.name.startsWith('swapper/')) throw new RangeError(`task name '${s.name}' is reserved`);
  }
}
