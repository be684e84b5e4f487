/**
 * A virtual x86 CPU: architectural state, instruction semantics and event delivery.
 *
 * This is hardware. It decides nothing that a hypervisor or an operating system decides:
 * - the guest supplies the instruction stream (`GuestCode`);
 * - the hypervisor drives execution (`step`), handles exits (`completeExit`), injects events
 *   (`deliver`) and owns the second-level MMU.
 *
 * One `step()` executes one instruction at the current virtual time and reports its cost; the
 * caller schedules the next step. An instruction that faults is not retired: the guest fetches
 * it again after the handler's IRET.
 */
import { PAGE_SIZE, type Gpa, type Gva, type PhysAddr } from '../../shared-abi/addr';
import {
  CR0_PG,
  type ControlRegister,
  type Cpl,
  type DeliveredEvent,
  type GuestCode,
  type Insn,
  type InsnResult,
  type NestedVmexit,
  type ResetKind,
  type TrapFrame,
  type Vmcs12,
  eventVector,
} from '../../shared-abi/arch';
import { COST } from './costs';
import { VEC_DF, VEC_GP, VEC_PF, VEC_UD, combineExceptions } from './exceptions';
import { GuestMmu, SLAT_MMIO, XLATE_BAD_TABLE, XLATE_EPT_WALK, XLATE_OK, XLATE_PF, type SecondLevelMmu } from './mmu';
import type { TraceEmitter } from '../trace';

// Bound once: Jest runs modules in a vm context where global lookups are slow (docs/performance.md).
const { floor, max, min } = Math;
const { asUintN } = BigInt;

/** Guest-physical memory as the CPU uses it (sim/memory.ts's GuestMemory satisfies this). */
export interface PhysMemory {
  readonly size: number;
  readU8(gpa: PhysAddr): number;
  readU16(gpa: PhysAddr): number;
  readU32(gpa: PhysAddr): number;
  readU64(gpa: PhysAddr): bigint;
  writeU8(gpa: PhysAddr, v: number): void;
  writeU16(gpa: PhysAddr, v: number): void;
  writeU32(gpa: PhysAddr, v: number): void;
  writeU64(gpa: PhysAddr, v: bigint): void;
}

/** Where the CPU reports architectural events (sim/trace.ts's TraceBus satisfies this). */
export type CpuTraceSink = TraceEmitter;

export interface ClockSource {
  readonly now: number;
}

/** Why the guest stopped running and the hypervisor has to act. */
export type VmExit =
  /** The host has not mapped the frame (EPT/NPT violation). `walk`: during the page-table walk. */
  | { readonly reason: 'ept_violation'; readonly gpa: Gpa; readonly gva: Gva | null; readonly write: boolean; readonly walk: boolean }
  /** Access outside guest RAM. */
  | { readonly reason: 'mmio'; readonly gpa: Gpa; readonly write: boolean }
  | { readonly reason: 'msr_read'; readonly msr: number }
  | { readonly reason: 'msr_write'; readonly msr: number; readonly value: bigint }
  | { readonly reason: 'cpuid'; readonly leaf: number; readonly subleaf: number }
  /** HLT (or STI;HLT). `completeExit()` retires it when the vCPU wakes. */
  | { readonly reason: 'hlt' }
  /** A CR0 write that changes PG. The hypervisor applies it with `setCr0` and completes the exit. */
  | { readonly reason: 'cr_write'; readonly cr: ControlRegister; readonly value: number }
  /** Shutdown after a triple fault. */
  | { readonly reason: 'triple_fault' }
  /** VMLAUNCH/VMRESUME by the guest (an L1 hypervisor): the hypervisor emulates the nested VM entry with `enterGuestMode`. */
  | { readonly reason: 'vmenter'; readonly vmcs: Vmcs12; readonly launch: boolean };

