/**
 * A deliberately tiny "hypervisor" for guest unit tests: it steps sim vCPUs on the event queue,
 * answers CPUID with the KVM signature and a feature word, records every MSR access, emulates
 * just enough of an x2APIC (IRR, ISR with EOI, fixed/NMI/INIT IPIs, a TSC-deadline timer), and
 * lets the test inject events and write guest memory at will. It knows nothing about async PF:
 * tests play the host's part of the protocol by hand (write flags, inject #PF(token), write the
 * token, raise 0xf3) so the guest's code paths can be driven in an exact order.
 */
import { kvmFeatureEax } from '../../../shared-abi/cpuid';
import { X86_MSR } from '../../../shared-abi/msr';
import type { DeliveredEvent } from '../../../shared-abi/arch';
import { Simulation } from '../../../sim/engine';
import { GuestMemory } from '../../../sim/memory';
import { Priority } from '../../../sim/queue';
import { TraceRecorder } from '../../../sim/trace';
import { identitySlat } from '../../../sim/cpu/mmu';
import { STEP_BUSY, STEP_EXIT, STEP_INACTIVE, Vcpu } from '../../../sim/cpu/vcpu';

export interface MsrAccess {
  readonly t: number;
  readonly cpu: number;
  readonly write: boolean;
  readonly msr: number;
  readonly value: bigint;
}

interface MiniApic {
  enabled: boolean;
  irr: Set<number>;
  isr: number[];
  deadline: number;
  timerVector: number;
  timerHandle: { cancel(): void } | null;
}

export class MiniHost {
  readonly sim: Simulation;
  readonly mem: GuestMemory;
  readonly rec: TraceRecorder;
  readonly cpus: Vcpu[] = [];
  readonly msrs: MsrAccess[] = [];
  /** MSRs that raise #GP on access. */
  readonly refuse = new Set<number>();
  private readonly apics: MiniApic[] = [];
  private readonly pendingExc: Array<DeliveredEvent[]> = [];
  private readonly pendingNmi: number[] = [];
  private readonly running: boolean[] = [];
  features: number;

  constructor(opts: { cpus?: number; memoryBytes?: number; features?: number; seed?: number } = {}) {
    this.sim = new Simulation({ seed: opts.seed ?? 1, maxEvents: 2_000_000 });
    this.mem = new GuestMemory(opts.memoryBytes ?? 4 * 1024 * 1024);
    this.rec = new TraceRecorder(this.sim.trace);
    this.features = opts.features ?? kvmFeatureEax('ASYNC_PF', 'ASYNC_PF_VMEXIT', 'ASYNC_PF_INT');
    const n = opts.cpus ?? 1;
    for (let i = 0; i < n; i++) {
      this.cpus.push(new Vcpu({ id: i, memory: this.mem, slat: identitySlat(this.mem.pages), clock: this.sim.clock, trace: this.sim.trace }));
      this.apics.push({ enabled: false, irr: new Set(), isr: [], deadline: 0, timerVector: 0xec, timerHandle: null });
      this.pendingExc.push([]);
      this.pendingNmi.push(0);
      this.running.push(false);
    }
  }

  start(): void {
    for (let i = 0; i < this.cpus.length; i++) this.kick(i, 0);
  }

  /** Raise a fixed interrupt on a CPU's LAPIC (dropped while it is software-disabled). */
  irq(cpu: number, vector: number): void {
    const a = this.apics[cpu]!;
    if (!a.enabled) return;
    a.irr.add(vector);
    this.kick(cpu, 0);
  }

  /** Inject an exception at the next instruction boundary (like KVM's queued exception). */
  exception(cpu: number, ev: DeliveredEvent): void {
    this.pendingExc[cpu]!.push(ev);
    this.kick(cpu, 0);
  }

  nmi(cpu: number): void {
    this.pendingNmi[cpu]!++;
    this.kick(cpu, 0);
  }

  /** Run until `t` (absolute ns) or until `stop`. */
  runUntil(t: number, stop?: () => boolean): void {
    if (this.sim.now < t) this.sim.run({ until: t, stopWhen: stop });
  }

  msrWrites(msr: number): MsrAccess[] {
    return this.msrs.filter((m) => m.write && m.msr === msr);
  }

  private kick(cpu: number, delay: number): void {
    if (this.running[cpu]) return;
    this.running[cpu] = true;
    this.sim.schedule(delay, Priority.Guest, () => this.run(cpu), `mini.cpu${cpu}`);
  }

  private ready(cpu: number): void {
    this.running[cpu] = false;
    this.kick(cpu, 0);
  }

