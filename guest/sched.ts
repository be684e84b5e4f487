/**
 * Scheduler and low-level kernel primitives, as guest code: exception-table annotated accesses,
 * MSR accessors, IRQ flags, spinlocks, preempt_count, schedule()/__schedule(), try_to_wake_up,
 * timers (TSC-deadline, tickless idle), the idle loop, sleeping, exit, and the hung-task detector.
 *
 * Scheduling model (docs/guest.md): per-CPU FIFO runqueues ordered by class (the per-CPU
 * `cpuhp` helpers first, like stopper threads) then nice; a running task is preempted by the tick
 * after SLICE_NS when others wait, by a woken task of lower nice, and always leaves the idle task
 * on a wake-up. Runqueue locks are handed over across the context switch exactly as in Linux
 * (the next task's finish_task_switch unlocks the runqueue and enables IRQs).
 */
import type { Insn } from '../shared-abi/arch';
import { X86_MSR } from '../shared-abi/msr';
import { GuestCodeError, insn, underFixup, type Code, type Fixed } from './code';
import type { GuestKernel, PerCpu } from './kernel';
import { RESCHEDULE_VECTOR, icrValue, ICR_FIXED, ICR_NMI } from './lapic';
import type { KTimer, SpinLock, Task } from './task';

/** Time slice before the tick preempts a task that others wait behind. */
export const SLICE_NS = 3_000_000;

// ---------------------------------------------------------------------------------------------
// Exception-table annotated instructions
// ---------------------------------------------------------------------------------------------

export type { Fixed } from './code';

/** Execute `i` on the running frame with an exception-table entry (see `underFixup`). */
export function withFixup(k: GuestKernel, i: Insn): Code<Fixed> {
  return underFixup(k.runningFrame(), i);
}

/** wrmsrl: a #GP is fixed up by the exception table (warning "unchecked MSR access error"). */
export function* kwrmsr(k: GuestKernel, msr: number, value: bigint): Code<boolean> {
  const r = yield* withFixup(k, insn.wrmsr(msr, value));
  return r.ok;
}

/** rdmsrl with the exception-table fixup: null after a #GP. */
export function* krdmsr(k: GuestKernel, msr: number): Code<bigint | null> {
  const r = yield* withFixup(k, insn.rdmsr(msr));
  if (!r.ok) return null;
  return typeof r.value === 'bigint' ? r.value : BigInt(Number(r.value ?? 0));
}

// ---------------------------------------------------------------------------------------------
// LAPIC helpers that go through the checked MSR accessors
// ---------------------------------------------------------------------------------------------

export function* eoi(k: GuestKernel): Code {
  yield* kwrmsr(k, X86_MSR.X2APIC_EOI, 0n);
}

export function* sendIpi(k: GuestKernel, dest: number, vector: number): Code {
  k.count('ipi_sent');
  yield* kwrmsr(k, X86_MSR.X2APIC_ICR, icrValue(dest, ICR_FIXED, vector));
}

export function* sendReschedule(k: GuestKernel, dest: number): Code {
  k.count('resched_ipi_sent');
  yield* sendIpi(k, dest, RESCHEDULE_VECTOR);
}

// ---------------------------------------------------------------------------------------------
// IRQ flags
// ---------------------------------------------------------------------------------------------

/** irqs_disabled(): RFLAGS.IF of this CPU (what pushf would read). */
export const irqsDisabled = (k: GuestKernel): boolean => !k.cpu().vcpu.ifFlag;

/** local_irq_save: pushf; cli. Returns whether IRQs were on. */
export function* localIrqSave(k: GuestKernel): Code<boolean> {
  const was = k.cpu().vcpu.ifFlag;
  yield insn.cli();
  return was;
}

export function* localIrqRestore(_k: GuestKernel, was: boolean): Code {
  if (was) yield insn.sti();
}

// ---------------------------------------------------------------------------------------------
// preempt_count
// ---------------------------------------------------------------------------------------------

/** Add to the PREEMPT bits (a no-op without CONFIG_PREEMPT_COUNT). */
export function preemptCountAdd(k: GuestKernel, t: Task, n: number): void {
  if (!k.config.toggles.preempt_count) return;
  t.preemptCount += n;
}

