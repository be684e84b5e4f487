/**
 * A scripted bare-metal guest in the style of kvm-unit-tests: no scheduler, no tasks, one
 * context on one vCPU running a script of raw operations, with configurable #PF and page-ready
 * handler policies and a log of everything it observed (also emitted as `bare_*` trace events).
 *
 * Memory (written by `load()` before the vCPU runs): an identity map of all guest memory with
 * P|RW|US at 4 KiB granularity (so CPL 3 can touch anything), page tables from 0x2000, and the
 * APF area at `apfArea` (default 0x1000).
 */
import { PAGE_SIZE, type Gva } from '../../shared-abi/addr';
import { KVM_APF_WAKE_ALL_TOKEN, KVM_PV_REASON_PAGE_NOT_PRESENT, KVM_PV_REASON_PAGE_READY } from '../../shared-abi/apf';
import { CR0_PE, CR0_PG, CR0_WP, PTE_P, PTE_RW, PTE_US, type Cpl, type GuestCode, type Insn, type InsnResult, type ResetKind, type TrapFrame } from '../../shared-abi/arch';
import { APF_FLAGS_OFFSET, APF_TOKEN_OFFSET } from '../../shared-abi/layout';
import { encodeAsyncPfEn, MSR_KVM_ASYNC_PF_ACK, MSR_KVM_ASYNC_PF_EN, MSR_KVM_ASYNC_PF_INT, X86_MSR } from '../../shared-abi/msr';
import { HYPERVISOR_CALLBACK_VECTOR, LINUX_VECTOR, X86_EXCEPTION } from '../../shared-abi/vectors';
import type { Simulation } from '../../sim/engine';
import type { GuestMemory } from '../../sim/memory';
import type { Vcpu } from '../../sim/cpu/vcpu';
import { Frame, FrameRunner, GuestCodeError, asBigint, asCpuid, asNumber, compute, insn, load32, readCr2, store32, underFixup, type Code, type Fixed } from '../code';
import {
  DEFAULT_PAGE_READY_POLICY,
  DEFAULT_PF_POLICY,
  type BareCondition,
  type BareLogEntry,
  type BareRecordFields,
  type BarePageReadyPolicy,
  type BarePfPolicy,
  type BareStep,
} from './script';

export const BARE_PT_BASE = 0x2000;
export const BARE_DEFAULT_APF_AREA = 0x1000;
/** Bytes of the APF area the bare guest and the host use (the v6.7 struct). */
export const BARE_APF_AREA_BYTES = 64;

/** The GPA range [start, end) of the bare guest's identity page tables for `memoryBytes` of RAM. */
export function barePageTables(memoryBytes: number): { readonly start: number; readonly end: number } {
  const pages = Math.floor(memoryBytes / PAGE_SIZE);
  return { start: BARE_PT_BASE, end: BARE_PT_BASE + (3 + Math.ceil(pages / 512)) * PAGE_SIZE };
}
const TIMER_VECTOR = LINUX_VECTOR.LOCAL_TIMER_VECTOR;

export interface BareGuestOptions {
  readonly script: readonly BareStep[];
  readonly pf?: Partial<BarePfPolicy>;
  readonly pageReady?: Partial<BarePageReadyPolicy>;
  /** GPA of the APF area (64-byte aligned, default 0x1000). */
  readonly apfArea?: number;
}


export class BareGuest implements GuestCode {
  readonly log: BareLogEntry[] = [];
  readonly sim: Simulation;
  readonly memory: GuestMemory;
  readonly cpu: Vcpu;
  readonly apfArea: number;
  pfPolicy: BarePfPolicy;
  pageReadyPolicy: BarePageReadyPolicy;
  /** Vector the page-ready interrupt arrives on (set by `apf_enable`). */
  intVector: number = HYPERVISOR_CALLBACK_VECTOR;
  private readonly stack: Frame[] = [];
  private readonly runner: FrameRunner;
  private finished = false;
  private step = -1;
  private seq = 0;
  private readonly script: readonly BareStep[];
  /** Tokens of page-ready events, in order (0xffffffff for wake-alls). */
  readonly pageReadyTokens: number[] = [];
  /** Tokens of "page not present" async #PFs, in order. */
  readonly notPresentTokens: number[] = [];
  private readonly vectorCounts = new Map<number, number>();
  private lapicOn = false;
  /** The script's IDT is loaded (false after `{op: 'idt', load: false}`: no gates). */
  private idtLoaded = true;

