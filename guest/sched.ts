/**
 * The scheduler: schedule()/__schedule(), preempt_schedule_irq, finish_task_switch, task
 * selection and newidle balancing, select_task_rq, try_to_wake_up, wake_up_new_task and the
 * scheduler tick.
 *
 * Scheduling model (docs/guest.md): per-CPU FIFO runqueues ordered by class (the per-CPU
 * `cpuhp` helpers first, like stopper threads) then nice; a running task is preempted by the tick
 * after SLICE_NS when others wait, by a woken task of lower nice, and always leaves the idle task
 * on a wake-up. Runqueue locks are handed over across the context switch exactly as in Linux
 * (the next task's finish_task_switch unlocks the runqueue and enables IRQs).
 */
import { insn, type Code } from './code';
import { armHungTask } from './hung_task';
import { localIrqRestore, localIrqSave } from './irqflags';
import type { GuestKernel, PerCpu } from './kernel';
import { sendReschedule } from './lapic';
import { rawLock, rawUnlock } from './raw_spinlock';
import type { Task } from './task';

/** Time slice before the tick preempts a task that others wait behind. */
export const SLICE_NS = 3_000_000;

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
  if (prev.isIdle) return;
  if (prev.preemptCount !== 0) {
    k.bug('scheduling_while_atomic', `BUG: scheduling while atomic: ${prev.name}/${prev.id}/0x${prev.preemptCount.toString(16).padStart(8, '0')}`);
    // Linux resets the count after the report.
    prev.preemptCount = 0;
  }
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