export function preemptCountSub(k: GuestKernel, t: Task, n: number): void {
  if (!k.config.toggles.preempt_count) return;
  t.preemptCount -= n;
  if (t.preemptCount < 0) {
    k.warnOnce(`preempt count underflow in ${t.name}`);
    t.preemptCount = 0;
  }
}

/** preempt_disable() as its own instruction (an increment of the per-CPU count). */
export function* preemptDisable(k: GuestKernel): Code {
  const t = k.current();
  preemptCountAdd(k, t, 1);
  yield insn.store(k.cpu().percpuGva(8), t.preemptCount);
}

/** preempt_enable(): may preempt right here under CONFIG_PREEMPT. */
export function* preemptEnable(k: GuestKernel, withInsn = true): Code {
  const t = k.current();
  preemptCountSub(k, t, 1);
  if (withInsn) yield insn.store(k.cpu().percpuGva(8), t.preemptCount);
  yield* preemptCheck(k);
}

/** The tail of preempt_enable: preempt_schedule() when preemptible and a reschedule is due. */
export function* preemptCheck(k: GuestKernel): Code {
  for (;;) {
    const t = k.current();
    if (!(k.config.toggles.config_preempt && t.preemptCount === 0 && t.needResched && k.cpu().vcpu.ifFlag && !t.isIdle)) return;
    k.count('preempt_schedule');
    yield* scheduleCore(k, true);
  }
}

// ---------------------------------------------------------------------------------------------
// Spinlocks
// ---------------------------------------------------------------------------------------------

/** A spinlock_t on PREEMPT_RT is a sleeping lock that does not disable preemption. */
const rtSleeping = (k: GuestKernel, l: SpinLock): boolean => k.config.toggles.preempt_rt && !l.raw;

/**
 * One attempt at the atomic exchange on the lock word: the lock is taken when the store retires
 * and the lock was free at that moment (a store that faults or exits to the host has not taken
 * the lock yet; another CPU may get it first).
 */
function* tryTake(k: GuestKernel, l: SpinLock): Code<boolean> {
  const me = k.cpu().id;
  const who = k.current().name;
  let got = false;
  k.runningFrame().onRetire = () => {
    if (l.owner === null) {
      l.owner = me;
      l.holder = who;
      got = true;
    }
  };
  yield insn.store(l.gva, 1);
  return got;
}

/** Acquire `l` (spin with PAUSE while another CPU holds it). */
export function* spinLock(k: GuestKernel, l: SpinLock): Code {
  const sleeping = rtSleeping(k, l);
  if (!sleeping) preemptCountAdd(k, k.current(), 1);
  for (;;) {
    const me = k.cpu().id;
    const cur = k.current();
    if (l.owner === null) {
      if (yield* tryTake(k, l)) {
        k.current().spinlocks.push(l);
        return;
      }
      continue;
    }
    if ((!sleeping && l.owner === me) || (sleeping && l.holder === cur.name)) {
      k.bug('spinlock_recursion', `BUG: spinlock recursion on CPU#${me}, ${cur.name}: lock ${l.name} held by ${l.holder ?? '?'}`);
      yield* kernelPanic(k, `BUG: spinlock recursion on CPU#${me} (${l.name})`);
    }
    yield insn.pause();
  }
}

/** Release `l`; the preempt_enable may preempt. */
export function* spinUnlock(k: GuestKernel, l: SpinLock): Code {
  if (l.owner === null) k.warnOnce(`unlock of unlocked spinlock ${l.name}`);
  const held = k.current().spinlocks;
  const i = held.lastIndexOf(l);
  if (i >= 0) held.splice(i, 1);
  l.owner = null;
  l.holder = null;
  yield insn.store(l.gva, 0);
  if (!rtSleeping(k, l)) yield* preemptEnable(k, false);
}

/** raw_spin_lock without touching preempt_count (callers run with IRQs off, like rq locks). */
export function* rawLock(k: GuestKernel, l: SpinLock): Code {
  for (;;) {
    const me = k.cpu().id;
    if (l.owner === null) {
      if (yield* tryTake(k, l)) return;
      continue;
    }
    if (l.owner === me) {
      k.bug('spinlock_recursion', `BUG: spinlock recursion on CPU#${me}: lock ${l.name}`);
      yield* kernelPanic(k, `BUG: spinlock recursion on CPU#${me} (${l.name})`);
    }
    yield insn.pause();
  }
}

