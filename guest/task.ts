/**
 * Kernel objects: tasks, spinlocks, timers and the preempt_count encoding.
 */
import type { Gva } from '../shared-abi/addr';
import type { Code, Frame } from './code';
import type { AddressSpace } from './layout';
import type { KernelOp, TaskSpec, UserOp } from './program';

// preempt_count layout as in Linux: PREEMPT bits 0-7, SOFTIRQ 8-15, HARDIRQ 16-19, NMI 20-23.
export const PREEMPT_OFFSET = 1;
export const PREEMPT_MASK = 0xff;
export const HARDIRQ_OFFSET = 1 << 16;
export const HARDIRQ_MASK = 0xf << 16;
export const NMI_OFFSET = 1 << 20;
export const NMI_MASK = 0xf << 20;

/** Linux task states (task->__state), plus 'new' before the first wake-up. */
export type TaskState = 'new' | 'running' | 'interruptible' | 'uninterruptible' | 'dead';
export type TaskKindInternal = 'user' | 'kthread' | 'idle';

export class Task {
  state: TaskState = 'new';
  /** task_cpu(): the CPU it runs on or last ran on. */
  cpu: number;
  /** Counted on a runqueue (queued or running) — Linux's on_rq. */
  onRq = false;
  /** Some CPU's current task — Linux's on_cpu. */
  onCpu = false;
  /** The kernel stack: the program at the bottom, handler frames above. */
  stack: Frame[] = [];
  preemptCount = 0;
  /** rcu_read_lock() nesting. */
  rcuDepth = 0;
  /** TIF_NEED_RESCHED. */
  needResched = false;
  /** When it last went to sleep (D or S), for the hung-task detector. */
  sleepStart = 0;
  /** Context switches so far (nvcsw + nivcsw). */
  switches = 0;
  /** hung_task reported for the current sleep. */
  hungReported = false;
  /** Virtual time its current slice started. */
  sliceStart = 0;
  exitCode: number | null = null;
  /** What it sleeps on, for deadlock reports. */
  waitReason = '';
  /** Arguments the user program leaves for the syscall entry (the "registers"). */
  syscallOp: UserOp | null = null;
  /** Counter for default write values of `touch`. */
  accessSeq = 0;
  /** Named spinlocks it holds. */
  readonly locksHeld: string[] = [];
  /** Kernel spinlocks (spin_lock/spin_unlock) it holds, innermost last: irq exit checks the balance. */
  readonly spinlocks: SpinLock[] = [];
  /** Pending fatal signal (SIGKILL/SIGSEGV) to act on at the next return to user mode. */
  killed: number | null = null;
  /** The pi_lock of try_to_wake_up (JS-atomic owner, a CPU id). */
  piLockOwner: number | null = null;
  /** User-mode and kernel-mode time (ns). */
  startTime = 0;

  constructor(
    readonly id: number,
    readonly name: string,
    readonly kind: TaskKindInternal,
    cpu: number,
    readonly affinity: readonly number[],
    readonly nice: number,
    readonly mm: AddressSpace | null,
    readonly spec: TaskSpec | null,
    readonly program: readonly UserOp[] | readonly KernelOp[],
  ) {
    this.cpu = cpu;
  }

  get isIdle(): boolean {
    return this.kind === 'idle';
  }
}

/** A spinlock: a JS-atomic owner (a CPU id) plus a lock word in guest memory the code stores to. */
export class SpinLock {
  owner: number | null = null;
  /** Task that took it (diagnostics). */
  holder: string | null = null;
  constructor(
    readonly name: string,
    readonly gva: Gva,
    /** raw_spinlock_t (stays a spinning lock on PREEMPT_RT). */
    readonly raw: boolean,
  ) {}
}

/** A kernel timer on one CPU. The callback runs in the timer interrupt (hardirq context). */
export interface KTimer {
  expires: number;
  readonly label: string;
  readonly seq: number;
  /** Returns guest code to run in the interrupt, or nothing. */
  readonly fn: () => Code | void;
  cancelled: boolean;
}
