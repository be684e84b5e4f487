/**
 * The vCPU run loop (vcpu_run / vcpu_enter_guest / vcpu_block of arch/x86/kvm/x86.c), driven by
 * simulation events.
 *
 * One event runs one iteration that ends in time passing: a guest instruction (its cost), an exit
 * (instruction cost + `exitCostNs`), a compute instruction in flight (preemptible by a kick), a
 * synchronous fault-in (the page-in latency), SMM, or blocking (no event until a wake-up).
 * When the next iteration would be the very next event anyway, it runs in the same callback
 * (`Simulation.continueInline`): still one simulation event per iteration, same times, same trace.
 *
 * A "full entry" (requests, event injection) happens after every exit, after a kick or wake-up,
 * and whenever an event is injectable at an instruction boundary (the interrupt/NMI window). In
 * between, instructions run in guest mode without the host looking at requests — which is what
 * makes a missing kick observable.
 *
 * Request order inside an entry (spec §8 q.7, decided in docs/host.md): KVM_REQ_APF_HALT first;
 * it aborts the entry (KVM_REQ_APF_READY stays pending for the next one). Then SMI, then
 * KVM_REQ_APF_READY (kvm_check_async_pf_completion). ≤v5.7 hosts have no APF_READY: they run the
 * completion check at the end of every iteration.
 */
import { CR0_PG } from '../../shared-abi/arch';
import { COST } from '../../sim/cpu/costs';
import { hasErrorCode, VEC_GP, VEC_PF } from '../../sim/cpu/exceptions';
import { STEP_BUSY, STEP_EXIT, STEP_FAULTED, STEP_INACTIVE, STEP_RETIRED, type VmExit } from '../../sim/cpu/vcpu';
import { Priority } from '../../sim/queue';
import type { KvmVcpu } from '../kvm';
import { handleEptViolation } from '../mmu';
import { getNestedStatePages, handleVmenter, NESTED_EXIT, reflectToL1 } from '../nested/vmx';
import { asyncPfHashReset, pvEnabled } from './apf';
import { cpuidLeaf } from './cpuid';
import { msrRead, msrWrite } from './msr';

/** Zero-time iterations allowed in one event before yielding (defensive; normal paths need ≤ 4). */
const MAX_ITERATIONS = 32;

/**
 * Schedule the next iteration `delay` ns from now. With schedule perturbation on
 * (`VmConfig.stepJitterNs`), the iteration comes up to that many ns later (PRNG stream `host.jitter`).
 */
export function scheduleRun(v: KvmVcpu, delay: number): void {
  if (v.event !== null) v.event.cancel();
  v.thread = 'scheduled';
  v.event = v.kvm.sim.schedule(runDelay(v, delay), Priority.Guest, () => runEvent(v), `vcpu${v.id}.run`, 'host');
}

/** The delay of the next iteration: rounded, plus the schedule perturbation if any. */
function runDelay(v: KvmVcpu, delay: number): number {
  const rng = v.kvm.jitterRng;
  const jitter = rng === null ? 0 : rng.int(0, v.kvm.stepJitterNs);
  return Math.max(0, Math.round(delay)) + jitter;
}

/** What one `enterGuest` call left behind. */
const enum Iter {
  /** The next iteration is scheduled, or the vCPU waits: the event ends. */
  Done,
  /** Loop again at the same time (zero-time iteration). */
  Again,
  /** The next iteration's time came with nothing else due first: the clock moved, loop again. */
  Inline,
}

/**
 * Ends an iteration whose next one is due `delay` ns from now, as `scheduleRun` would. When no
 * other event would run before it, the engine advances the clock and the next iteration runs in
 * this same event (`Simulation.continueInline`: same times, same order, same event count, same
 * trace; only the queue round trip is saved).
 */
function nextIteration(v: KvmVcpu, delay: number): Iter {
  if (v.event === null) {
    const d = runDelay(v, delay);
    v.thread = 'scheduled';
    if (v.kvm.sim.continueInline(d, Priority.Guest)) return v.life === 'alive' ? Iter.Inline : Iter.Done;
    v.event = v.kvm.sim.schedule(d, Priority.Guest, () => runEvent(v), `vcpu${v.id}.run`, 'host');
  } else {
    scheduleRun(v, delay);
  }
  return Iter.Done;
}

