/**
 * raw spinlocks: the atomic exchange on the lock word, spinning with PAUSE, and the recursion
 * check. They leave preempt_count alone (callers run with IRQs off, like the runqueue locks);
 * spin_lock/spin_unlock in spinlock.ts add the preemption side.
 */
import { insn, type Code } from './code';
import type { GuestKernel } from './kernel';
import { kernelPanic } from './panic';
import type { SpinLock } from './task';

/**
 * One attempt at the atomic exchange on the lock word: the lock is taken when the store retires
 * and the lock was free at that moment (a store that faults or exits to the host has not taken
 * the lock yet; another CPU may get it first).
 */
export function* tryTake(k: GuestKernel, l: SpinLock): Code<boolean> {
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