  constructor(opts: BareGuestOptions & { readonly sim: Simulation; readonly memory: GuestMemory; readonly cpu: Vcpu }) {
    this.sim = opts.sim;
    this.memory = opts.memory;
    this.cpu = opts.cpu;
    this.script = opts.script;
    this.apfArea = opts.apfArea ?? BARE_DEFAULT_APF_AREA;
    if (this.apfArea % 64 !== 0) throw new RangeError(`bare guest: APF area must be 64-byte aligned: 0x${this.apfArea.toString(16)}`);
    this.pfPolicy = { ...DEFAULT_PF_POLICY, ...opts.pf };
    this.pageReadyPolicy = { ...DEFAULT_PAGE_READY_POLICY, ...opts.pageReady };
    this.runner = new FrameRunner(
      () => this.stack,
      () => {
        throw new GuestCodeError('bare guest: empty stack');
      },
      'bare',
    );
  }

  /** The loader: identity page tables, zeroed APF area; attach to the vCPU. */
  load(): void {
    const pages = Math.floor(this.memory.size / PAGE_SIZE);
    if (pages > 512 * 512) throw new RangeError('bare guest: at most 1 GiB of guest memory');
    const flags = BigInt(PTE_P | PTE_RW | PTE_US);
    const pml4 = BARE_PT_BASE;
    const pdpt = pml4 + PAGE_SIZE;
    const pd = pdpt + PAGE_SIZE;
    const pt0 = pd + PAGE_SIZE;
    const nPt = Math.ceil(pages / 512);
    if (pt0 + nPt * PAGE_SIZE > this.memory.size) throw new RangeError('bare guest: guest memory too small for its page tables');
    for (let a = pml4; a < pt0 + nPt * PAGE_SIZE; a += 8) this.memory.writeU64(a, 0n);
    this.memory.writeU64(pml4, BigInt(pdpt) | flags);
    this.memory.writeU64(pdpt, BigInt(pd) | flags);
    for (let t = 0; t < nPt; t++) {
      this.memory.writeU64(pd + t * 8, BigInt(pt0 + t * PAGE_SIZE) | flags);
      for (let i = 0; i < 512 && t * 512 + i < pages; i++) {
        this.memory.writeU64(pt0 + t * PAGE_SIZE + i * 8, BigInt((t * 512 + i) * PAGE_SIZE) | flags);
      }
    }
    for (let i = 0; i < 128; i += 8) this.memory.writeU64(this.apfArea + i, 0n);
    this.stack.push(new Frame('program', 'bare main', this.main()));
    this.cpu.attach(this);
  }

  /** The script ran to its end. */
  done(): boolean {
    return this.finished;
  }

  /** Log entries of one kind. */
  entries(kind: BareLogEntry['kind']): BareLogEntry[] {
    return this.log.filter((e) => e.kind === kind);
  }

  // --- GuestCode ---

  fetch(): Insn {
    return this.runner.fetch();
  }

  retire(result: InsnResult): void {
    this.runner.retire(result);
  }

  vector(tf: TrapFrame): boolean {
    if (!this.idtLoaded && tf.event.kind !== 'syscall') return false;
    const interrupted = this.runner.top();
    const p = interrupted.pending;
    if (p !== null && (p.op === 'hlt' || p.op === 'sti_hlt') && tf.savedCpl === 0) interrupted.skipPending();
    const ev = tf.event;
    const vec = ev.kind === 'exception' || ev.kind === 'interrupt' ? ev.vector : ev.kind === 'nmi' ? 2 : -1;
    if (vec >= 0) this.vectorCounts.set(vec, (this.vectorCounts.get(vec) ?? 0) + 1);
    if (ev.kind === 'syscall') {
      // The way back to CPL 0: the entry returns into the script (a 'call' frame, no SYSRET).
      this.stack.push(new Frame('call', 'to_kernel', this.toKernel(tf)));
      return true;
    }
    this.stack.push(new Frame('entry', `vector ${vec}`, this.handler(tf, interrupted), tf));
    return true;
  }

