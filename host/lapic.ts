/**
 * The in-kernel local APIC (KVM's lapic.c), x2APIC MSR interface only, with the SDM behaviour the
 * async-PF protocol depends on:
 * - it starts software-disabled (SPIV bit 8 clear); while software-disabled it drops fixed
 *   interrupts and keeps every LVT masked (this is the mechanism of the disabled-LAPIC bug,
 *   spec §7.10);
 * - fixed-mode edge interrupts go to IRR; the highest IRR vector whose priority class is above
 *   the processor priority (max of TPR and the highest in-service class) is deliverable; taking it
 *   moves it to ISR; EOI retires the highest ISR bit;
 * - enabling it (SPIV bit 8 0→1, or IA32_APIC_BASE EN 0→1) re-raises KVM_REQ_APF_READY through
 *   the owner (2f15d027c05f), which the owner does only when the `lapic_enabled_check` toggle is on;
 * - timer: LVT timer modes one-shot / periodic / TSC-deadline; counts are nanoseconds
 *   (divide-by-1), the TSC is virtual nanoseconds.
 */
import { X86_MSR } from '../shared-abi/msr';
import type { Simulation } from '../sim/engine';
import { Priority, type EventHandle } from '../sim/queue';

/** x2APIC register MSRs beyond the ones shared-abi names (SDM: 0x800 + xAPIC offset / 16). */
const X2 = X86_MSR.X2APIC_BASE;
export const X2APIC_MSR = {
  ID: X2 + 0x2,
  VERSION: X2 + 0x3,
  TPR: X86_MSR.X2APIC_TPR,
  PPR: X2 + 0xa,
  EOI: X86_MSR.X2APIC_EOI,
  LDR: X2 + 0xd,
  SPIV: X86_MSR.X2APIC_SPIV,
  ISR0: X86_MSR.X2APIC_ISR0,
  TMR0: X2 + 0x18,
  IRR0: X86_MSR.X2APIC_IRR0,
  ESR: X2 + 0x28,
  LVT_CMCI: X2 + 0x2f,
  ICR: X86_MSR.X2APIC_ICR,
  LVT_TIMER: X86_MSR.X2APIC_LVT_TIMER,
  LVT_THERMAL: X2 + 0x33,
  LVT_PMI: X2 + 0x34,
  LVT_LINT0: X2 + 0x35,
  LVT_LINT1: X2 + 0x36,
  LVT_ERROR: X2 + 0x37,
  TIMER_INITIAL: X2 + 0x38,
  TIMER_CURRENT: X2 + 0x39,
  TIMER_DIVIDE: X2 + 0x3e,
  SELF_IPI: X2 + 0x3f,
} as const;

export const SPIV_APIC_ENABLED = 0x100;
export const LVT_MASKED = 0x10000;
const LVT_TIMER_MODE_SHIFT = 17;
const LVT_TIMER_MODE_MASK = 0x3 << LVT_TIMER_MODE_SHIFT;
export const TIMER_ONESHOT = 0;
export const TIMER_PERIODIC = 1;
export const TIMER_TSC_DEADLINE = 2;
/** KVM's min_timer_period_us default (200 µs): the shortest periodic timer period it programs. */
export const MIN_TIMER_PERIOD_NS = 200_000;
/** APIC version register value (version 0x14, max LVT entry 6). */
const APIC_VERSION = 0x60014;
/** IA32_APIC_BASE: default base address and flags. */
const APIC_BASE_ADDR = 0xfee00000n;
export const APIC_BASE_BSP = 1n << 8n;
export const APIC_BASE_EXTD = 1n << 10n;
export const APIC_BASE_EN = 1n << 11n;

/** ICR delivery modes the model implements (bits 10:8). */
export type DeliveryMode = 'fixed' | 'nmi' | 'init' | 'startup';
const DM_FIXED = 0;
const DM_NMI = 4;
const DM_INIT = 5;
const DM_STARTUP = 6;

/** ICR destination shorthand (bits 19:18). */
export type IpiShorthand = 'none' | 'self' | 'all' | 'others';