/** kvm_vcpu_running: runnable and not in an artificial halt. */
export const vcpuRunning = (v: KvmVcpu): boolean => v.mpState === 'runnable' && !v.apf.halted;

/** An event could be injected at this boundary (the window is open). */
function injectable(v: KvmVcpu): boolean {
  if (v.pendingException !== null || v.tripleFaultPending) return true;
  if (v.smiPending !== null && !v.cpu.inSmm) return true;
  if (v.nmiPending > 0 && v.cpu.nmiAllowed()) return true;
  return v.lapic !== null && v.cpu.interruptAllowed() && v.lapic.highestDeliverable() >= 0;
}

/** kvm_vcpu_has_events (done list first, spec §3.6.2). */
export function hasEvents(v: KvmVcpu): boolean {
  if (v.asyncPf.done.length > 0) return true;
  if (v.resetPending !== null) return true;
  if (v.pendingException !== null || v.tripleFaultPending) return true;
  if (v.smiPending !== null) return true;
  if (v.nmiPending > 0 && v.cpu.nmiAllowed()) return true;
  return v.lapic !== null && v.cpu.interruptAllowed() && v.lapic.highestDeliverable() >= 0;
}

/** ≤v5.7: kvm_check_async_pf_completion at the end of every vcpu_run iteration. */
function iterationEnd(v: KvmVcpu): void {
  if (!v.kvm.toggles.interrupt_page_ready && v.life === 'alive') v.asyncPf.checkCompletion();
}

function runEvent(v: KvmVcpu): void {
  v.event = null;
  if (v.thread === 'stopped' || v.life !== 'alive') return;
  if (v.stalls > 0) {
    // Still inside a host call that waits (a queue clear): the wait's end reschedules the vCPU.
    v.thread = 'stalled';
    return;
  }
  v.thread = 'scheduled';
  for (let i = 0; i < MAX_ITERATIONS; i++) {
    // INIT/RESET is accepted after the request block of vcpu_enter_guest (kvm_apic_accept_events
    // under KVM_REQ_EVENT, or in vcpu_block): a pending KVM_REQ_APF_HALT is served first.
    if (v.resetPending !== null && !(v.requests.has('apf_halt') && vcpuRunning(v))) {
      resetVcpu(v, v.resetPending);
      continue;
    }
    if (!vcpuRunning(v)) {
      if (!hasEvents(v)) {
        block(v);
        return;
      }
      // vcpu_block's tail: HALTED → RUNNABLE, and the artificial halt ends.
      if (v.mpState === 'halted') v.mpState = 'runnable';
      if (v.apf.halted) {
        v.apf.halted = false;
        v.trace('kvm_async_pf_unhalt', { why: 'event' });
      }
      v.entryNeeded = true;
      iterationEnd(v);
      continue;
    }
    const it = enterGuest(v);
    if (it === Iter.Done) return;
    if (it === Iter.Inline) i = -1;
  }
  scheduleRun(v, 1);
}

function block(v: KvmVcpu): void {
  v.thread = 'blocked';
  v.stats.blocks++;
  v.trace('kvm_vcpu_block', { why: v.apf.halted ? 'apf_halt' : 'hlt' });
}

/**
 * vcpu_enter_guest: requests, injection, one guest instruction. Returns whether the event ends
 * (the next iteration is scheduled, or the vCPU waits) or loops again (now, or inline later).
 */
