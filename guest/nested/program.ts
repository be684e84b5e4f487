/**
 * What a nested (L2) guest does, as data, and how the L1 hypervisor is configured.
 *
 * An L2 guest is one vCPU running a tiny program: user-mode operations at CPL 3 and, inside a
 * `syscall`, kernel-mode operations at CPL 0 (its own syscall entry and IRET). Addresses are L2
 * guest-physical addresses (L2 runs with paging off) inside the L2's memory, which L1 provides
 * from its own guest-physical memory (guest/nested/layout.ts).
 */

/** Operations at L2 CPL 3. */
export type L2UserOp =
  /** Read or write one 4-byte word at L2 address `addr`. */
  | { readonly op: 'touch'; readonly addr: number; readonly write?: boolean; readonly value?: number }
  | { readonly op: 'compute'; readonly ns: number }
  /** Enter L2's kernel (CPL 0) and run `body` there, then return to user mode. */
  | { readonly op: 'syscall'; readonly body: readonly L2KernelOp[] }
  | { readonly op: 'loop'; readonly times: number; readonly body: readonly L2UserOp[] };

/** Operations at L2 CPL 0 (inside a syscall). */
export type L2KernelOp =
  | { readonly op: 'touch'; readonly addr: number; readonly write?: boolean; readonly value?: number }
  | { readonly op: 'compute'; readonly ns: number }
  | { readonly op: 'loop'; readonly times: number; readonly body: readonly L2KernelOp[] };

export interface L2Spec {
  /** Unique among L2 guests and L1 tasks; also the name of its memory in traces (`task_access.task`). */
  readonly name: string;
  /** L1 CPU its vCPU thread runs on (pinned there); default: L1's round-robin placement, unpinned. */
  readonly cpu?: number;
  /** When L1 starts the vCPU thread (virtual ns; default 0). */
  readonly start?: number;
  /** L2 memory size in 4 KiB pages (default 16). */
  readonly pages?: number;
  readonly program: readonly L2UserOp[];
}

/** The L1 hypervisor (guest/nested/hypervisor.ts). */
export interface NestedConfig {
  readonly l2: readonly L2Spec[];
  /**
   * L1 work with IRQs off between the VM-exit and the #PF flags read (the tail of vmx_vcpu_run
   * before handle_exit_irqoff), ns. Default 100.
   */
  readonly vmexitTailNs?: number;
  /**
   * L1 work with IRQs on between local_irq_enable after the exit and the exit handler
   * (kvm_handle_page_fault), ns: the window in which page-ready can come before the wait. Default 200.
   */
  readonly exitHandlingNs?: number;
}

export const DEFAULT_L2_PAGES = 16;
export const DEFAULT_VMEXIT_TAIL_NS = 100;
export const DEFAULT_EXIT_HANDLING_NS = 200;

/** The L1 task that is an L2 guest's vCPU thread (a QEMU-like process of its own). */
export const vcpuThreadName = (l2: string): string => `kvm-${l2}`;

/** Every L2 address an L2 program touches. */
export function l2Addresses(ops: readonly (L2UserOp | L2KernelOp)[]): number[] {
  const out: number[] = [];
  const walk = (list: readonly (L2UserOp | L2KernelOp)[]): void => {
    for (const op of list) {
      if (op.op === 'touch') out.push(op.addr);
      else if (op.op === 'syscall' || op.op === 'loop') walk(op.body);
    }
  };
  walk(ops);
  return out;
}