/** What the LAPIC needs from its vCPU and VM. */
export interface LapicOwner {
  /** The vCPU's index (the trace's `cpu`). */
  readonly vcpuId: number;
  /** KVM's vcpu_id, which is also the x2APIC id (ID and LDR registers, `apicid` in traces, the BSP test). */
  readonly apicId: number;
  readonly sim: Simulation;
  /** A new interrupt is pending for this vCPU (kvm_vcpu_kick). */
  kick(): void;
  /** NMI delivery mode: queue an NMI (kvm_inject_nmi). */
  nmi(): void;
  /** INIT delivery mode: the vCPU gets an INIT. */
  init(): void;
  /** Start-up delivery mode: the vCPU gets a SIPI with `vector` (acted on only in wait-for-SIPI). */
  sipi(vector: number): void;
  /** SPIV software enable or APIC_BASE hardware enable happened. */
  enabled(): void;
  /** Route an IPI from this LAPIC (ICR write). */
  ipi(shorthand: IpiShorthand, dest: number, mode: DeliveryMode, vector: number): void;
}

/** A 256-bit vector register (IRR, ISR). */
class Bits256 {
  private readonly w = new Uint32Array(8);
  get(v: number): boolean {
    return ((this.w[v >>> 5]! >>> (v & 31)) & 1) === 1;
  }
  set(v: number): void {
    this.w[v >>> 5] = (this.w[v >>> 5]! | (1 << (v & 31))) >>> 0;
  }
  clear(v: number): void {
    this.w[v >>> 5] = (this.w[v >>> 5]! & ~(1 << (v & 31))) >>> 0;
  }
  word(i: number): number {
    return this.w[i] ?? 0;
  }
  highest(): number {
    for (let i = 7; i >= 0; i--) {
      const x = this.w[i]!;
      if (x !== 0) return i * 32 + (31 - Math.clz32(x));
    }
    return -1;
  }
  reset(): void {
    this.w.fill(0);
  }
}

export class Lapic {
  spiv = 0xff;
  tpr = 0;
  hwEnabled = true;
  icr = 0n;
  esr = 0;
  lvtTimer = LVT_MASKED;
  /** LVT entries other than the timer (thermal, PMI, LINT0, LINT1, error, CMCI): stored only. */
  private readonly otherLvt = new Map<number, number>();
  timerInitial = 0;
  timerDivide = 0;
  tscDeadline = 0;
  readonly irr = new Bits256();
  readonly isr = new Bits256();
  private timerStart = 0;
  private timerHandle: EventHandle | null = null;
  /** Counters: interrupts accepted, dropped (disabled LAPIC), coalesced, EOIs. */
  readonly stats = { accepted: 0, dropped: 0, coalesced: 0, eois: 0, timerFires: 0 };

  constructor(private readonly owner: LapicOwner) {
    this.resetRegisters();
  }

  get swEnabled(): boolean {
    return (this.spiv & SPIV_APIC_ENABLED) !== 0;
  }

  /** kvm_lapic_enabled: hardware- and software-enabled. */
  get enabled(): boolean {
    return this.hwEnabled && this.swEnabled;
  }

  /** INIT/RESET (kvm_lapic_reset): software-disabled, LVTs masked, IRR/ISR clear, timer stopped. */
  reset(): void {
    this.stopTimer();
    this.resetRegisters();
  }

  private resetRegisters(): void {
    this.spiv = 0xff;
    this.tpr = 0;
    this.icr = 0n;
    this.esr = 0;
    this.lvtTimer = LVT_MASKED;
    this.otherLvt.clear();
    for (const r of [X2APIC_MSR.LVT_THERMAL, X2APIC_MSR.LVT_PMI, X2APIC_MSR.LVT_LINT0, X2APIC_MSR.LVT_LINT1, X2APIC_MSR.LVT_ERROR, X2APIC_MSR.LVT_CMCI]) {
      this.otherLvt.set(r, LVT_MASKED);
    }
    this.timerInitial = 0;
    this.timerDivide = 0;
    this.tscDeadline = 0;
    this.irr.reset();
    this.isr.reset();
  }