export function* rawUnlock(k: GuestKernel, l: SpinLock): Code {
  l.owner = null;
  l.holder = null;
  yield insn.store(l.gva, 0);
}

// ---------------------------------------------------------------------------------------------
// Panic
// ---------------------------------------------------------------------------------------------

/**
 * panic(): record the message, stop the other CPUs with NMIs, and loop with IF=0 forever.
 */
export function* kernelPanic(k: GuestKernel, message: string): Code<never> {
  const first = k.panicked() === null;
  yield insn.cli();
  k.recordPanic(message);
  const me = k.cpu();
  if (first) {
    for (const c of k.cpus) {
      if (c.id !== me.id && (c.online || c.state === 'dying' || c.state === 'suspended')) {
        yield* kwrmsr(k, X86_MSR.X2APIC_ICR, icrValue(c.id, ICR_NMI, 0));
      }
    }
  }
  return yield* haltForever(k, 'stopped');
}

/** cli; hlt forever (a stopped or dead CPU). */
export function* haltForever(k: GuestKernel, state: 'stopped' | 'offline'): Code<never> {
  yield insn.cli();
  const pc = k.cpu();
  pc.state = state;
  pc.tickDeadline = Infinity;
  for (;;) yield insn.hlt();
}

// ---------------------------------------------------------------------------------------------
// schedule()
// ---------------------------------------------------------------------------------------------

const prio = (t: Task): number => (t.name.startsWith('cpuhp/') ? -1000 : t.nice);

/** schedule(): a voluntary context switch (prev sleeps if its state says so). */
export function* schedule(k: GuestKernel): Code {
  yield* scheduleCore(k, false);
}

/** preempt_schedule_irq / preempt_schedule: prev stays runnable whatever its state. */
export function* preemptScheduleIrq(k: GuestKernel): Code {
  do {
    k.count('preempt_schedule_irq');
    yield insn.sti();
    yield* scheduleCore(k, true);
    yield insn.cli();
  } while (k.current().needResched);
}

function scheduleDebug(k: GuestKernel, prev: Task): void {
  // Like Linux's schedule_debug(), the atomic check holds for the idle task too: a schedule()
  // from a hardirq handler that interrupted idle is as wrong as one over any other task. (The
  // idle loop itself calls schedule() with a zero count here.)
  if (prev.preemptCount !== 0) {
    k.bug('scheduling_while_atomic', `BUG: scheduling while atomic: ${prev.name}/${prev.id}/0x${prev.preemptCount.toString(16).padStart(8, '0')}`);
    // Linux resets the count after the report.
    prev.preemptCount = 0;
  }
  // The idle task never blocks: the sleep-state checks below do not apply to it.
  if (prev.isIdle) return;
  if (prev.state !== 'running' && prev.state !== 'dead') {
    if (prev.rcuDepth > 0) k.bug('rcu_sleep', `Voluntary context switch within RCU read-side critical section! (${prev.name})`);
    if (!k.cpu().vcpu.ifFlag) {
      k.bug('sleeping_in_invalid_context', `BUG: sleeping function called from invalid context: in_atomic(): 0, irqs_disabled(): 1, pid: ${prev.id}, name: ${prev.name}`);
    }
  }
}

/** __schedule(). */
export function* scheduleCore(k: GuestKernel, preempt: boolean): Code {
  const pc0 = k.cpu();
  const prev = pc0.curr;
  if (!preempt) scheduleDebug(k, prev);
  yield insn.cli();
  yield* rawLock(k, pc0.rqLock);
  const pc = k.cpu();
  const now = k.sim.now;
  if (!preempt && prev.state !== 'running' && !prev.isIdle) {
    prev.onRq = false;
    prev.sleepStart = now;
    prev.hungReported = false;
    if (prev.state === 'uninterruptible') armHungTask(k);
  }
  const next = pickNextTask(k, pc, prev);
  prev.needResched = false;
  if (next !== prev) {
    if (prev.onRq && !prev.isIdle) pc.queue.push(prev);
    prev.switches++;
    k.emit(pc.id, 'sched_switch', { prev: prev.name, next: next.name, prev_state: prev.state });
    k.count('context_switches');
    if (next.mm !== null && pc.cr3 !== next.mm.pml4) {
      pc.cr3 = next.mm.pml4;
      yield insn.writeCr(3, next.mm.pml4);
    }
    pc.curr = next;
    prev.onCpu = false;
    next.onCpu = true;
    next.cpu = pc.id;
    next.sliceStart = now;
    if (prev.state === 'dead') prev.stack = [];
    // switch_to: prev's stack parks at this instruction; `next` resumes at its own.
    yield insn.pause();
  }
  yield* finishTaskSwitch(k);
}