function enterGuest(v: KvmVcpu): Iter {
  const cpu = v.cpu;
  // A HLT exit stays pending while halted; the vCPU is runnable again, so the HLT retires now.
  if (cpu.exitPending && cpu.activity === 'hlt') cpu.completeExit();
  if (cpu.activity === 'shutdown') {
    shutdown(v, 'triple_fault');
    return Iter.Done;
  }
  let cost = 0;
  if (v.entryNeeded || injectable(v)) {
    v.entryNeeded = false;
    iterationEnd(v);
    // KVM_REQ_GET_NESTED_STATE_PAGES comes before the APF requests (nested state restored in two steps).
    if (v.stalls === 0 && v.requests.has('get_nested_state_pages') && !getNestedStatePages(v)) return Iter.Done;
    if (v.requests.delete('apf_halt')) {
      v.apf.halted = true;
      v.stats.apfHalts++;
      const cause = v.apfHaltCause;
      v.trace('kvm_async_pf_halt', { gfn: cause?.gfn ?? -1, why: cause?.why ?? 'undeliverable' });
      v.apfHaltCause = null;
      return Iter.Again;
    }
    if (v.requests.delete('apf_ready')) v.asyncPf.checkCompletion();
    if (v.stalls > 0 || v.thread !== 'scheduled') return Iter.Done;
    const inj = injectEvents(v);
    if (inj === 'waiting') return Iter.Done;
    cost = inj;
    if (injectable(v)) v.entryNeeded = true;
  }
  const out = cpu.step();
  switch (out) {
    case STEP_RETIRED:
    case STEP_FAULTED:
      v.stats.instructions++;
      return nextIteration(v, cost + cpu.lastCost);
    case STEP_BUSY: {
      v.thread = 'busy';
      v.busyStart = v.kvm.sim.now + cost;
      const len = cpu.lastCost;
      v.event = v.kvm.sim.schedule(cost + len, Priority.Guest, () => finishBusy(v, len), `vcpu${v.id}.compute`, 'host');
      return Iter.Done;
    }
    case STEP_EXIT: {
      const exit = cpu.lastExit;
      const insnCost = cpu.lastCost;
      if (exit !== null) handleExit(v, exit);
      v.entryNeeded = true;
      if (v.thread === 'scheduled') return nextIteration(v, cost + insnCost + v.kvm.exitCostNs);
      return Iter.Done;
    }
    case STEP_INACTIVE:
    default:
      // Not active although runnable (a HLT without a pending exit): try again shortly.
      scheduleRun(v, Math.max(1, cost));
      return Iter.Done;
  }
}

function finishBusy(v: KvmVcpu, len: number): void {
  v.event = null;
  if (v.thread !== 'busy') return;
  v.cpu.endBusy(len);
  v.stats.instructions++;
  v.thread = 'scheduled';
  runEvent(v);
}

/** A kick while a compute instruction is in flight: it ends early with the time actually spent. */
export function preemptBusy(v: KvmVcpu): void {
  if (v.thread !== 'busy') return;
  if (v.event !== null) v.event.cancel();
  v.event = null;
  v.cpu.endBusy(Math.max(0, v.kvm.sim.now - v.busyStart));
  v.stats.instructions++;
  v.stats.preemptions++;
  scheduleRun(v, 0);
}

/**
 * kvm_check_and_inject_events: at most one event per entry — the pending exception, else SMI,
 * else NMI (if not blocked), else the highest deliverable LAPIC interrupt (if IF=1, no shadow).
 * Returns the delivery cost, or 'waiting' when the vCPU left the run loop (SMM, shutdown).
 */