  /** Processor priority (SDM 10.8.3.1): TPR if its class is at least the highest in-service class, else that class. */
  ppr(): number {
    const isrv = this.isr.highest();
    const isrClass = isrv < 0 ? 0 : isrv & 0xf0;
    return (this.tpr & 0xf0) >= isrClass ? this.tpr & 0xff : isrClass;
  }

  /** The vector that would be delivered now, or -1 (apic_has_interrupt_for_ppr). */
  highestDeliverable(): number {
    if (!this.hwEnabled) return -1;
    const v = this.irr.highest();
    if (v < 0) return -1;
    return (v & 0xf0) > (this.ppr() & 0xf0) ? v : -1;
  }

  /** The CPU takes vector `v`: IRR → ISR (kvm_apic_ack_interrupt). */
  ack(v: number): void {
    this.irr.clear(v);
    this.isr.set(v);
  }

  /**
   * __apic_accept_irq. Fixed mode: dropped when the LAPIC is disabled, else set in IRR (coalesced
   * when already set) and the vCPU is kicked. Returns whether the interrupt was accepted.
   */
  accept(mode: DeliveryMode, vector: number): boolean {
    const vec = vector & 0xff;
    const trace = this.owner.sim.trace;
    switch (mode) {
      case 'fixed': {
        if (!this.enabled) {
          this.stats.dropped++;
          trace.emit('host', this.owner.vcpuId, 'kvm_apic_irq_dropped', { apicid: this.owner.apicId, vec, why: this.hwEnabled ? 'sw_disabled' : 'hw_disabled' });
          return false;
        }
        const coalesced = this.irr.get(vec);
        if (coalesced) this.stats.coalesced++;
        else this.stats.accepted++;
        this.irr.set(vec);
        trace.emit('host', this.owner.vcpuId, 'kvm_apic_accept_irq', { apicid: this.owner.apicId, dm: 'fixed', vec, coalesced });
        this.owner.kick();
        return !coalesced;
      }
      case 'nmi':
        trace.emit('host', this.owner.vcpuId, 'kvm_apic_accept_irq', { apicid: this.owner.apicId, dm: 'nmi', vec, coalesced: false });
        this.owner.nmi();
        return true;
      case 'init':
        trace.emit('host', this.owner.vcpuId, 'kvm_apic_accept_irq', { apicid: this.owner.apicId, dm: 'init', vec, coalesced: false });
        this.owner.init();
        return true;
      case 'startup':
        trace.emit('host', this.owner.vcpuId, 'kvm_apic_accept_irq', { apicid: this.owner.vcpuId, dm: 'startup', vec, coalesced: false });
        this.owner.sipi(vec);
        return true;
    }
  }

  /** EOI: clear the highest in-service bit (no-op when none). */
  eoi(): void {
    const v = this.isr.highest();
    if (v < 0) return;
    this.isr.clear(v);
    this.stats.eois++;
    this.owner.sim.trace.emit('host', this.owner.vcpuId, 'kvm_apic_eoi', { vector: v });
    // A lower-priority interrupt may have become deliverable.
    if (this.highestDeliverable() >= 0) this.owner.kick();
  }

  // --- MSR interface -------------------------------------------------------------------------

  /** x2APIC register read; undefined = #GP (write-only or unknown register). */
  readMsr(msr: number): bigint | undefined {
    if (msr === X86_MSR.IA32_APIC_BASE) return this.apicBase();
    if (msr === X86_MSR.IA32_TSC_DEADLINE) return BigInt(this.timerMode() === TIMER_TSC_DEADLINE ? this.tscDeadline : 0);
    if (msr >= X2APIC_MSR.ISR0 && msr < X2APIC_MSR.ISR0 + 8) return BigInt(this.isr.word(msr - X2APIC_MSR.ISR0));
    if (msr >= X2APIC_MSR.TMR0 && msr < X2APIC_MSR.TMR0 + 8) return 0n;
    if (msr >= X2APIC_MSR.IRR0 && msr < X2APIC_MSR.IRR0 + 8) return BigInt(this.irr.word(msr - X2APIC_MSR.IRR0));
    const other = this.otherLvt.get(msr);
    if (other !== undefined) return BigInt(other);
    switch (msr) {
      case X2APIC_MSR.ID:
        return BigInt(this.owner.apicId >>> 0);
      case X2APIC_MSR.VERSION:
        return BigInt(APIC_VERSION);
      case X2APIC_MSR.TPR:
        return BigInt(this.tpr);
      case X2APIC_MSR.PPR:
        return BigInt(this.ppr());
      case X2APIC_MSR.LDR:
        return BigInt((((this.owner.apicId >>> 4) << 16) | (1 << (this.owner.apicId & 0xf))) >>> 0);
      case X2APIC_MSR.SPIV:
        return BigInt(this.spiv);
      case X2APIC_MSR.ESR:
        return BigInt(this.esr);
      case X2APIC_MSR.ICR:
        return this.icr;
      case X2APIC_MSR.LVT_TIMER:
        return BigInt(this.lvtTimer);
      case X2APIC_MSR.TIMER_INITIAL:
        return BigInt(this.timerInitial);
      case X2APIC_MSR.TIMER_CURRENT:
        return BigInt(this.currentCount());
      case X2APIC_MSR.TIMER_DIVIDE:
        return BigInt(this.timerDivide);
      default:
        return undefined;
    }
  }

