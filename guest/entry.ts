/**
 * The IDT: what runs when the CPU vectors. Every handler is an `entry` frame on the current
 * task's stack that ends with `iret` of the trap frame it received.
 *
 * - #PF: CR2 first (toggle cr2_read_at_entry), then the async-PF hook, then do_page_fault.
 * - NMI: optional perf-style read of user memory; saves/restores CR2 (toggle nmi_saves_cr2).
 * - Interrupts: timer (0xec), reschedule (0xfd), call-function (0xfc), page ready (0xf3, when
 *   the v5.9+ driver installed it), the management console (0x40), spurious (0xff).
 * - #MC: an injected action-required memory error → SIGBUS / exception-table fixup / panic
 *   (guest/designs/mce.ts); any other #MC is fatal. #VE only under a design that uses it (guest/designs).
 * - #GP (with the MSR exception-table fixup), #UD, #DF, anything else: oops → panic.
 * Interrupt gates clear IF (the CPU does it); the exit path preempts (CONFIG_PREEMPT) or
 * reschedules on the way back to user mode.
 */
import { formatGva, type Gva } from '../shared-abi/addr';
import type { TrapFrame } from '../shared-abi/arch';
import { X86_EXCEPTION } from '../shared-abi/vectors';
import { insn, readCr2, type Code, type Frame } from './code';
import type { GuestKernel, PerCpu } from './kernel';
import { CALL_FUNCTION_VECTOR, LOCAL_TIMER_VECTOR, RESCHEDULE_VECTOR, SPURIOUS_APIC_VECTOR, eoi, lapicDisable, sendReschedule } from './lapic';
import { MGMT_VECTOR } from './admin';
import { mgmtInterrupt, nextKernelHandler, nmiConsoleRequests } from './lifecycle';
import { withFixup } from './msr';
import { haltForever, kernelPanic } from './panic';
import { schedulerTick } from './sched';
import { reprogramTimer, runTimers } from './timer';
import { HARDIRQ_OFFSET, NMI_OFFSET, type Task } from './task';
import { syscallEntry } from './workload';
import { SIGBUS, SIGILL, SIGSEGV } from './signal';
import { exitPath } from './irqentry';
import { HYPERVISOR_CALLBACK_VECTOR } from '../shared-abi/vectors';
import { doMachineCheck } from './designs/mce';
import { VE_VECTOR } from '../shared-abi/designs';

export interface EntryHandler {
  readonly name: string;
  readonly code: Code<unknown>;
}

/** The IDT gate for `tf.event` on `pc`, or null when the gate is missing. */
export function idtHandler(k: GuestKernel, pc: PerCpu, tf: TrapFrame, interrupted: Frame): EntryHandler | null {
  if (pc.idt === 'none') return null;
  if (pc.idt === 'next_kernel') return nextKernelHandler(k, tf);
  const ev = tf.event;
  switch (ev.kind) {
    case 'syscall':
      return { name: `syscall ${ev.nr}`, code: syscallEntry(k, tf) };
    case 'nmi':
      return { name: 'nmi', code: nmiEntry(k, tf) };
    case 'exception':
      switch (ev.vector) {
        case X86_EXCEPTION.PF:
          return { name: 'exc_page_fault', code: pfEntry(k, tf, interrupted) };
        case X86_EXCEPTION.GP:
          return { name: 'exc_general_protection', code: gpEntry(k, tf, interrupted) };
        case X86_EXCEPTION.UD:
          return { name: 'exc_invalid_op', code: fatalException(k, tf, 'invalid opcode', SIGILL) };
        case X86_EXCEPTION.DF:
          return { name: 'exc_double_fault', code: fatalException(k, tf, 'double fault', SIGSEGV, true) };
        case X86_EXCEPTION.MC:
          return { name: 'exc_machine_check', code: mcEntry(k, tf, interrupted) };
        case VE_VECTOR: {
          const ve = k.design.veEntry;
          if (ve !== undefined) return { name: 'exc_virtualization_exception', code: designVeEntry(k, tf, ve) };
          return { name: `exc_${ev.vector}`, code: fatalException(k, tf, `unexpected exception ${ev.vector}`, SIGSEGV) };
        }
        default:
          return { name: `exc_${ev.vector}`, code: fatalException(k, tf, `unexpected exception ${ev.vector}`, SIGSEGV) };
      }
    case 'interrupt':
      switch (ev.vector) {
        case LOCAL_TIMER_VECTOR:
          return { name: 'sysvec_apic_timer_interrupt', code: irqHandler(k, tf, timerInterrupt(k)) };
        case RESCHEDULE_VECTOR:
          return { name: 'sysvec_reschedule_ipi', code: irqHandler(k, tf, reschedIpi(k)) };
        case CALL_FUNCTION_VECTOR:
          return { name: 'sysvec_call_function', code: irqHandler(k, tf, callFunctionIpi(k)) };
        case MGMT_VECTOR:
          return { name: 'mgmt_console_interrupt', code: irqHandler(k, tf, mgmtInterrupt(k)) };
        case SPURIOUS_APIC_VECTOR:
          return { name: 'sysvec_spurious_apic_interrupt', code: irqHandler(k, tf, spurious(k)) };
        case HYPERVISOR_CALLBACK_VECTOR:
          if (k.apfIntGate) return { name: 'sysvec_kvm_asyncpf_interrupt', code: irqHandler(k, tf, pageReadyInterrupt(k, tf)) };
          return { name: 'common_interrupt', code: irqHandler(k, tf, unhandledIrq(k, ev.vector)) };
        default:
          return { name: 'common_interrupt', code: irqHandler(k, tf, unhandledIrq(k, ev.vector)) };
      }
  }
}

