/**
 * spin_lock/spin_unlock: a raw spinlock plus preempt_disable/preempt_enable, or on PREEMPT_RT a
 * sleeping lock (for a non-raw spinlock_t) that leaves preemption on.
 */
import { insn, type Code } from './code';
import type { GuestKernel } from './kernel';
import { kernelPanic } from './panic';
import { preemptCountAdd, preemptEnable } from './preempt';
import { tryTake } from './raw_spinlock';
import type { SpinLock } from './task';

/** A spinlock_t on PREEMPT_RT is a sleeping lock that does not disable preemption. */
const rtSleeping = (k: GuestKernel, l: SpinLock): boolean => k.config.toggles.preempt_rt && !l.raw;

/** Acquire `l` (spin with PAUSE while another CPU holds it). */
export function* spinLock(k: GuestKernel, l: SpinLock): Code {
  const sleeping = rtSleeping(k, l);
  if (!sleeping) preemptCountAdd(k, k.current(), 1);
  for (;;) {
    const me = k.cpu().id;
    const cur = k.current();
    if (l.owner === null) {
      if (yield* tryTake(k, l)) return;
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
  l.owner = null;
  l.holder = null;
  yield insn.store(l.gva, 0);
  if (!rtSleeping(k, l)) yield* preemptEnable(k, false);
}