  /** x2APIC register write; false = #GP (read-only, unknown, or reserved bits in ICR/SELF_IPI). */
  writeMsr(msr: number, value: bigint): boolean {
    const lo = Number(value & 0xffffffffn);
    if (msr === X86_MSR.IA32_APIC_BASE) return this.setApicBase(value);
    if (msr === X86_MSR.IA32_TSC_DEADLINE) {
      this.setTscDeadline(value);
      return true;
    }
    if (this.otherLvt.has(msr)) {
      this.otherLvt.set(msr, this.swEnabled ? lo & 0x1_f7ff : (lo & 0x1_f7ff) | LVT_MASKED);
      return true;
    }
    switch (msr) {
      case X2APIC_MSR.TPR:
        this.tpr = lo & 0xff;
        if (this.highestDeliverable() >= 0) this.owner.kick();
        return true;
      case X2APIC_MSR.EOI:
        this.eoi();
        return true;
      case X2APIC_MSR.SPIV:
        this.setSpiv(lo);
        return true;
      case X2APIC_MSR.ESR:
        this.esr = 0;
        return true;
      case X2APIC_MSR.ICR:
        this.writeIcr(value);
        return true;
      case X2APIC_MSR.LVT_TIMER:
        this.setLvtTimer(lo);
        return true;
      case X2APIC_MSR.TIMER_INITIAL:
        this.setInitialCount(lo);
        return true;
      case X2APIC_MSR.TIMER_DIVIDE:
        this.timerDivide = lo & 0xb;
        return true;
      case X2APIC_MSR.SELF_IPI:
        this.accept('fixed', lo & 0xff);
        return true;
      default:
        return false;
    }
  }

  private apicBase(): bigint {
    return APIC_BASE_ADDR | APIC_BASE_EXTD | (this.hwEnabled ? APIC_BASE_EN : 0n) | (this.owner.apicId === 0 ? APIC_BASE_BSP : 0n);
  }

  /** IA32_APIC_BASE: only EN (bit 11) is modelled; hardware enable re-raises APF_READY via the owner. */
  private setApicBase(value: bigint): boolean {
    const en = (value & APIC_BASE_EN) !== 0n;
    if (en === this.hwEnabled) return true;
    this.hwEnabled = en;
    if (en) {
      this.owner.sim.trace.emit('host', this.owner.vcpuId, 'kvm_lapic_enable', { how: 'apic_base' });
      this.owner.enabled();
    } else {
      this.stopTimer();
      this.owner.sim.trace.emit('host', this.owner.vcpuId, 'kvm_lapic_disable', { how: 'apic_base' });
    }
    return true;
  }

  private setSpiv(v: number): void {
    const was = this.swEnabled;
    this.spiv = v & 0x13ff;
    const now = this.swEnabled;
    if (was === now) return;
    if (now) {
      this.owner.sim.trace.emit('host', this.owner.vcpuId, 'kvm_lapic_enable', { how: 'spiv' });
      this.owner.enabled();
      if (this.highestDeliverable() >= 0) this.owner.kick();
    } else {
      // Software disable masks every LVT entry (SDM 10.4.7.2).
      this.lvtTimer |= LVT_MASKED;
      for (const [k, x] of this.otherLvt) this.otherLvt.set(k, x | LVT_MASKED);
      this.owner.sim.trace.emit('host', this.owner.vcpuId, 'kvm_lapic_disable', { how: 'spiv' });
    }
  }

