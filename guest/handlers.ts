/**
 * The pluggable async-PF handler API (docs/handlers.md).
 *
 * The guest's kvm.c PV driver is a set of generator functions, `ApfHandlers`. The kernel calls
 * them at the points Linux calls the corresponding functions; a `GuestKernel` built with
 * `handlers: {...}` uses the given ones and the profile's defaults for the rest. Every handler
 * gets an `ApfApi`: the small slice of the kernel a kvm.c author uses (this CPU, the current task,
 * the APF area through instructions, the sleeper table and its locks, scheduling, panics and
 * warnings). Handlers run as guest code: each `yield` is an instruction boundary where other vCPUs
 * interleave and interrupts may arrive (when IF=1).
 */
import type { Gva } from '../shared-abi/addr';
import type { TrapFrame } from '../shared-abi/arch';
import type { KvmFeatureName } from '../shared-abi/cpuid';
import type { Code } from './code';
import type { GuestToggles, ResolvedGuestConfig } from './profiles';
import type { SleeperBucket, SleeperTable, SleepNode } from './sleepers';
import type { SourceTrace } from '../sim/trace';

/** Kinds of kernel self-check `bug` events (docs/trace-events.md). */
export type BugKind =
  | 'scheduling_while_atomic'
  | 'sleeping_in_invalid_context'
  | 'rcu_sleep'
  | 'sleeping_alloc_in_atomic'
  | 'spinlock_recursion'
  | 'stale_apf_write'
  | 'preempt_count_leak';

/** What a handler may know about a task. */
export interface TaskInfo {
  readonly id: number;
  readonly name: string;
  readonly isIdle: boolean;
  readonly kind: 'user' | 'kthread' | 'idle';
}

/** A field of this CPU's kvm_vcpu_pv_apf_data (`flags` is `reason` in the v2.6.38 layout). */
export type ApfField = 'flags' | 'token';

/** The kernel as a kvm.c handler sees it. All instruction-level operations are `Code`. */
export interface ApfApi {
  readonly config: ResolvedGuestConfig;
  readonly toggles: GuestToggles;
  /** The handlers in effect (call siblings through this, so replacements compose). */
  readonly handlers: ApfHandlers;
  /** The profile's default handlers (to wrap or delegate to). */
  readonly defaults: ApfHandlers;
  readonly sleepers: SleeperTable;

  // --- context (no instruction) ---
  now(): number;
  /** smp_processor_id(). */
  cpu(): number;
  /** current. */
  task(): TaskInfo;
  /** is_idle_task(current). */
  isIdleTask(): boolean;
  /** user_mode(regs). */
  userMode(tf: TrapFrame): boolean;
  /** The interrupted context had IF=1. */
  interruptsWereEnabled(tf: TrapFrame): boolean;
  /** irqs_disabled() (reads RFLAGS.IF, like pushf). */
  irqsDisabled(): boolean;
  /** preempt_count(). */
  preemptCount(): number;
  /** rcu_preempt_depth() (0 without preemptible RCU). */
  rcuPreemptDepth(): number;
  /** KVM CPUID feature bit, as detected at boot. */
  hasFeature(name: KvmFeatureName): boolean;
  /** Guest-physical address of this CPU's APF area (what goes into MSR_KVM_ASYNC_PF_EN). */
  apfAreaGpa(): number;
  /** Its kernel virtual address. */
  apfAreaGva(): Gva;

  // --- instructions ---
  readCr2(): Code<number>;
  apfLoad(field: ApfField): Code<number>;
  apfStore(field: ApfField, value: number): Code;
  /** This CPU's enabled flag (offset 64 of the area, or the private per-CPU bool). */
  enabled(): Code<boolean>;
  setEnabled(on: boolean): Code;
  /** WRMSR with an exception-table entry: false when it raised #GP (a warning is logged). */
  wrmsr(msr: number, value: bigint): Code<boolean>;
  /** RDMSR with an exception-table entry: null when it raised #GP. */
  rdmsr(msr: number): Code<bigint | null>;
  /** LAPIC EOI (x2APIC MSR 0x80b). */
  eoi(): Code;
  sti(): Code;
  cli(): Code;
  /** STI;HLT. */
  safeHalt(): Code;
  /** smp_send_reschedule(cpu): a reschedule IPI (vector 0xfd). */
  sendReschedule(cpu: number): Code;
  /** Straight-line work for ns nanoseconds. */
  compute(ns: number): Code;