/** Outcome of `step()`. Details are in `lastCost`, `lastExit`. */
export const STEP_RETIRED = 0;
/** A compute instruction is in flight for `lastCost` ns: call `endBusy(elapsed)` before the next step. */
export const STEP_BUSY = 1;
/** VM exit in `lastExit`. */
export const STEP_EXIT = 2;
/** The instruction raised an exception that the CPU delivered to the guest. */
export const STEP_FAULTED = 3;
/** The vCPU is not active (HLT, shutdown); nothing executed. */
export const STEP_INACTIVE = 4;
export type StepOutcome = typeof STEP_RETIRED | typeof STEP_BUSY | typeof STEP_EXIT | typeof STEP_FAULTED | typeof STEP_INACTIVE;

export type Activity = 'active' | 'hlt' | 'shutdown';

export type DeliverOutcome = 'delivered' | 'triple_fault';

/** Instructions a nested (L2) guest may execute in the model (anything else throws: not modelled). */
const L2_OPS: ReadonlySet<Insn['op']> = new Set<Insn['op']>(['load', 'store', 'compute', 'pause', 'sti', 'cli', 'hlt', 'sti_hlt', 'syscall', 'iret', 'ud2', 'rdtsc']);

export interface VcpuOptions {
  readonly id: number;
  readonly memory: PhysMemory;
  readonly slat: SecondLevelMmu;
  readonly clock: ClockSource;
  readonly trace: CpuTraceSink;
}

interface SmmSave {
  readonly cr0: number;
  readonly ifFlag: boolean;
  readonly cpl: Cpl;
}

export class Vcpu {
  readonly id: number;
  // --- architectural state ---
  cpl: Cpl = 0;
  /** RFLAGS.IF */
  ifFlag = false;
  /** STI / MOV SS interrupt shadow: interrupts are blocked until the next instruction retires. */
  interruptShadow = false;
  /** NMIs are blocked from NMI delivery until the next IRET. */
  nmiBlocked = false;
  cr0 = 0;
  cr2 = 0;
  cr3 = 0;
  cr4 = 0;
  inSmm = false;
  activity: Activity = 'active';
  /**
   * True while the vCPU runs a nested (L2) guest. Entered with `enterGuestMode` (the VMCS gives
   * L2's code and state), left with `nestedVmexit`. Host tests may set it alone to make the host
   * see guest mode while the attached code keeps running.
   */
  guestMode = false;
  // --- bookkeeping ---
  lastCost = 0;
  lastExit: VmExit | null = null;
  /** Instructions retired so far. */
  retired = 0;
  private deliverySeq = 0;
  private exitInsn: Insn | null = null;
  private busyInsn: Insn | null = null;
  private smmSave: SmmSave | null = null;
  private guest: GuestCode | null = null;
  /** The VMCS of the L2 guest running in guest mode (null outside guest mode). */
  private vmcs: Vmcs12 | null = null;
  readonly mmu: GuestMmu;
  private readonly mem: PhysMemory;
  private readonly slat: SecondLevelMmu;
  private readonly clock: ClockSource;
  private readonly trace: CpuTraceSink;

  constructor(opts: VcpuOptions) {
    this.id = opts.id;
    this.mem = opts.memory;
    this.slat = opts.slat;
    this.clock = opts.clock;
    this.trace = opts.trace;
    this.mmu = new GuestMmu(opts.memory, opts.slat);
  }

  /** Attach the guest software that runs on this CPU. */
  attach(guest: GuestCode): void {
    this.guest = guest;
  }

  get paging(): boolean {
    return (this.cr0 & CR0_PG) !== 0;
  }

  /**
   * Could a maskable interrupt be taken at this instruction boundary? (IF=1, no shadow, not in SMM.)
   * In guest mode with external-interrupt exiting, an interrupt for L1 is taken as a VM-exit whatever
   * L2's RFLAGS.IF and interrupt shadow are.
   */
  interruptAllowed(): boolean {
    if (this.inSmm || this.activity === 'shutdown') return false;
    if (this.guestMode && this.vmcs !== null && this.vmcs.extIntExiting) return true;
    return this.ifFlag && !this.interruptShadow;
  }