  private writeIcr(value: bigint): void {
    this.icr = value & 0xffff_ffff_000c_0fffn;
    const lo = Number(value & 0xffffffffn);
    const vector = lo & 0xff;
    const dm = (lo >>> 8) & 0x7;
    const sh = (lo >>> 18) & 0x3;
    const dest = Number((value >> 32n) & 0xffffffffn);
    let mode: DeliveryMode;
    if (dm === DM_FIXED) mode = 'fixed';
    else if (dm === DM_NMI) mode = 'nmi';
    else if (dm === DM_INIT) mode = 'init';
    else if (dm === DM_STARTUP) mode = 'startup';
    else return; // lowest-priority, SMI...: not modelled, ignored
    const shorthand: IpiShorthand = sh === 0 ? 'none' : sh === 1 ? 'self' : sh === 2 ? 'all' : 'others';
    this.owner.ipi(shorthand, dest, mode, vector);
  }

  // --- timer ---------------------------------------------------------------------------------

  timerMode(): number {
    return (this.lvtTimer & LVT_TIMER_MODE_MASK) >>> LVT_TIMER_MODE_SHIFT;
  }

  private setLvtTimer(v: number): void {
    const oldMode = this.timerMode();
    let val = v & (0xff | LVT_MASKED | LVT_TIMER_MODE_MASK);
    if (!this.swEnabled) val |= LVT_MASKED;
    this.lvtTimer = val;
    if (this.timerMode() !== oldMode) {
      this.stopTimer();
      this.timerInitial = 0;
      this.tscDeadline = 0;
    }
  }

  private setInitialCount(count: number): void {
    if (this.timerMode() === TIMER_TSC_DEADLINE) return;
    this.stopTimer();
    this.timerInitial = count >>> 0;
    if (this.timerInitial === 0 || !this.hwEnabled) return;
    this.armAfter(this.timerMode() === TIMER_PERIODIC ? this.period() : this.timerInitial);
  }

  private setTscDeadline(value: bigint): void {
    if (this.timerMode() !== TIMER_TSC_DEADLINE || !this.hwEnabled) return;
    this.stopTimer();
    const dl = value > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(value);
    this.tscDeadline = dl;
    if (dl === 0) return;
    const now = this.owner.sim.now;
    // A deadline too far in the future never fires within a run; do not schedule it.
    if (dl - now > Number.MAX_SAFE_INTEGER / 2) return;
    this.armAfter(Math.max(0, dl - now));
  }

  /** Periodic mode never runs faster than KVM's min_timer_period_us (200 µs by default). */
  private period(): number {
    return Math.max(MIN_TIMER_PERIOD_NS, this.timerInitial);
  }

  private currentCount(): number {
    if (this.timerHandle === null || this.timerMode() === TIMER_TSC_DEADLINE || this.timerInitial === 0) return 0;
    const elapsed = this.owner.sim.now - this.timerStart;
    return Math.max(0, this.timerInitial - elapsed);
  }

  private armAfter(delay: number): void {
    this.timerStart = this.owner.sim.now;
    this.timerHandle = this.owner.sim.schedule(delay, Priority.Hardware, () => this.fire(), `lapic${this.owner.vcpuId}.timer`, 'host');
  }

  stopTimer(): void {
    if (this.timerHandle !== null) this.timerHandle.cancel();
    this.timerHandle = null;
  }

  private fire(): void {
    this.timerHandle = null;
    this.stats.timerFires++;
    const mode = this.timerMode();
    if (mode === TIMER_TSC_DEADLINE) this.tscDeadline = 0;
    if ((this.lvtTimer & LVT_MASKED) === 0) this.accept('fixed', this.lvtTimer & 0xff);
    if (mode === TIMER_PERIODIC && this.timerInitial > 0 && this.hwEnabled) this.armAfter(this.period());
  }
}