  reset(kind: ResetKind): void {
    this.idtLoaded = true;
    this.record({ kind: 'note', cpl: 0, message: `${kind.toUpperCase()}: the script stops` });
    this.stack.length = 0;
    this.stack.push(new Frame('program', 'bare reset', this.halted()));
  }

  // --- logging ---

  private record(e: Omit<BareLogEntry, 'seq' | 't' | 'step'>): void {
    const entry: BareLogEntry = { seq: ++this.seq, t: this.sim.now, step: this.step, ...e };
    this.log.push(entry);
    // The entry's own key order is the record's (it is hashed): copy, leaving out `kind` and `t`.
    const fields: Record<string, BareLogEntry[keyof BareLogEntry]> = {};
    for (const [k, v] of Object.entries(entry) as [keyof BareLogEntry, BareLogEntry[keyof BareLogEntry]][]) if (k !== 'kind' && k !== 't') fields[k] = v;
    this.sim.trace.emit('guest', this.cpu.id, `bare_${e.kind}`, fields as BareRecordFields);
  }

  private count(c: BareCondition): boolean {
    switch (c.kind) {
      case 'time':
        return this.sim.now >= c.t;
      case 'page_ready':
        return this.pageReadyTokens.length >= (c.count ?? 1);
      case 'token':
        return this.pageReadyTokens.includes(c.token >>> 0);
      case 'wake_all':
        return this.pageReadyTokens.filter((t) => t === KVM_APF_WAKE_ALL_TOKEN).length >= (c.count ?? 1);
      case 'async_pf':
        return this.notPresentTokens.length >= (c.count ?? 1);
      case 'vector':
        return (this.vectorCounts.get(c.vector) ?? 0) >= (c.count ?? 1);
    }
  }

  // --- code ---

  private withFixup(i: Insn): Code<Fixed> {
    return underFixup(this.runner.top(), i);
  }

  private *wrmsr(msr: number, value: bigint): Code<boolean> {
    const r = yield* this.withFixup(insn.wrmsr(msr, value));
    this.record({ kind: 'msr', cpl: this.cpu.cpl, msr, value, write: true, ok: r.ok });
    return r.ok;
  }

  private *main(): Code<never> {
    yield insn.writeCr(3, BARE_PT_BASE);
    yield insn.writeCr(0, CR0_PE | CR0_WP | CR0_PG);
    yield* this.run(this.script, true);
    this.step = -1;
    this.finished = true;
    this.record({ kind: 'done', cpl: this.cpu.cpl });
    if (this.cpu.cpl !== 0) yield insn.syscall(0);
    return yield* this.halted();
  }

  private *halted(): Code<never> {
    for (;;) {
      yield insn.cli();
      yield insn.hlt();
    }
  }

  private *run(steps: readonly BareStep[], top: boolean): Code {
    for (let i = 0; i < steps.length; i++) {
      if (top) this.step = i;
      yield* this.exec(steps[i]!);
    }
  }