  private injectPending(cpu: number): boolean {
    const v = this.cpus[cpu]!;
    const a = this.apics[cpu]!;
    const exc = this.pendingExc[cpu]!.shift();
    if (exc !== undefined) {
      if (v.exitPending && v.activity === 'hlt') v.completeExit();
      v.deliver(exc);
      return true;
    }
    if (this.pendingNmi[cpu]! > 0 && v.nmiAllowed()) {
      this.pendingNmi[cpu]!--;
      if (v.exitPending && v.activity === 'hlt') v.completeExit();
      v.deliver({ kind: 'nmi' });
      return true;
    }
    if (a.irr.size > 0 && v.interruptAllowed()) {
      const top = Math.max(...a.irr);
      const inService = a.isr.length > 0 ? a.isr[a.isr.length - 1]! : -1;
      if (top >> 4 > inService >> 4) {
        a.irr.delete(top);
        a.isr.push(top);
        a.isr.sort((x, y) => x - y);
        if (v.exitPending && v.activity === 'hlt') v.completeExit();
        v.deliver({ kind: 'interrupt', vector: top });
        return true;
      }
    }
    return false;
  }

  private run(cpu: number): void {
    this.running[cpu] = false;
    const v = this.cpus[cpu]!;
    this.injectPending(cpu);
    if (v.activity === 'hlt') return; // woken by kick()
    const r = v.step();
    if (r === STEP_INACTIVE) return;
    if (r === STEP_BUSY) {
      const ns = v.lastCost;
      this.running[cpu] = true;
      this.sim.schedule(Math.max(1, ns), Priority.Guest, () => {
        v.endBusy(ns);
        this.ready(cpu);
      }, `mini.busy${cpu}`);
      return;
    }
    if (r === STEP_EXIT) {
      this.handleExit(cpu);
      return;
    }
    this.running[cpu] = true;
    this.sim.schedule(Math.max(1, v.lastCost), Priority.Guest, () => this.ready(cpu), `mini.cpu${cpu}`);
  }

  private handleExit(cpu: number): void {
    const v = this.cpus[cpu]!;
    const e = v.lastExit!;
    const t = this.sim.now;
    switch (e.reason) {
      case 'msr_write':
        this.msrs.push({ t, cpu, write: true, msr: e.msr, value: e.value });
        if (this.refuse.has(e.msr)) {
          v.abandonExit();
          v.deliver({ kind: 'exception', vector: 13, errorCode: 0 });
        } else {
          this.apicWrite(cpu, e.msr, e.value);
          v.completeExit();
        }
        break;
      case 'msr_read':
        this.msrs.push({ t, cpu, write: false, msr: e.msr, value: 0n });
        if (this.refuse.has(e.msr)) {
          v.abandonExit();
          v.deliver({ kind: 'exception', vector: 13, errorCode: 0 });
        } else {
          v.completeExit(0n);
        }
        break;
      case 'cpuid':
        if (e.leaf === 0x40000000) v.completeExit({ eax: 0x40000001, ebx: 0x4b4d564b, ecx: 0x564b4d56, edx: 0x4d });
        else if (e.leaf === 0x40000001) v.completeExit({ eax: this.features, ebx: 0, ecx: 0, edx: 0 });
        else v.completeExit({ eax: 0, ebx: 0, ecx: 0, edx: 0 });
        break;
      case 'cr_write':
        v.setCr0(e.value);
        v.completeExit();
        break;
      case 'hlt':
        // Stay halted; kick() (an interrupt, NMI or exception) resumes.
        if (this.apics[cpu]!.irr.size > 0 || this.pendingExc[cpu]!.length > 0 || this.pendingNmi[cpu]! > 0) this.kick(cpu, 1);
        return;
      default:
        throw new Error(`mini host: unexpected exit ${e.reason}`);
    }
    this.running[cpu] = true;
    this.sim.schedule(Math.max(1, v.lastCost), Priority.Guest, () => this.ready(cpu), `mini.cpu${cpu}`);
  }

  private apicWrite(cpu: number, msr: number, value: bigint): void {
    const a = this.apics[cpu]!;
    switch (msr) {
      case X86_MSR.X2APIC_SPIV:
        a.enabled = (value & 0x100n) !== 0n;
        break;
      case X86_MSR.X2APIC_EOI:
        a.isr.pop();
        break;
      case X86_MSR.X2APIC_LVT_TIMER:
        a.timerVector = Number(value & 0xffn);
        break;
      case X86_MSR.IA32_TSC_DEADLINE: {
        a.timerHandle?.cancel();
        a.timerHandle = null;
        const d = Number(value);
        a.deadline = d;
        if (d > 0) a.timerHandle = this.sim.scheduleAt(Math.max(d, this.sim.now), Priority.Hardware, () => this.irq(cpu, a.timerVector), 'mini.timer');
        break;
      }
      case X86_MSR.X2APIC_ICR: {
        const dest = Number(value >> 32n);
        const mode = Number((value >> 8n) & 7n);
        const vec = Number(value & 0xffn);
        if (mode === 0) this.irq(dest, vec);
        else if (mode === 4) this.nmi(dest);
        else if (mode === 5) {
          const tv = this.cpus[dest]!;
          this.apics[dest] = { enabled: false, irr: new Set(), isr: [], deadline: 0, timerVector: 0xec, timerHandle: null };
          tv.reset('init');
          this.kick(dest, 0);
        }
        break;
      }
      default:
        break;
    }
  }
}