/** finish_task_switch: unlock the runqueue this CPU locked for the switch and enable IRQs. */
export function* finishTaskSwitch(k: GuestKernel): Code {
  const pc = k.cpu();
  yield* rawUnlock(k, pc.rqLock);
  yield insn.sti();
}

function pickNextTask(k: GuestKernel, pc: PerCpu, prev: Task): Task {
  let best: Task | undefined;
  for (const t of pc.queue) if (best === undefined || prio(t) < prio(best)) best = t;
  // prev stays a candidate while it is on the runqueue (running, or preempted on its way to sleep).
  const prevRunnable = prev.onRq && !prev.isIdle && prev.cpu === pc.id;
  if (best !== undefined && (!prevRunnable || prio(best) <= prio(prev))) {
    pc.queue.splice(pc.queue.indexOf(best), 1);
    return best;
  }
  if (prevRunnable) return prev;
  // newidle balance: pull a queued task that may run here from the busiest other CPU.
  if (pc.online) {
    let from: PerCpu | undefined;
    for (const c of k.cpus) {
      if (c === pc || !c.online || c.curr.isIdle) continue;
      if (!c.queue.some((t) => t.affinity.includes(pc.id))) continue;
      if (from === undefined || c.queue.length > from.queue.length) from = c;
    }
    if (from !== undefined) {
      const t = from.queue.find((x) => x.affinity.includes(pc.id));
      if (t !== undefined) {
        from.queue.splice(from.queue.indexOf(t), 1);
        k.emit(pc.id, 'sched_migrate_task', { task: t.name, orig_cpu: from.id, dest_cpu: pc.id });
        k.count('migrations');
        t.cpu = pc.id;
        return t;
      }
    }
  }
  return pc.idle;
}

/** select_task_rq: the task's CPU if it is online and allowed, else the least loaded allowed one. */
export function selectTaskRq(k: GuestKernel, p: Task): number {
  let allowed = p.affinity.filter((c) => k.cpus[c]?.online === true);
  if (allowed.length === 0) {
    allowed = k.cpus.filter((c) => c.online).map((c) => c.id);
    if (allowed.length === 0) return p.cpu;
    k.warnOnce(`process ${p.id} (${p.name}) no longer affine to cpu${p.affinity.join(',')}`);
  }
  if (allowed.includes(p.cpu)) return p.cpu;
  let best = allowed[0]!;
  let load = Infinity;
  for (const c of allowed) {
    const pc = k.cpus[c]!;
    const l = pc.queue.length + (pc.curr.isIdle ? 0 : 1);
    if (l < load) {
      load = l;
      best = c;
    }
  }
  return best;
}

const preemptsCurr = (rq: PerCpu, p: Task): boolean => rq.curr.isIdle || prio(p) < prio(rq.curr);

/** try_to_wake_up. Returns whether the task was woken. */
export function* tryToWakeUp(k: GuestKernel, p: Task): Code<boolean> {
  const was = yield* localIrqSave(k);
  const pi = k.lock(`pi_lock:${p.id}`, true);
  yield* rawLock(k, pi);
  let woken = false;
  let ipi = -1;
  if (p.state === 'running' || p.state === 'dead' || p.state === 'new') {
    // nothing to do
  } else if (p.onRq) {
    // Still on its runqueue (it has not reached schedule(), or was preempted on the way).
    p.state = 'running';
    woken = true;
    k.emit(k.cpu().id, 'sched_wakeup', { task: p.name, target_cpu: p.cpu });
  } else {
    while (p.onCpu) yield insn.pause();
    const target = selectTaskRq(k, p);
    const rq = k.cpus[target]!;
    yield* rawLock(k, rq.rqLock);
    if (target !== p.cpu) {
      k.emit(k.cpu().id, 'sched_migrate_task', { task: p.name, orig_cpu: p.cpu, dest_cpu: target });
      k.count('migrations');
    }
    p.state = 'running';
    p.onRq = true;
    p.cpu = target;
    p.waitReason = '';
    rq.queue.push(p);
    woken = true;
    k.emit(k.cpu().id, 'sched_wakeup', { task: p.name, target_cpu: target });
    if (preemptsCurr(rq, p)) {
      rq.curr.needResched = true;
      if (target !== k.cpu().id) ipi = target;
    }
    yield* rawUnlock(k, rq.rqLock);
  }
  yield* rawUnlock(k, pi);
  if (ipi >= 0) yield* sendReschedule(k, ipi);
  yield* localIrqRestore(k, was);
  if (woken) k.count('wakeups');
  return woken;
}