  /** NMIs: not while blocked (until IRET); in guest mode with NMI exiting an NMI always exits to L1. */
  nmiAllowed(): boolean {
    if (this.inSmm || this.activity === 'shutdown') return false;
    if (this.guestMode && this.vmcs !== null && this.vmcs.extIntExiting) return true;
    return !this.nmiBlocked;
  }

  /** The VMCS of the running L2 guest (null outside guest mode). */
  get currentVmcs(): Vmcs12 | null {
    return this.vmcs;
  }

  /** Is an exit waiting for `completeExit` (or for the hypervisor to re-execute the instruction)? */
  get exitPending(): boolean {
    return this.exitInsn !== null;
  }

  get busy(): boolean {
    return this.busyInsn !== null;
  }

  private code(): GuestCode | Vmcs12['code'] {
    if (this.guestMode && this.vmcs !== null) return this.vmcs.code;
    return this.l1();
  }

  /** The code attached with `attach` (the L1 guest when a nested guest runs). */
  private l1(): GuestCode {
    if (this.guest === null) throw new Error(`vCPU ${this.id}: no guest code attached`);
    return this.guest;
  }

  /** Execute one instruction. See the STEP_* codes. */
  step(): StepOutcome {
    if (this.activity !== 'active') return STEP_INACTIVE;
    if (this.busyInsn !== null) throw new Error(`vCPU ${this.id}: step() while a compute instruction is in flight`);
    this.lastExit = null;
    this.exitInsn = null;
    const guest = this.code();
    const insn = guest.fetch();
    const shadow = this.interruptShadow;
    const l2 = this.guestMode ? this.vmcs : null;
    if (l2 !== null && !L2_OPS.has(insn.op)) throw new Error(`vCPU ${this.id}: '${insn.op}' in a nested (L2) guest is not modelled`);
    let cost: number = COST.simple;
    let result: InsnResult;
    switch (insn.op) {
      case 'load':
      case 'store': {
        const write = insn.op === 'store';
        let pa: Gpa;
        if (l2 !== null) {
          // L2: paging off, EPT12 an offset into L1's guest-physical memory (see Vmcs12).
          if (insn.gva < 0 || insn.gva + insn.size > l2.memSize) {
            throw new Error(`vCPU ${this.id}: L2 access at 0x${insn.gva.toString(16)} outside its ${l2.memSize}-byte memory (not modelled)`);
          }
          cost = COST.memory;
          pa = (l2.memBase + insn.gva) as Gpa;
        } else {
          const walksBefore = this.mmu.walks;
          const code = this.mmu.translate(insn.gva, write, this.cpl === 3, this.paging, this.cr3);
          cost = COST.memory + (this.mmu.walks !== walksBefore ? COST.walk : 0);
          if (code !== XLATE_OK) return this.translationFailed(code, insn, insn.gva, write, cost);
          pa = this.mmu.gpa;
        }
        if ((pa % PAGE_SIZE) + insn.size > PAGE_SIZE) {
          throw new Error(`vCPU ${this.id}: ${insn.size}-byte access at 0x${insn.gva.toString(16)} crosses a page boundary (not modelled)`);
        }
        // Second level: the host frame behind the guest frame, or an EPT violation / MMIO exit.
        const gfn = floor(pa / PAGE_SIZE);
        const hfn = this.slat.translate(gfn, write);
        if (hfn < 0) {
          if (hfn === SLAT_MMIO) return this.exit(insn, { reason: 'mmio', gpa: pa, write }, cost);
          return this.exit(insn, { reason: 'ept_violation', gpa: pa, gva: insn.gva, write, walk: false }, cost);
        }
        const hpa = pa + (hfn - gfn) * PAGE_SIZE;
        result = write ? this.store(hpa, insn.size, insn.value) : this.load(hpa, insn.size);
        break;
      }
      case 'rdmsr':
        if (this.cpl !== 0) return this.fault(VEC_GP, 0, cost);
        return this.exit(insn, { reason: 'msr_read', msr: insn.msr }, cost);
      case 'wrmsr':
        if (this.cpl !== 0) return this.fault(VEC_GP, 0, cost);
        return this.exit(insn, { reason: 'msr_write', msr: insn.msr, value: insn.value }, cost);
      case 'cpuid':
        return this.exit(insn, { reason: 'cpuid', leaf: insn.leaf, subleaf: insn.subleaf ?? 0 }, cost);
      case 'sti':
        if (this.cpl !== 0) return this.fault(VEC_GP, 0, cost);
        if (!this.ifFlag) {
          this.ifFlag = true;
          this.interruptShadow = true;
        }
        break;
      case 'cli':
        if (this.cpl !== 0) return this.fault(VEC_GP, 0, cost);
        this.ifFlag = false;
        break;
      case 'hlt':
      case 'sti_hlt':
        if (this.cpl !== 0) return this.fault(VEC_GP, 0, cost);
        if (insn.op === 'sti_hlt') this.ifFlag = true;
        this.interruptShadow = false;
        this.activity = 'hlt';
        return this.exit(insn, { reason: 'hlt' }, cost);
      case 'pause':
        break;
      case 'compute':
        this.busyInsn = insn;
        this.lastCost = max(0, insn.ns);
        return STEP_BUSY;
      case 'read_cr':
        if (this.cpl !== 0) return this.fault(VEC_GP, 0, cost);
        result = insn.cr === 0 ? this.cr0 : insn.cr === 2 ? this.cr2 : insn.cr === 3 ? this.cr3 : this.cr4;
        break;
      case 'write_cr':
        if (this.cpl !== 0) return this.fault(VEC_GP, 0, cost);
        if (insn.cr === 0) {
          if ((insn.value & CR0_PG) !== (this.cr0 & CR0_PG)) return this.exit(insn, { reason: 'cr_write', cr: 0, value: insn.value }, cost);
          this.cr0 = insn.value;
        } else if (insn.cr === 2) {
          this.cr2 = insn.value;
        } else if (insn.cr === 3) {
          this.cr3 = insn.value;
          this.mmu.flush();
        } else {
          this.cr4 = insn.value;
        }
        break;
      case 'invlpg':
        if (this.cpl !== 0) return this.fault(VEC_GP, 0, cost);
        this.mmu.invalidate(insn.gva);
        break;
      case 'rdtsc':
        result = this.clock.now;
        break;
      case 'syscall': {
        // From CPL 1-3 into the CPL 0 entry; the model refuses it at CPL 0.
        if (this.cpl === 0) return this.fault(VEC_UD, undefined, cost);
        this.retire(undefined, shadow);
        this.lastCost = COST.syscall;
        this.vectorEvent({ kind: 'syscall', nr: insn.nr });
        return STEP_RETIRED;
      }
      case 'iret': {
        if (this.cpl !== 0) return this.fault(VEC_GP, 0, cost);
        const f = insn.frame;
        this.cpl = f.savedCpl;
        this.ifFlag = f.savedIf;
        this.nmiBlocked = false;
        this.trace.emit('cpu', this.id, 'iret', { vector: eventVector(f.event), cpl: f.savedCpl, if: f.savedIf });
        cost = f.event.kind === 'syscall' ? COST.syscall : COST.vector;
        this.lastCost = cost;
        this.retire(undefined, false);
        this.interruptShadow = false;
        return STEP_RETIRED;
      }
      case 'ud2':
        return this.fault(VEC_UD, undefined, cost);
      case 'vmenter':
        if (this.cpl !== 0) return this.fault(VEC_GP, 0, cost);
        return this.exit(insn, { reason: 'vmenter', vmcs: insn.vmcs, launch: insn.launch }, cost);
    }
    this.lastCost = cost;
    this.retire(result, shadow);
    return STEP_RETIRED;
  }

