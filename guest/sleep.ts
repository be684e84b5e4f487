/** Sleeping for a time (msleep / nanosleep): a timer that wakes the task, then schedule(). */
import type { Code } from './code';
import { localIrqRestore, localIrqSave } from './irqflags';
import type { GuestKernel } from './kernel';
import { schedule, tryToWakeUp } from './sched';
import type { Task } from './task';
import { addTimer, reprogramTimer } from './timer';

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