/** wake_up_new_task: first activation of a created task. */
export function* wakeUpNewTask(k: GuestKernel, p: Task): Code {
  const was = yield* localIrqSave(k);
  const target = selectTaskRq(k, p);
  const rq = k.cpus[target]!;
  yield* rawLock(k, rq.rqLock);
  p.state = 'running';
  p.onRq = true;
  p.cpu = target;
  rq.queue.push(p);
  k.emit(k.cpu().id, 'sched_wakeup', { task: p.name, target_cpu: target });
  const ipi = preemptsCurr(rq, p);
  if (ipi) rq.curr.needResched = true;
  yield* rawUnlock(k, rq.rqLock);
  if (ipi && target !== k.cpu().id) yield* sendReschedule(k, target);
  yield* localIrqRestore(k, was);
}

// ---------------------------------------------------------------------------------------------
// Timers (TSC-deadline, tickless idle)
// ---------------------------------------------------------------------------------------------

export function addTimer(pc: PerCpu, t: KTimer): void {
  pc.timers.push(t);
  pc.timers.sort((a, b) => a.expires - b.expires || a.seq - b.seq);
}

function nextDeadline(pc: PerCpu): number {
  let d = pc.tickDeadline;
  for (const t of pc.timers) {
    if (t.cancelled) continue;
    if (t.expires < d) d = t.expires;
    break;
  }
  return d;
}

/** Program this CPU's TSC deadline for the next timer or tick (0 when there is none). */
export function* reprogramTimer(k: GuestKernel): Code {
  const pc = k.cpu();
  while (pc.timers.length > 0 && pc.timers[0]!.cancelled) pc.timers.shift();
  const next = nextDeadline(pc);
  const want = next === Infinity ? 0 : Math.max(Math.round(next), k.sim.now + 1);
  if (want === pc.programmed) return;
  if (want !== 0 && pc.programmed !== 0 && pc.programmed <= want) return; // an earlier deadline is armed; its handler reprograms
  pc.programmed = want;
  yield* kwrmsr(k, X86_MSR.IA32_TSC_DEADLINE, BigInt(want));
}

/** Run the expired timers of this CPU (timer interrupt context). */
export function* runTimers(k: GuestKernel): Code {
  const pc = k.cpu();
  for (;;) {
    const t = pc.timers[0];
    if (t === undefined || t.expires > k.sim.now) return;
    pc.timers.shift();
    if (t.cancelled) continue;
    t.cancelled = true;
    const c = t.fn();
    if (c !== undefined) yield* c;
  }
}

/**
 * scheduler_tick: end the slice when others wait; and (trigger_load_balance's nohz kick) when
 * tasks wait here that may run on an idle CPU, return that CPU to kick with a reschedule IPI.
 */
export function schedulerTick(k: GuestKernel, pc: PerCpu): number {
  const c = pc.curr;
  if (!c.isIdle && pc.queue.length > 0 && k.sim.now - c.sliceStart >= SLICE_NS) c.needResched = true;
  if (pc.queue.length === 0 || c.isIdle) return -1;
  for (const other of k.cpus) {
    if (other === pc || !other.online || !other.curr.isIdle || other.queue.length > 0 || other.curr.needResched) continue;
    if (!pc.queue.some((t) => t.affinity.includes(other.id))) continue;
    other.curr.needResched = true;
    return other.id;
  }
  return -1;
}