  /** Finish an in-flight compute instruction after `elapsed` ns (all of it, or less when preempted). */
  endBusy(elapsed: number): void {
    const insn = this.busyInsn;
    if (insn === null || insn.op !== 'compute') throw new Error(`vCPU ${this.id}: endBusy() with no compute in flight`);
    this.busyInsn = null;
    const shadow = this.interruptShadow;
    this.retire(max(0, min(insn.ns, elapsed)), shadow);
  }

  /**
   * Complete the instruction that exited: RDMSR/CPUID with their result, WRMSR, HLT (the vCPU
   * woke up), CR0 write (after `setCr0`).
   */
  completeExit(result?: InsnResult): void {
    const insn = this.exitInsn;
    if (insn === null) throw new Error(`vCPU ${this.id}: completeExit() with no exit pending`);
    this.exitInsn = null;
    this.lastExit = null;
    if (insn.op === 'hlt' || insn.op === 'sti_hlt') this.activity = 'active';
    this.retire(result, false);
  }

  /**
   * Drop the pending exit without retiring: the instruction runs again at the next step (after
   * the hypervisor fixed the cause, e.g. mapped the page), or an exception is being injected.
   */
  abandonExit(): void {
    const insn = this.exitInsn;
    this.exitInsn = null;
    this.lastExit = null;
    if (insn !== null && (insn.op === 'hlt' || insn.op === 'sti_hlt')) this.activity = 'active';
  }

