/**
 * The architectural interface between guest code and the vCPU it runs on.
 *
 * This is the instruction set the simulated guest kernel is written in, and the shape of what
 * the CPU hands to the guest's IDT. It is deliberately small: exactly the instructions the async
 * page fault protocol and a minimal kernel need. Guest code is a stream of `Insn` objects; each
 * one is an instruction boundary at which other vCPUs interleave and events are delivered.
 *
 * A faulting instruction is not retired: after the exception handler's `iret` the guest fetches
 * the same instruction again (x86 fault semantics). Traps and interrupts are taken between
 * instructions.
 */
import type { Gva } from './addr';

export type AccessSize = 1 | 2 | 4 | 8;
/** Privilege level. Linux runs only at 0 and 3; 1 and 2 exist for the bare guest (rings 1/2 are supervisor for paging, "user" for KVM's CPL 0 rule). */
export type Cpl = 0 | 1 | 2 | 3;
export type ControlRegister = 0 | 2 | 3 | 4;

/** CR0 bits the simulation models. */
export const CR0_PE = 1 << 0;
export const CR0_WP = 1 << 16;
export const CR0_PG = 2 ** 31;

/** Page-table entry bits (x86-64 4-level paging, 8-byte entries). */
export const PTE_P = 1 << 0;
export const PTE_RW = 1 << 1;
export const PTE_US = 1 << 2;
export const PTE_ADDR_MASK_LO = 0xfffff000; // bits 31:12 of the low dword
export const PTE_ADDR_MASK_HI = 0x000fffff; // bits 51:32 in the high dword

/** #PF error code bits (SDM Vol. 3 §4.7). */
export const PFEC_PRESENT = 1 << 0;
export const PFEC_WRITE = 1 << 1;
export const PFEC_USER = 1 << 2;

/** One guest instruction. `value`s of 8-byte accesses and all MSR values are bigints. */
export type Insn =
  /** Read `size` bytes at a virtual address. Result: number (bigint for size 8). */
  | { readonly op: 'load'; readonly gva: Gva; readonly size: AccessSize }
  /** Write `size` bytes at a virtual address. */
  | { readonly op: 'store'; readonly gva: Gva; readonly size: AccessSize; readonly value: number | bigint }
  /** RDMSR. Result: bigint. Unknown or refused MSRs raise #GP (delivered by the hypervisor). */
  | { readonly op: 'rdmsr'; readonly msr: number }
  /** WRMSR. */
  | { readonly op: 'wrmsr'; readonly msr: number; readonly value: bigint }
  /** CPUID. Result: CpuidResult. */
  | { readonly op: 'cpuid'; readonly leaf: number; readonly subleaf?: number }
  /** STI: IF := 1, with a one-instruction interrupt shadow when IF was 0. */
  | { readonly op: 'sti' }
  /** CLI: IF := 0. */
  | { readonly op: 'cli' }
  /** HLT: stop until an interrupt, NMI, SMI or INIT. */
  | { readonly op: 'hlt' }
  /** STI;HLT as one pair (the STI shadow covers the HLT): Linux's safe_halt(). */
  | { readonly op: 'sti_hlt' }
  /** PAUSE: spin-wait hint. */
  | { readonly op: 'pause' }
  /** Straight-line work for up to `ns` nanoseconds. Interruptible: the result is the number of
   *  nanoseconds actually spent (the guest loops for the rest). */
  | { readonly op: 'compute'; readonly ns: number }
  /** MOV from CR0/CR2/CR3/CR4. Result: number. */
  | { readonly op: 'read_cr'; readonly cr: ControlRegister }
  /** MOV to CR0/CR2/CR3/CR4. CR3 writes flush the TLB; CR0 writes that change PG exit to the hypervisor. */
  | { readonly op: 'write_cr'; readonly cr: ControlRegister; readonly value: number }
  /** INVLPG: drop one TLB entry. */
  | { readonly op: 'invlpg'; readonly gva: Gva }
  /** RDTSC. Result: number (the TSC runs at 1 GHz: one tick per virtual nanosecond). */
  | { readonly op: 'rdtsc' }
  /** SYSCALL from user mode: enters the kernel's syscall entry (CPL 0, IF cleared by FMASK). */
  | { readonly op: 'syscall'; readonly nr: number }
  /** IRET (or SYSRET for a syscall frame): return from the handler that received `frame`. */
  | { readonly op: 'iret'; readonly frame: TrapFrame }
  /** UD2: raise #UD (used for BUG()). */
  | { readonly op: 'ud2' }
  /**
   * VMLAUNCH (`launch`) or VMRESUME of the VMCS `vmcs`, by an L1 hypervisor at CPL 0. The vCPU is
   * itself a guest, so the instruction exits to the hypervisor below (L0), which emulates the VM
   * entry: it retires the instruction and switches the vCPU into guest mode, where it fetches from
   * `vmcs.code` until a nested VM-exit hands control back to L1 (`GuestCode.vmexit`).
   */
  | { readonly op: 'vmenter'; readonly vmcs: Vmcs12; readonly launch: boolean };

export type InsnOp = Insn['op'];

export interface CpuidResult {
  readonly eax: number;
  readonly ebx: number;
  readonly ecx: number;
  readonly edx: number;
}

/** Value an instruction retires with. */
export type InsnResult = number | bigint | CpuidResult | undefined;