function countSub(t: Task, n: number): void {
  t.preemptCount = Math.max(0, t.preemptCount - n);
}

/** An interrupt handler: irq_enter, body, irq_exit, exit path, iret. */
function* irqHandler(k: GuestKernel, tf: TrapFrame, body: Code): Code {
  const t = k.current();
  t.preemptCount += HARDIRQ_OFFSET;
  yield* body;
  countSub(t, HARDIRQ_OFFSET);
  yield* exitPath(k, tf);
  yield insn.iret(tf);
}

function* timerInterrupt(k: GuestKernel): Code {
  yield* eoi(k);
  const pc = k.cpu();
  pc.programmed = 0;
  k.count('timer_interrupts');
  yield* runTimers(k);
  let kick = -1;
  if (k.sim.now >= pc.tickDeadline) {
    pc.tickDeadline = k.sim.now + k.tickNs;
    kick = schedulerTick(k, pc);
  }
  yield* reprogramTimer(k);
  if (kick >= 0) yield* sendReschedule(k, kick);
}

function* reschedIpi(k: GuestKernel): Code {
  yield* eoi(k);
  k.count('resched_ipi');
}

function* callFunctionIpi(k: GuestKernel): Code {
  yield* eoi(k);
  const pc = k.cpu();
  while (pc.calls.length > 0) {
    const c = pc.calls.shift()!;
    yield* c();
  }
  yield* reprogramTimer(k);
}

function* spurious(k: GuestKernel): Code {
  k.count('spurious_interrupt');
  // No EOI for the spurious vector (SDM).
  yield insn.pause();
}

function* unhandledIrq(k: GuestKernel, vector: number): Code {
  k.warnOnce(`do_IRQ: ${k.cpu().id}.${vector} No irq handler for vector`, `noirq:${vector}`);
  yield* eoi(k);
}

/** sysvec_kvm_asyncpf_interrupt: the page-ready handler (body from the ApfHandlers). */
function* pageReadyInterrupt(k: GuestKernel, tf: TrapFrame): Code {
  k.count('apf_page_ready_irq');
  yield* k.handlers.pageReady(k.apfApi(), tf);
}

/** exc_page_fault. */
function* pfEntry(k: GuestKernel, tf: TrapFrame, interrupted: Frame): Code {
  let cr2: number | null = null;
  if (k.config.toggles.cr2_read_at_entry) cr2 = yield* readCr2();
  if (k.apfStaticKey) {
    const handled = yield* k.handlers.pfHook(k.apfApi(), tf, cr2);
    if (handled) {
      yield insn.cli();
      yield* exitPath(k, tf);
      yield insn.iret(tf);
      return;
    }
  }
  const address = cr2 ?? (yield* readCr2());
  yield* doPageFault(k, tf, interrupted, address);
  yield insn.cli();
  yield* exitPath(k, tf);
  yield insn.iret(tf);
}

/** do_page_fault for an ordinary (not async) #PF at `address`. */
function* doPageFault(k: GuestKernel, tf: TrapFrame, interrupted: Frame, address: number): Code {
  const ec = tf.event.kind === 'exception' ? (tf.event.errorCode ?? 0) : 0;
  k.count('page_fault');
  const t = k.current();
  if (tf.savedCpl === 3) {
    // Every user page is mapped at load time: a user #PF is a bad access.
    if (tf.savedIf) yield insn.sti();
    // A design may report a failed page-in as a #PF on the present page (retry_pf).
    const bus = k.design.presentUserPfIsPageError && (ec & 1) !== 0;
    k.emit(k.cpu().id, 'signal', { task: t.name, sig: bus ? 'SIGBUS' : 'SIGSEGV', gva: address, error_code: ec });
    t.killed = bus ? SIGBUS : SIGSEGV;
    return;
  }
  if (interrupted.extable && interrupted.pending !== null) {
    k.count('extable_fixup');
    interrupted.fixedUp = true;
    interrupted.skipPending();
    return;
  }
  k.emit(k.cpu().id, 'unexpected_exception', { vector: X86_EXCEPTION.PF, error_code: ec, cpl: 0 });
  yield* kernelPanic(k, `BUG: unable to handle page fault for address: ${formatGva(address as Gva)} (error code 0x${ec.toString(16)})`);
}