  /** Load CR0 (the hypervisor applying an intercepted write, SMM entry/exit, reset). */
  setCr0(value: number): void {
    const pgChanged = (value & CR0_PG) !== (this.cr0 & CR0_PG);
    this.cr0 = value;
    if (pgChanged) this.mmu.flush();
  }

  /**
   * Deliver an event through the IDT (VM-entry injection, or a hardware exception). Delivery
   * clears IF (Linux uses interrupt gates everywhere), enters CPL 0, writes CR2 for #PF and
   * blocks NMIs for an NMI. A missing gate raises #GP, then #DF, then a triple fault.
   */
  deliver(ev: DeliveredEvent): DeliverOutcome {
    if (this.activity === 'shutdown') return 'triple_fault';
    if (this.exitInsn !== null) this.abandonExit();
    if (this.busyInsn !== null) throw new Error(`vCPU ${this.id}: deliver() while a compute instruction is in flight`);
    return this.vectorEvent(ev);
  }

  private vectorEvent(ev: DeliveredEvent): DeliverOutcome {
    let current: DeliveredEvent = ev;
    for (;;) {
      if (this.activity === 'hlt') this.activity = 'active';
      if (current.kind === 'exception' && current.vector === VEC_PF && current.cr2 !== undefined) this.cr2 = current.cr2;
      const frame: TrapFrame = { event: current, savedCpl: this.cpl, savedIf: this.ifFlag, seq: ++this.deliverySeq, t: this.clock.now };
      const prevCpl = this.cpl;
      const prevIf = this.ifFlag;
      const prevNmi = this.nmiBlocked;
      this.cpl = 0;
      this.ifFlag = false;
      this.interruptShadow = false;
      if (current.kind === 'nmi') this.nmiBlocked = true;
      this.emitDelivery(current, frame);
      if (this.code().vector(frame)) return 'delivered';
      // No present gate: the delivery did not happen; raise #GP (IDT, external) in its place.
      this.cpl = prevCpl;
      this.ifFlag = prevIf;
      this.nmiBlocked = prevNmi;
      const vec = eventVector(current);
      this.trace.emit('cpu', this.id, 'idt_gate_missing', { vector: vec });
      const first = current.kind === 'exception' ? vec : -1;
      const combined = first < 0 ? 'serial' : combineExceptions(first, VEC_GP);
      if (combined === 'triple_fault') return this.tripleFault();
      current = combined === 'double_fault'
        ? { kind: 'exception', vector: VEC_DF, errorCode: 0 }
        : { kind: 'exception', vector: VEC_GP, errorCode: vec * 8 + 2 + (current.kind === 'exception' ? 0 : 1) };
    }
  }