  // --- sleeper table ---
  bucket(token: number): SleeperBucket;
  lockBucket(b: SleeperBucket): Code;
  unlockBucket(b: SleeperBucket): Code;
  /** A waiter's on-stack node for the current task (not yet linked). */
  newWaiterNode(token: number, halted: boolean): SleepNode;
  /** A dummy node for this CPU (not yet linked); `allocDummy` models its allocation. */
  newDummyNode(token: number): SleepNode;
  /** The cost (and the PREEMPT_RT self-check) of kzalloc(GFP_ATOMIC) for a dummy node. */
  allocDummy(): Code;
  /** Whether the allocation just made failed (GFP_ATOMIC can; `dummyAllocFailures` injects it). */
  dummyAllocFailed(): boolean;
  /** kfree of a dummy node. */
  freeDummy(node: SleepNode | null, why: 'consumed' | 'unused' | 'wake_all'): void;

  // --- scheduling ---
  /** prepare_to_swait_exclusive + set_current_state(TASK_UNINTERRUPTIBLE). */
  prepareToWait(node: SleepNode): void;
  /** finish_swait: back to TASK_RUNNING, off the wait queue. */
  finishWait(node: SleepNode): void;
  /** schedule(). */
  schedule(): Code;
  /** swake_up_one on the node's wait queue (try_to_wake_up of the sleeper, if any). */
  wakeSleeper(node: SleepNode): Code;

  // --- diagnostics ---
  panic(message: string): Code<never>;
  warn(message: string): void;
  warnOnce(message: string): void;
  bug(kind: BugKind, message: string): void;
  readonly trace: SourceTrace<'guest'>;
}

/** The replaceable pieces of the guest's async-PF support (spec §4). */
export interface ApfHandlers {
  /** kvm_guest_cpu_init (APF part): write INT/EN, set the enabled flag. Runs with IRQs off. */
  cpuInit(api: ApfApi): Code;
  /** kvm_pv_disable_apf: EN := 0, clear the enabled flag. */
  disable(api: ApfApi): Code;
  /** kvm_read_and_reset_apf_flags (G-5.2: kvm_read_and_reset_pf_reason). */
  readAndResetFlags(api: ApfApi): Code<number>;
  /**
   * The #PF hook (G-5.2 do_async_page_fault; v5.8+ __kvm_handle_async_pf). `cr2` is the fault
   * address read at entry, or null when the profile reads CR2 late (then read it with
   * api.readCr2()). Return true when the fault was an async PF and is fully handled.
   */
  pfHook(api: ApfApi, tf: TrapFrame, cr2: number | null): Code<boolean>;
  /** Wait for page ready of `token` (kvm_async_pf_task_wait_schedule or the ≤5.7 halt-capable wait). */
  wait(api: ApfApi, token: number, tf: TrapFrame): Code;
  /** kvm_async_pf_task_wake. */
  wake(api: ApfApi, token: number): Code;
  /** apf_task_wake_all (this CPU's nodes only). */
  wakeAll(api: ApfApi): Code;
  /** apf_task_wake_one: unlink and wake (G-5.2: reschedule IPI for halted waiters). */
  wakeOne(api: ApfApi, node: SleepNode): Code;
  /** Body of sysvec_kvm_asyncpf_interrupt (vector 0xf3), between irq entry and exit. */
  pageReady(api: ApfApi, tf: TrapFrame): Code;
}

export type ApfHandlerName = keyof ApfHandlers;
export const APF_HANDLER_NAMES: readonly ApfHandlerName[] = [
  'cpuInit', 'disable', 'readAndResetFlags', 'pfHook', 'wait', 'wake', 'wakeAll', 'wakeOne', 'pageReady',
];