/** exc_general_protection: the MSR exception-table fixup, SIGSEGV for user mode, else oops. */
function* gpEntry(k: GuestKernel, tf: TrapFrame, interrupted: Frame): Code {
  const ec = tf.event.kind === 'exception' ? (tf.event.errorCode ?? 0) : 0;
  const p = interrupted.pending;
  if (tf.savedCpl === 3) {
    const t = k.current();
    k.emit(k.cpu().id, 'signal', { task: t.name, sig: 'SIGSEGV', error_code: ec });
    t.killed = SIGSEGV;
  } else if (interrupted.extable && p !== null) {
    if (p.op === 'wrmsr') {
      k.warnOnce(`unchecked MSR access error: WRMSR to 0x${p.msr.toString(16)} (tried to write 0x${p.value.toString(16).padStart(16, '0')})`, `wrmsr:${p.msr}`);
    } else if (p.op === 'rdmsr') {
      k.warnOnce(`unchecked MSR access error: RDMSR from 0x${p.msr.toString(16)}`, `rdmsr:${p.msr}`);
    }
    k.count('extable_fixup');
    interrupted.fixedUp = true;
    interrupted.skipPending(p.op === 'rdmsr' ? 0n : undefined);
  } else {
    k.emit(k.cpu().id, 'unexpected_exception', { vector: X86_EXCEPTION.GP, error_code: ec, cpl: 0 });
    yield* kernelPanic(k, `general protection fault: 0x${ec.toString(16)} [#1]`);
  }
  yield* exitPath(k, tf);
  yield insn.iret(tf);
}

/** exc_machine_check: a recoverable injected memory error (guest/designs/mce.ts), else fatal. */
function* mcEntry(k: GuestKernel, tf: TrapFrame, interrupted: Frame): Code {
  if ((yield* doMachineCheck(k, tf, interrupted)) === 'fatal') {
    yield* fatalException(k, tf, 'Fatal machine check', SIGSEGV, true);
    return;
  }
  yield* exitPath(k, tf);
  yield insn.iret(tf);
}

/** #VE of a design that delivers "not present" as #VE (guest/designs): wait for the token, then return. */
function* designVeEntry(k: GuestKernel, tf: TrapFrame, veEntry: (k: GuestKernel, tf: TrapFrame) => Code): Code {
  yield* veEntry(k, tf);
  yield* exitPath(k, tf);
  yield insn.iret(tf);
}

/** An exception nobody handles: a signal in user mode, an oops (panic) in kernel mode. */
function* fatalException(k: GuestKernel, tf: TrapFrame, what: string, sig: number, alwaysPanic = false): Code {
  const ev = tf.event;
  const vector = ev.kind === 'exception' ? ev.vector : -1;
  const ec = ev.kind === 'exception' ? (ev.errorCode ?? 0) : 0;
  if (tf.savedCpl === 3 && !alwaysPanic) {
    const t = k.current();
    k.emit(k.cpu().id, 'signal', { task: t.name, sig: sig === SIGILL ? 'SIGILL' : 'SIGSEGV', vector });
    t.killed = sig;
    yield* exitPath(k, tf);
    yield insn.iret(tf);
    return;
  }
  k.emit(k.cpu().id, 'unexpected_exception', { vector, error_code: ec, cpl: tf.savedCpl });
  yield* kernelPanic(k, vector === X86_EXCEPTION.UD ? `kernel BUG: ${what}` : what);
}

/** The NMI handler (exc_nmi). */
function* nmiEntry(k: GuestKernel, tf: TrapFrame): Code {
  const t = k.current();
  t.preemptCount += NMI_OFFSET + HARDIRQ_OFFSET;
  let saved: number | null = null;
  if (k.config.toggles.nmi_saves_cr2) saved = yield* readCr2();
  k.count('nmi');
  if (k.mode === 'panicked' || k.mode === 'rebooted' || k.mode === 'kexec') {
    yield* haltForever(k, 'stopped');
  }
  if (k.mode === 'crashed') {
    // kdump's NMI shootdown: save state, disable the local APIC, halt.
    yield* lapicDisable();
    k.cpu().lapicOn = false;
    yield* haltForever(k, 'stopped');
  }
  // The console signals lapic_enable with an NMI (a disabled LAPIC drops fixed interrupts).
  yield* nmiConsoleRequests(k);
  if (k.nmiUserRead !== null && t.kind === 'user') {
    // perf: copy_from_user_nmi of the user stack.
    const r = yield* withFixup(k, insn.load(k.nmiUserRead, 8));
    k.count(r.ok ? 'nmi_user_read' : 'nmi_user_read_fault');
  }
  if (saved !== null) {
    const now = yield* readCr2();
    if (now !== saved) {
      k.count('nmi_cr2_restored');
      yield insn.writeCr(2, saved);
    }
  }
  countSub(t, NMI_OFFSET + HARDIRQ_OFFSET);
  yield insn.iret(tf);
}