function injectEvents(v: KvmVcpu): number | 'waiting' {
  const cpu = v.cpu;
  if (v.tripleFaultPending) {
    shutdown(v, 'triple_fault');
    return 'waiting';
  }
  const ex = v.pendingException;
  if (ex !== null) {
    v.pendingException = null;
    if (ex.nested !== undefined && cpu.guestMode) {
      const token = ex.nested === 'payload' ? (ex.cr2 ?? 0) : v.apf.nestedApfToken;
      v.stats.nestedVmexits++;
      v.trace('kvm_nested_apf_vmexit', { token, form: ex.nested });
      cpu.nestedVmexit({ reason: 'exception', vector: VEC_PF, errorCode: ex.errorCode ?? 0, exitQualification: token });
      return COST.vector;
    }
    const withCode = hasErrorCode(ex.vector);
    const errorCode = withCode ? (ex.errorCode ?? 0) : undefined;
    v.stats.exceptionsInjected++;
    v.trace('kvm_inj_exception', {
      exception: ex.vector,
      has_error: withCode,
      error_code: errorCode ?? 0,
      address: ex.vector === VEC_PF ? (ex.cr2 ?? 0) : 0,
      async: ex.async === true,
    });
    const r = cpu.deliver(
      ex.vector === VEC_PF && ex.cr2 !== undefined
        ? { kind: 'exception', vector: ex.vector, errorCode, cr2: ex.cr2 }
        : { kind: 'exception', vector: ex.vector, errorCode },
    );
    if (r === 'triple_fault') {
      shutdown(v, 'triple_fault');
      return 'waiting';
    }
    return COST.vector;
  }
  if (v.smiPending !== null && !cpu.inSmm) {
    enterSmm(v, v.smiPending);
    return 'waiting';
  }
  if (v.nmiPending > 0 && cpu.nmiAllowed()) {
    // Guest mode: an NMI for L1 exits from L2 (NMI exiting) and is delivered to L1 right after.
    if (cpu.guestMode && cpu.currentVmcs !== null) {
      reflectToL1(v, NESTED_EXIT.nmi());
      return COST.vector;
    }
    v.nmiPending--;
    v.trace('kvm_inj_nmi', {});
    if (cpu.deliver({ kind: 'nmi' }) === 'triple_fault') {
      shutdown(v, 'triple_fault');
      return 'waiting';
    }
    return COST.vector;
  }
  if (v.lapic !== null && cpu.interruptAllowed()) {
    const vec = v.lapic.highestDeliverable();
    if (vec >= 0 && cpu.guestMode && cpu.currentVmcs !== null) {
      // External-interrupt exiting: L1's interrupt exits from L2; L1 takes it when it enables IRQs.
      reflectToL1(v, NESTED_EXIT.interrupt(vec));
      return COST.vector;
    }
    if (vec >= 0) {
      v.lapic.ack(vec);
      v.stats.interruptsInjected++;
      v.trace('kvm_inj_virq', { irq: vec });
      if (cpu.deliver({ kind: 'interrupt', vector: vec }) === 'triple_fault') {
        shutdown(v, 'triple_fault');
        return 'waiting';
      }
      return COST.vector;
    }
  }
  return 0;
}

/** Handle one VM exit (the instruction cost and exit cost are accounted by the caller). */
function handleExit(v: KvmVcpu, exit: VmExit): void {
  const cpu = v.cpu;
  v.stats.exits++;
  switch (exit.reason) {
    case 'ept_violation':
      handleEptViolation(v, exit);
      break;
    case 'mmio':
      // No device there: reads return 0, writes are dropped (QEMU's unassigned memory).
      v.trace('kvm_mmio', { gpa: exit.gpa, write: exit.write });
      cpu.completeExit(exit.write ? undefined : 0);
      break;
    case 'msr_read': {
      const r = msrRead(v, exit.msr, false);
      v.trace('kvm_msr', { write: false, ecx: exit.msr, data: r ?? 0n, exception: r === undefined });
      if (r === undefined) {
        cpu.abandonExit();
        v.queueException({ vector: VEC_GP, errorCode: 0 });
      } else {
        cpu.completeExit(r);
      }
      break;
    }
    case 'msr_write': {
      const ok = msrWrite(v, exit.msr, exit.value, false);
      v.trace('kvm_msr', { write: true, ecx: exit.msr, data: exit.value, exception: !ok });
      if (ok) {
        if (cpu.exitPending) cpu.completeExit();
      } else {
        cpu.abandonExit();
        v.queueException({ vector: VEC_GP, errorCode: 0 });
      }
      break;
    }
    case 'cpuid':
      cpu.completeExit(cpuidLeaf(exit.leaf, exit.subleaf, v.kvm.cpuidKvmFeatures));
      break;
    case 'hlt':
      if (cpu.guestMode && cpu.currentVmcs !== null) {
        // L2's HLT: L1 intercepts it (KVM always does), so it is L1's to emulate.
        cpu.completeExit();
        reflectToL1(v, NESTED_EXIT.hlt());
        break;
      }
      // kvm_emulate_halt: HALTED until an event; the exit completes when the vCPU runs again.
      v.mpState = 'halted';
      v.stats.hlts++;
      break;
    case 'cr_write':
      if (exit.cr === 0) {
        const old = cpu.cr0;
        cpu.setCr0(exit.value);
        cpu.completeExit();
        postSetCr0(v, old, exit.value);
      } else {
        cpu.completeExit();
      }
      break;
    case 'triple_fault':
      shutdown(v, 'triple_fault');
      break;
    case 'vmenter':
      handleVmenter(v, exit);
      break;
  }
  iterationEnd(v);
}