  private *exec(s: BareStep): Code {
    const area = this.apfArea as number;
    switch (s.op) {
      case 'wrmsr':
        yield* this.wrmsr(s.msr, BigInt(s.value));
        break;
      case 'rdmsr': {
        const r = yield* this.withFixup(insn.rdmsr(s.msr));
        this.record({ kind: 'msr', cpl: this.cpu.cpl, msr: s.msr, write: false, ok: r.ok, value: r.ok ? asBigint(r.value, 'rdmsr') : undefined });
        break;
      }
      case 'cpuid': {
        const r = asCpuid(yield insn.cpuid(s.leaf, s.subleaf), 'cpuid');
        this.record({ kind: 'cpuid', cpl: this.cpu.cpl, value: r.eax, message: `eax=0x${r.eax.toString(16)} ebx=0x${r.ebx.toString(16)} ecx=0x${r.ecx.toString(16)} edx=0x${r.edx.toString(16)}` });
        break;
      }
      case 'sti':
        yield insn.sti();
        break;
      case 'cli':
        yield insn.cli();
        break;
      case 'cpl': {
        if (s.cpl === this.cpu.cpl) break;
        // Between two rings above 0: back to CPL 0 first (SYSCALL), then IRET to the target ring
        // with the interrupt flag the script had.
        const ifFlag = this.cpu.ifFlag;
        if (this.cpu.cpl !== 0) yield insn.syscall(0);
        if (s.cpl !== 0) {
          const tf: TrapFrame = { event: { kind: 'syscall', nr: 0 }, savedCpl: s.cpl, savedIf: ifFlag, seq: 0, t: this.sim.now };
          this.stack.push(new Frame('entry', 'to_user', this.toUser(tf), tf));
          yield insn.pause();
        }
        this.record({ kind: 'cpl', cpl: this.cpu.cpl, if: this.cpu.ifFlag });
        break;
      }
      case 'touch': {
        const write = s.write === true;
        const value = (s.value ?? 1) >>> 0;
        const f = this.runner.top();
        f.onRetire = (r) => this.record({ kind: 'touch', cpl: this.cpu.cpl, value: write ? value : asNumber(r, 'touch'), write, message: `0x${s.addr.toString(16)}` });
        yield write ? insn.store(s.addr as Gva, value, 4) : insn.load(s.addr as Gva, 4);
        break;
      }
      case 'hlt':
        yield insn.hlt();
        break;
      case 'sti_hlt':
        yield insn.stiHlt();
        break;
      case 'spin':
        yield* compute(s.ns);
        break;
      case 'lapic':
        if (s.enable) {
          yield* this.wrmsr(X86_MSR.X2APIC_SPIV, 0x1ffn);
          yield* this.wrmsr(X86_MSR.X2APIC_LVT_TIMER, BigInt(TIMER_VECTOR | (2 << 17)));
          this.lapicOn = true;
        } else {
          yield* this.wrmsr(X86_MSR.X2APIC_SPIV, 0xffn);
          this.lapicOn = false;
        }
        break;
      case 'paging':
        yield insn.writeCr(0, CR0_PE | CR0_WP | (s.enable ? CR0_PG : 0));
        this.record({ kind: 'note', cpl: this.cpu.cpl, message: `CR0.PG ${s.enable ? 'set' : 'cleared'}` });
        break;
      case 'idt': {
        const idtLoad = s.load;
        // The IDTR changes when the LIDT retires (a PAUSE stands in for it).
        this.runner.top().onRetire = () => {
          this.idtLoaded = idtLoad;
          this.record({ kind: 'note', cpl: this.cpu.cpl, message: idtLoad ? 'IDT loaded' : 'empty IDT loaded: no gates' });
        };
        yield insn.pause();
        break;
      }
      case 'apf_enable': {
        const int = s.int ?? true;
        this.intVector = s.vector ?? HYPERVISOR_CALLBACK_VECTOR;
        const en = encodeAsyncPfEn({
          gpa: area,
          enabled: true,
          sendAlways: s.sendAlways === true,
          deliveryAsInt: int,
          deliveryAsPfVmexit: s.pfVmexit === true,
          reservedBits: s.reserved,
        });
        if (int && s.intAfterEn !== true) yield* this.wrmsr(MSR_KVM_ASYNC_PF_INT, BigInt(this.intVector));
        yield* this.wrmsr(MSR_KVM_ASYNC_PF_EN, en);
        if (int && s.intAfterEn === true) yield* this.wrmsr(MSR_KVM_ASYNC_PF_INT, BigInt(this.intVector));
        break;
      }
      case 'apf_disable':
        yield* this.wrmsr(MSR_KVM_ASYNC_PF_EN, 0n);
        break;
      case 'ack':
        yield* this.wrmsr(MSR_KVM_ASYNC_PF_ACK, 1n);
        break;
      case 'eoi':
        yield* this.wrmsr(X86_MSR.X2APIC_EOI, 0n);
        break;
      case 'write_area':
        yield* store32((area + (s.field === 'flags' ? APF_FLAGS_OFFSET : APF_TOKEN_OFFSET)) as Gva, s.value);
        break;
      case 'read_area': {
        const flags = yield* load32((area + APF_FLAGS_OFFSET) as Gva);
        const token = yield* load32((area + APF_TOKEN_OFFSET) as Gva);
        this.record({ kind: 'area', cpl: this.cpu.cpl, flags, token });
        break;
      }
      case 'wait':
        yield* this.waitFor(s.until, s.timeoutNs, s.mode);
        break;
      case 'policy':
        this.pfPolicy = { ...this.pfPolicy, ...s.pf };
        this.pageReadyPolicy = { ...this.pageReadyPolicy, ...s.pageReady };
        break;
      case 'log':
        this.record({ kind: 'note', cpl: this.cpu.cpl, message: s.message });
        break;
      case 'repeat':
        for (let i = 0; i < s.times; i++) yield* this.run(s.body, false);
        break;
    }
  }