/** An event the CPU delivers through the IDT (or the syscall entry). */
export type DeliveredEvent =
  | { readonly kind: 'exception'; readonly vector: number; readonly errorCode?: number; readonly cr2?: number }
  | { readonly kind: 'interrupt'; readonly vector: number }
  | { readonly kind: 'nmi' }
  | { readonly kind: 'syscall'; readonly nr: number };

/** What the CPU saved when it delivered `event`: the interrupted context's privilege and flags. */
export interface TrapFrame {
  readonly event: DeliveredEvent;
  /** CPL of the interrupted context (3 = user mode). */
  readonly savedCpl: Cpl;
  /** RFLAGS.IF of the interrupted context. */
  readonly savedIf: boolean;
  /** Delivery sequence number on this vCPU (diagnostics). */
  readonly seq: number;
  /** Virtual time of delivery. */
  readonly t: number;
}

/** The vector an event arrives on (NMI is vector 2; a syscall has none: -1). */
export function eventVector(ev: DeliveredEvent): number {
  switch (ev.kind) {
    case 'exception':
    case 'interrupt':
      return ev.vector;
    case 'nmi':
      return 2;
    case 'syscall':
      return -1;
  }
}

/**
 * Why a nested guest exited to L1:
 * - `exception`: an exception in L2 that L1 intercepts, or the async #PF L0 reflects to L1;
 * - `external_interrupt`: an interrupt for L1 arrived while L2 ran (external-interrupt exiting;
 *   the interrupt is not acknowledged on exit, L1 takes it when it enables interrupts);
 * - `nmi`: an NMI for L1 arrived while L2 ran (NMI exiting; VMX reports it as exit reason 0 with
 *   an NMI interruption type; L1 takes the NMI right after the exit);
 * - `hlt`: L2 executed HLT (L1 intercepts HLT, as KVM does).
 */
export type NestedExitReason = 'exception' | 'external_interrupt' | 'nmi' | 'hlt';

/**
 * A VM-exit from a nested (L2) guest to the L1 hypervisor running on this vCPU. For an
 * exception exit, `exitQualification` is what VMX puts in the exit qualification and SVM in
 * EXITINFO2: the faulting address for a #PF, or the async PF token for an async #PF. For the
 * other reasons `vector` is the interrupt vector (external interrupt), 2 (NMI) or -1 (HLT), and
 * the error code and exit qualification are 0.
 */
export interface NestedVmexit {
  readonly reason: NestedExitReason;
  readonly vector: number;
  readonly errorCode: number;
  readonly exitQualification: number;
}

/** The instruction stream of a nested (L2) guest: like `GuestCode`, without reset or nested exits. */
export type NestedGuestCode = Pick<GuestCode, 'fetch' | 'retire' | 'vector'>;

/** The guest-state area of a VMCS, as far as the model uses it: loaded on VM entry, saved on VM exit. */
export interface NestedGuestState {
  cpl: Cpl;
  ifFlag: boolean;
}

/**
 * A VMCS as L1 prepared it (vmcs12), reduced to what the model uses. L2 runs with paging off, and
 * L1's EPT for it (EPT12) is an offset: L2 guest-physical address `x` is L1 guest-physical address
 * `memBase + x`, for `x < memSize`. An L2 access to an L1 frame that the hypervisor below has not
 * mapped is an EPT violation for L0, as on hardware with EPT02 = EPT12 ∘ EPT01.
 */
export interface Vmcs12 {
  /** Guest-physical address of the vmcs12 page (the VMPTRLD operand). */
  readonly gpa: number;
  /**
   * Guest-physical addresses of the L1 pages the VMCS points to that L0 must map to run L2 (the
   * MSR bitmap and the virtual-APIC page): the "nested state pages".
   */
  readonly pages: readonly number[];
  readonly memBase: number;
  readonly memSize: number;
  /** External-interrupt exiting and NMI exiting: L1's interrupts and NMIs exit from L2 whatever L2's RFLAGS.IF. */
  readonly extIntExiting: boolean;
  /** L2's register state while L1 runs. */
  readonly guest: NestedGuestState;
  /** L2's instruction stream. */
  readonly code: NestedGuestCode;
}

/** Why execution restarts from the reset vector. */
export type ResetKind = 'init' | 'reset';

/**
 * Implemented by guest software, one instance per vCPU: "what is at the instruction pointer".
 * The vCPU calls `fetch` to get the next instruction, `retire` when it completed, and `vector`
 * when the CPU delivers an event through the IDT. The guest owns its stacks: `vector` pushes the
 * handler on the current context, and the handler's final `iret` pops it.
 */
export interface GuestCode {
  /** The instruction at the current instruction pointer. Called again after a fault. */
  fetch(): Insn;
  /** The instruction returned by the last `fetch` completed with `result`. */
  retire(result: InsnResult): void;
  /**
   * The CPU delivered `frame.event`. Return false when the IDT has no present gate for the
   * vector (the CPU then raises #GP, and #DF / triple fault as on x86).
   */
  vector(frame: TrapFrame): boolean;
  /** INIT or RESET: execution restarts at the reset vector with reset register state. */
  reset(kind: ResetKind): void;
  /** Only for an L1 hypervisor guest: the running L2 exited to L1 (the vCPU left guest mode). */
  vmexit?(exit: NestedVmexit): void;
}
