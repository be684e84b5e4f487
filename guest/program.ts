/**
 * The workload vocabulary: what a guest task does, as data.
 *
 * Scenario files describe tasks with these operations (harness/ validates and converts the JSON
 * form, where addresses are hex strings, into these types). The guest kernel turns each
 * operation into instructions (`shared-abi/arch.ts` `Insn`), so every operation is made of
 * instruction boundaries where other vCPUs interleave and events are delivered.
 *
 * User-mode operations run at CPL 3 in the task's address space. `syscall` enters the kernel
 * (CPL 0) and runs its `body` of kernel operations; kernel operations can also appear at the top
 * level of a kernel thread (`TaskSpec.kind === 'kthread'`).
 */
import type { Gva } from '../shared-abi/addr';

/** Operations a user-mode task performs. */
export type UserOp =
  /** Read or write one 4-byte word on a user page (`page` is the page's address; `offset` within it). */
  | { readonly op: 'touch'; readonly page: Gva; readonly write?: boolean; readonly offset?: number; readonly value?: number }
  /** Spin on the CPU for `ns` nanoseconds. */
  | { readonly op: 'compute'; readonly ns: number }
  /** Enter the kernel and run `body` there (a system call), then return to user mode. */
  | { readonly op: 'syscall'; readonly name?: string; readonly body: readonly KernelOp[] }
  /** Sleep (TASK_INTERRUPTIBLE with a timer) for `ns`. */
  | { readonly op: 'sleep'; readonly ns: number }
  /** sched_yield(). */
  | { readonly op: 'yield' }
  /** Repeat `body` `times` times. */
  | { readonly op: 'loop'; readonly times: number; readonly body: readonly UserOp[] }
  /** Exit the task. Implicit at the end of the program. */
  | { readonly op: 'exit'; readonly code?: number };

/** Operations that run in kernel mode (inside a syscall, or in a kernel thread). */
export type KernelOp =
  /** copy_from_user / copy_to_user on a user page: a kernel-mode access with an exception-table
   *  fixup (a fault it cannot resolve makes the copy return -EFAULT instead of oopsing). */
  | { readonly op: 'copy_from_user'; readonly page: Gva; readonly offset?: number }
  | { readonly op: 'copy_to_user'; readonly page: Gva; readonly offset?: number; readonly value?: number }
  /** A kernel access to a user page without a fixup (a bug if it faults unresolvably). */
  | { readonly op: 'kernel_touch'; readonly page: Gva; readonly write?: boolean; readonly offset?: number; readonly value?: number }
  | { readonly op: 'compute'; readonly ns: number }
  | { readonly op: 'preempt_disable' }
  | { readonly op: 'preempt_enable' }
  /** Take / release a named spinlock (spin_lock / spin_unlock; raw on PREEMPT_RT when `raw`). */
  | { readonly op: 'spin_lock'; readonly lock: string; readonly raw?: boolean }
  | { readonly op: 'spin_unlock'; readonly lock: string; readonly raw?: boolean }
  | { readonly op: 'local_irq_disable' }
  | { readonly op: 'local_irq_enable' }
  | { readonly op: 'rcu_read_lock' }
  | { readonly op: 'rcu_read_unlock' }
  /** msleep(): sleep in kernel mode. */
  | { readonly op: 'sleep'; readonly ns: number }
  /** schedule() voluntarily (cond_resched). */
  | { readonly op: 'schedule' }
  | { readonly op: 'loop'; readonly times: number; readonly body: readonly KernelOp[] }
  /** ioctl(KVM_RUN) of the in-kernel hypervisor (guest/nested): run nested guest `vcpu` until it is done. */
  | { readonly op: 'kvm_run'; readonly vcpu: string };

export type TaskKind = 'user' | 'kthread';

export interface TaskSpec {
  readonly name: string;
  readonly kind?: TaskKind;
  /** CPU the task starts on (default: round-robin). */
  readonly cpu?: number;
  /** Allowed CPUs (default: all). */
  readonly affinity?: readonly number[];
  /** Virtual time at which the task is created (default 0). */
  readonly start?: number;
  /** Nice value -20..19 (default 0). Only orders runnable tasks. */
  readonly nice?: number;
  /** User pages this task maps (its address space). Pages touched but not listed fault as
   *  ordinary user page faults (SIGSEGV). */
  readonly pages?: readonly Gva[];
  /** Address space name (default: the task's name). Tasks with the same `mm` are threads of one
   *  process: they share page tables and user pages. */
  readonly mm?: string;
  readonly program: readonly UserOp[] | readonly KernelOp[];
}