  /** Arm the LAPIC timer for a deadline (only when the script enabled the LAPIC). */
  private *armTimer(deadline: number): Code {
    if (!this.lapicOn || !Number.isFinite(deadline)) return;
    yield insn.wrmsr(X86_MSR.IA32_TSC_DEADLINE, BigInt(Math.max(deadline, this.sim.now + 1)));
  }

  /**
   * Cancel the deadline `armTimer` set when the wait ended before it (TSC_DEADLINE := 0 disarms
   * the timer), so it cannot fire into a later step of the script.
   */
  private *disarmTimer(deadline: number): Code {
    if (!this.lapicOn || !Number.isFinite(deadline) || this.sim.now >= deadline) return;
    yield insn.wrmsr(X86_MSR.IA32_TSC_DEADLINE, 0n);
  }

  private *waitFor(until: BareCondition, timeoutNs: number | undefined, mode: 'sti_hlt' | 'spin' | undefined): Code {
    const start = this.sim.now;
    const deadline = timeoutNs === undefined ? Infinity : start + timeoutNs;
    // HLT is privileged: above CPL 0 a wait spins.
    const spin = mode === 'spin' || this.cpu.cpl !== 0;
    const wasIf = this.cpu.ifFlag;
    yield* this.armTimer(deadline);
    let result = 'timeout';
    for (;;) {
      if (this.count(until)) {
        result = 'condition';
        break;
      }
      if (this.sim.now >= deadline) break;
      if (spin) {
        yield* compute(Math.min(1000, Math.max(1, deadline - this.sim.now)));
      } else {
        yield insn.stiHlt();
        yield insn.cli();
      }
    }
    yield* this.disarmTimer(deadline);
    if (!spin && wasIf) {
      // Restore IF; the PAUSE absorbs the STI shadow so the next step is interruptible.
      yield insn.sti();
      yield insn.pause();
    }
    this.record({ kind: 'wait', cpl: this.cpu.cpl, result, waitedNs: this.sim.now - start });
  }

  private *toUser(tf: TrapFrame): Code {
    yield insn.iret(tf);
  }

  private *toKernel(_tf: TrapFrame): Code {
    // Executing at CPL 0 in the script's context from here on.
    yield insn.pause();
  }

  private *handler(tf: TrapFrame, interrupted: Frame): Code {
    const ev = tf.event;
    if (ev.kind === 'nmi') {
      this.record({ kind: 'nmi', cpl: tf.savedCpl, if: tf.savedIf, vector: 2 });
    } else if (ev.kind === 'exception') {
      switch (ev.vector) {
        case X86_EXCEPTION.PF:
          yield* this.pageFault(tf, interrupted);
          break;
        case X86_EXCEPTION.DF:
          this.record({ kind: 'exception', cpl: tf.savedCpl, if: tf.savedIf, vector: ev.vector, errorCode: ev.errorCode, message: 'double fault: halting' });
          yield* this.halted();
          break;
        default: {
          const p = interrupted.pending;
          this.record({
            kind: 'exception',
            cpl: tf.savedCpl,
            if: tf.savedIf,
            vector: ev.vector,
            errorCode: ev.errorCode,
            msr: p !== null && (p.op === 'wrmsr' || p.op === 'rdmsr') ? p.msr : undefined,
            message: p === null ? undefined : `skipped ${p.op}`,
          });
          if (interrupted.extable) interrupted.fixedUp = true;
          interrupted.skipPending(p?.op === 'rdmsr' ? 0n : undefined);
          break;
        }
      }
    } else if (ev.kind === 'interrupt') {
      if (ev.vector === this.intVector) {
        yield* this.pageReady(tf);
      } else {
        this.record({ kind: 'interrupt', cpl: tf.savedCpl, if: tf.savedIf, vector: ev.vector });
        if (ev.vector !== LINUX_VECTOR.SPURIOUS_APIC_VECTOR) yield insn.wrmsr(X86_MSR.X2APIC_EOI, 0n);
      }
    }
    yield insn.iret(tf);
  }