// ---------------------------------------------------------------------------------------------
// Idle, sleep, exit
// ---------------------------------------------------------------------------------------------

/** The idle task's program: `prelude` (boot or CPU bring-up), then cpu_idle_loop forever. */
export function* idleProgram(k: GuestKernel, prelude: Code): Code<never> {
  yield* prelude;
  for (;;) {
    if (k.cpu().state === 'dying') yield* playDead(k);
    if (k.idleRead !== null) {
      // Idle-time kernel work with interrupts on (the PAUSE leaves the STI shadow first).
      yield insn.sti();
      yield insn.pause();
      yield insn.load(k.idleRead, 8);
    }
    yield insn.cli();
    let pc = k.cpu();
    pc.tickDeadline = Infinity;
    yield* reprogramTimer(k);
    for (;;) {
      pc = k.cpu();
      if (pc.curr.needResched || pc.queue.length > 0 || pc.state === 'dying') break;
      yield insn.stiHlt();
      yield insn.cli();
    }
    if (pc.state !== 'dying') {
      pc.tickDeadline = k.sim.now + k.tickNs;
      yield* reprogramTimer(k);
    }
    yield insn.sti();
    yield* schedule(k);
  }
}

/** A dead CPU: the idle task parks in cli;hlt until INIT. */
export function* playDead(k: GuestKernel): Code<never> {
  return yield* haltForever(k, 'offline');
}

/** Sleep for `ns` in `state` (msleep / nanosleep). */
export function* sleepFor(k: GuestKernel, ns: number, state: 'interruptible' | 'uninterruptible', reason: string): Code {
  const t = k.current();
  t.state = state;
  t.waitReason = reason;
  const pc = k.cpu();
  const timer = k.newTimer(k.sim.now + Math.max(1, Math.round(ns)), `wake:${t.id}`, () => wakeFromTimer(k, t));
  const was = yield* localIrqSave(k);
  addTimer(pc, timer);
  yield* reprogramTimer(k);
  yield* localIrqRestore(k, was);
  yield* schedule(k);
  timer.cancelled = true;
  t.waitReason = '';
}

function* wakeFromTimer(k: GuestKernel, t: Task): Code {
  yield* tryToWakeUp(k, t);
}

/** do_exit. */
export function* doExit(k: GuestKernel, code: number): Code<never> {
  const t = k.current();
  if (t.locksHeld.length > 0) k.warn(`BUG: ${t.name}/${t.id} is exiting with locks held: ${t.locksHeld.join(', ')}`);
  t.exitCode = code;
  k.emit(k.cpu().id, 'task_exit', { task: t.name, code });
  yield insn.sti();
  t.preemptCount = 0;
  t.rcuDepth = 0;
  t.state = 'dead';
  yield* schedule(k);
  throw new GuestCodeError(`task ${t.name} ran after do_exit`);
}

// ---------------------------------------------------------------------------------------------
// Hung-task detector
// ---------------------------------------------------------------------------------------------

/** Make sure a hung-task check is armed (called when a task enters TASK_UNINTERRUPTIBLE). */
export function armHungTask(k: GuestKernel): void {
  if (k.hungTaskTimeoutNs <= 0 || k.hungArmed) return;
  k.hungArmed = true;
  const period = Math.max(1, Math.round(k.hungTaskTimeoutNs / 4));
  addTimer(k.cpu(), k.newTimer(k.sim.now + period, 'hung_task', () => hungTaskCheck(k)));
}

function hungTaskCheck(k: GuestKernel): void {
  k.hungArmed = false;
  if (k.mode !== 'running') return;
  const now = k.sim.now;
  let pending = false;
  for (const t of k.allTasks) {
    if (t.state !== 'uninterruptible' || t.isIdle || t.onRq) continue;
    const blocked = now - t.sleepStart;
    if (!t.hungReported && blocked >= k.hungTaskTimeoutNs) {
      t.hungReported = true;
      k.count('hung_task');
      k.emit(k.cpu().id, 'hung_task', { task: t.name, blocked_ns: blocked });
      k.warnings.push(`INFO: task ${t.name}:${t.id} blocked for more than ${Math.floor(blocked / 1e9)} seconds.`);
    }
    if (!t.hungReported) pending = true;
  }
  if (pending) armHungTask(k);
}