  private emitDelivery(ev: DeliveredEvent, frame: TrapFrame): void {
    switch (ev.kind) {
      case 'exception':
        this.trace.emit('cpu', this.id, 'exception', {
          vector: ev.vector,
          error_code: ev.errorCode,
          cr2: ev.vector === VEC_PF ? this.cr2 : undefined,
          cpl: frame.savedCpl,
          if: frame.savedIf,
        });
        break;
      case 'interrupt':
        this.trace.emit('cpu', this.id, 'interrupt', { vector: ev.vector, cpl: frame.savedCpl });
        break;
      case 'nmi':
        this.trace.emit('cpu', this.id, 'nmi', { cpl: frame.savedCpl, if: frame.savedIf });
        break;
      case 'syscall':
        this.trace.emit('cpu', this.id, 'syscall', { nr: ev.nr });
        break;
    }
  }

  private tripleFault(): DeliverOutcome {
    this.activity = 'shutdown';
    this.trace.emit('cpu', this.id, 'triple_fault', {});
    return 'triple_fault';
  }

  /**
   * Nested VM entry, as the hypervisor below emulates it after a `vmenter` exit: the VMLAUNCH/
   * VMRESUME retires in L1, L2's state is loaded from the VMCS, and the vCPU fetches from L2's code
   * until `nestedVmexit`.
   */
  enterGuestMode(vmcs: Vmcs12): void {
    const insn = this.exitInsn;
    if (insn === null || insn.op !== 'vmenter') throw new Error(`vCPU ${this.id}: enterGuestMode() without a pending VMLAUNCH/VMRESUME exit`);
    if (this.guestMode) throw new Error(`vCPU ${this.id}: nested VM entry while already in guest mode`);
    this.completeExit();
    this.vmcs = vmcs;
    this.guestMode = true;
    this.cpl = vmcs.guest.cpl;
    this.ifFlag = vmcs.guest.ifFlag;
    this.interruptShadow = false;
    this.mmu.flush();
    this.trace.emit('cpu', this.id, 'nested_vmenter', { cpl: this.cpl, if: this.ifFlag, launch: insn.launch });
  }

  /**
   * VM-exit from L2 to L1 (nested virtualization): save L2's state into its VMCS, leave guest mode,
   * load L1's host state (CPL 0, IF 0) and hand the exit to the L1 hypervisor's code.
   */
  nestedVmexit(exit: NestedVmexit): void {
    const guest = this.l1();
    if (!this.guestMode || guest.vmexit === undefined) throw new Error(`vCPU ${this.id}: nested VM-exit while not running an L2 guest`);
    if (this.busyInsn !== null) throw new Error(`vCPU ${this.id}: nested VM-exit while a compute instruction is in flight`);
    if (this.exitInsn !== null) this.abandonExit();
    const vmcs = this.vmcs;
    if (vmcs !== null) {
      vmcs.guest.cpl = this.cpl;
      vmcs.guest.ifFlag = this.ifFlag;
      this.vmcs = null;
    }
    this.guestMode = false;
    this.cpl = 0;
    this.ifFlag = false;
    this.interruptShadow = false;
    this.mmu.flush();
    this.trace.emit('cpu', this.id, 'nested_vmexit', { reason: exit.reason, vector: exit.vector, error_code: exit.errorCode, exit_qualification: exit.exitQualification });
    guest.vmexit(exit);
  }