  /** The page-ready interrupt: read the token, then zero / ACK / EOI per policy. */
  private *pageReady(tf: TrapFrame): Code {
    const area = this.apfArea;
    const token = yield* load32((area + APF_TOKEN_OFFSET) as Gva);
    this.pageReadyTokens.push(token);
    this.record({ kind: 'interrupt', cpl: tf.savedCpl, if: tf.savedIf, vector: this.intVector, token, result: token === KVM_APF_WAKE_ALL_TOKEN ? 'wake_all' : 'page_ready' });
    const p = this.pageReadyPolicy;
    if (p.zeroToken) yield* store32((area + APF_TOKEN_OFFSET) as Gva, 0);
    if (p.ack) yield insn.wrmsr(MSR_KVM_ASYNC_PF_ACK, 1n);
    if (p.eoi) yield insn.wrmsr(X86_MSR.X2APIC_EOI, 0n);
  }

  /** #PF: CR2 first, then the flags (zeroed per policy), then act on the reason. */
  private *pageFault(tf: TrapFrame, interrupted: Frame): Code {
    const ev = tf.event;
    const ec = ev.kind === 'exception' ? ev.errorCode : undefined;
    const cr2 = yield* readCr2();
    const area = this.apfArea;
    const flags = yield* load32((area + APF_FLAGS_OFFSET) as Gva);
    if (this.pfPolicy.clearFlags) yield* store32((area + APF_FLAGS_OFFSET) as Gva, 0);
    const base = { kind: 'exception' as const, cpl: tf.savedCpl, if: tf.savedIf, vector: X86_EXCEPTION.PF, cr2, errorCode: ec, flags };
    if (flags === KVM_PV_REASON_PAGE_NOT_PRESENT) {
      const token = cr2 >>> 0;
      this.notPresentTokens.push(token);
      this.record({ ...base, token, result: 'not_present' });
      if (this.pfPolicy.wait === 'sti_hlt') yield* this.waitForToken(token);
      return;
    }
    if (flags === KVM_PV_REASON_PAGE_READY) {
      const token = cr2 >>> 0;
      this.pageReadyTokens.push(token);
      this.record({ ...base, token, result: token === KVM_APF_WAKE_ALL_TOKEN ? 'wake_all' : 'page_ready' });
      return;
    }
    // An ordinary #PF (or one whose flags were lost): skip the instruction so the script goes on.
    this.record({ ...base, result: 'ordinary' });
    if (interrupted.extable) interrupted.fixedUp = true;
    interrupted.skipPending();
  }

  private *waitForToken(token: number): Code {
    const start = this.sim.now;
    const wakeAllsBefore = this.pageReadyTokens.filter((t) => t === KVM_APF_WAKE_ALL_TOKEN).length;
    const deadline = start + this.pfPolicy.limitNs;
    yield* this.armTimer(deadline);
    let result = 'timeout';
    for (;;) {
      if (this.pageReadyTokens.includes(token)) {
        result = 'token';
        break;
      }
      if (this.pfPolicy.waitFor === 'token_or_wake_all' && this.pageReadyTokens.filter((t) => t === KVM_APF_WAKE_ALL_TOKEN).length > wakeAllsBefore) {
        result = 'wake_all';
        break;
      }
      if (this.sim.now >= deadline) break;
      yield insn.stiHlt();
      yield insn.cli();
    }
    yield* this.disarmTimer(deadline);
    this.record({ kind: 'wait', cpl: 0, token, result, waitedNs: this.sim.now - start });
  }
}

/** The CPL type, re-exported for scenario code. */
export type BareCpl = Cpl;