/**
 * kvm_post_set_cr0 for a CR0.PG change (spec §3.10, §7.17): before ab4e41eb9fab the async-PF
 * queue and the gfn hash were cleared; since then the queue is kept and PG 0→1 with PV delivery
 * enabled raises KVM_REQ_APF_READY.
 */
export function postSetCr0(v: KvmVcpu, oldCr0: number, newCr0: number): void {
  if (((oldCr0 ^ newCr0) & CR0_PG) === 0) return;
  const clear = !v.kvm.toggles.keep_queue_on_cr0_pg;
  v.trace('kvm_post_set_cr0', { old: oldCr0 >>> 0, new: newCr0 >>> 0, cleared: clear });
  if (clear) {
    v.asyncPf.clear('cr0_pg');
    asyncPfHashReset(v);
  } else if ((newCr0 & CR0_PG) !== 0 && pvEnabled(v)) {
    v.makeRequest('apf_ready');
  }
}

/**
 * SMI: enter SMM, RSM after `smmNs`. enter_smm clears CR0.PG through the vendor `set_cr0` hook
 * only, without kvm_post_set_cr0; RSM restores CR0 through kvm_set_cr0, so the PG 0→1 change at
 * RSM is the one kvm_post_set_cr0 sees (the queue clear before ab4e41eb9fab, APF_READY since).
 */
function enterSmm(v: KvmVcpu, smmNs: number): void {
  const cpu = v.cpu;
  v.smiPending = null;
  if (cpu.exitPending && cpu.activity === 'hlt') cpu.completeExit();
  v.mpState = 'runnable';
  const old = cpu.cr0;
  cpu.enterSmm();
  v.stats.smis++;
  v.trace('kvm_enter_smm', { cr0: old >>> 0 });
  v.thread = 'smm';
  v.event = v.kvm.sim.schedule(Math.max(0, Math.round(smmNs)), Priority.Guest, () => rsm(v), `vcpu${v.id}.rsm`, 'host');
}

function rsm(v: KvmVcpu): void {
  v.event = null;
  if (v.thread !== 'smm') return;
  const cpu = v.cpu;
  const old = cpu.cr0;
  cpu.leaveSmm();
  v.trace('kvm_rsm', { cr0: cpu.cr0 >>> 0 });
  postSetCr0(v, old, cpu.cr0);
  v.entryNeeded = true;
  scheduleRun(v, 0);
}

/** kvm_vcpu_reset (INIT or RESET): the APF part is spec §3.10; `pageready_pending` and `id` survive. */
export function resetVcpu(v: KvmVcpu, kind: 'init' | 'reset'): void {
  v.resetPending = null;
  v.trace(kind === 'init' ? 'kvm_vcpu_init' : 'kvm_vcpu_reset', {});
  v.apf.msrEnVal = 0n;
  v.apf.msrIntVal = 0n;
  v.asyncPf.clear('reset');
  asyncPfHashReset(v);
  v.apf.halted = false;
  v.apfHaltCause = null;
  v.pendingException = null;
  v.tripleFaultPending = false;
  v.nmiPending = 0;
  v.smiPending = null;
  // kvm_vcpu_reset leaves vcpu->requests alone: a KVM_REQ_APF_READY the worker raised stays
  // pending and is served at the next entry, where it finds the done list emptied by the clear
  // above (a no-op). KVM_REQ_APF_HALT cannot straddle a reset: vcpu_enter_guest serves it before
  // the INIT is accepted (runEvent keeps that order). Only the nested-state request goes, as
  // leaving guest mode on reset clears it.
  v.requests.delete('get_nested_state_pages');
  if (v.lapic !== null) v.lapic.reset();
  v.mpState = 'runnable';
  if (v.event !== null && v.thread !== 'scheduled') v.event.cancel();
  v.cpu.reset(kind);
  v.entryNeeded = true;
  v.stats.resets++;
}

/** KVM_EXIT_SHUTDOWN: the vCPU stops running (until INIT/RESET). */
export function shutdown(v: KvmVcpu, why: 'triple_fault' | 'host_oops'): void {
  if (v.thread === 'stopped') return;
  if (v.event !== null) v.event.cancel();
  v.event = null;
  v.thread = 'stopped';
  v.stoppedBy = why;
  v.trace('kvm_shutdown', { why });
}