  /** Enter System Management Mode (SMI): paging and interrupts off, state saved for RSM. */
  enterSmm(): void {
    if (this.inSmm) return;
    this.smmSave = { cr0: this.cr0, ifFlag: this.ifFlag, cpl: this.cpl };
    this.inSmm = true;
    if (this.activity === 'hlt') this.activity = 'active';
    this.setCr0(0);
    this.ifFlag = false;
    this.cpl = 0;
  }

  /** RSM: leave SMM and restore the saved state. */
  leaveSmm(): void {
    const s = this.smmSave;
    if (!this.inSmm || s === null) return;
    this.inSmm = false;
    this.smmSave = null;
    this.setCr0(s.cr0);
    this.ifFlag = s.ifFlag;
    this.cpl = s.cpl;
  }

  /** INIT or RESET: architectural reset state; the guest restarts at its reset vector. */
  reset(kind: ResetKind): void {
    this.cpl = 0;
    this.ifFlag = false;
    this.interruptShadow = false;
    this.nmiBlocked = false;
    this.cr0 = 0;
    this.cr2 = 0;
    this.cr3 = 0;
    this.cr4 = 0;
    this.inSmm = false;
    this.smmSave = null;
    this.activity = 'active';
    this.guestMode = false;
    this.vmcs = null;
    this.exitInsn = null;
    this.busyInsn = null;
    this.lastExit = null;
    this.mmu.flush();
    this.trace.emit('cpu', this.id, kind, {});
    this.l1().reset(kind);
  }

  // --- helpers ---

  private retire(result: InsnResult, shadowBefore: boolean): void {
    if (shadowBefore) this.interruptShadow = false;
    this.retired++;
    this.code().retire(result);
  }

  private exit(insn: Insn, exit: VmExit, cost: number): StepOutcome {
    this.exitInsn = insn;
    this.lastExit = exit;
    this.lastCost = cost;
    return STEP_EXIT;
  }

  private fault(vector: number, errorCode: number | undefined, cost: number, cr2?: number): StepOutcome {
    this.lastCost = cost + COST.vector;
    const ev: DeliveredEvent = cr2 === undefined
      ? { kind: 'exception', vector, errorCode }
      : { kind: 'exception', vector, errorCode, cr2 };
    if (this.vectorEvent(ev) === 'triple_fault') {
      this.lastExit = { reason: 'triple_fault' };
      return STEP_EXIT;
    }
    return STEP_FAULTED;
  }

  private translationFailed(code: number, insn: Insn, va: Gva, write: boolean, cost: number): StepOutcome {
    switch (code) {
      case XLATE_PF:
        return this.fault(VEC_PF, this.mmu.faultErrorCode, cost, va);
      case XLATE_EPT_WALK:
        return this.exit(insn, { reason: 'ept_violation', gpa: this.mmu.faultGpa, gva: va, write: false, walk: true }, cost);
      case XLATE_BAD_TABLE:
        return this.exit(insn, { reason: 'mmio', gpa: this.mmu.faultGpa, write }, cost);
      default:
        throw new Error(`vCPU ${this.id}: unknown translation outcome ${code}`);
    }
  }

  private load(pa: number, size: number): number | bigint {
    switch (size) {
      case 1:
        return this.mem.readU8(pa);
      case 2:
        return this.mem.readU16(pa);
      case 4:
        return this.mem.readU32(pa);
      default:
        return this.mem.readU64(pa);
    }
  }

  private store(pa: number, size: number, value: number | bigint): undefined {
    switch (size) {
      case 1:
        this.mem.writeU8(pa, Number(value) & 0xff);
        break;
      case 2:
        this.mem.writeU16(pa, Number(value) & 0xffff);
        break;
      case 4:
        this.mem.writeU32(pa, typeof value === 'number' ? value >>> 0 : Number(asUintN(32, value)));
        break;
      default:
        this.mem.writeU64(pa, asUintN(64, typeof value === 'bigint' ? value : BigInt(value)));
    }
    return undefined;
  }
}
