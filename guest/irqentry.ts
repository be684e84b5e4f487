/**
 * The common exit of every entry (interrupt, exception, syscall): irqentry_exit and
 * exit_to_user_mode. Entries in entry.ts and the syscall entry in workload.ts end here.
 */
import type { TrapFrame } from '../shared-abi/arch';
import { insn, type Code } from './code';
import { doExit } from './exit';
import type { GuestKernel } from './kernel';
import { preemptScheduleIrq, schedule } from './sched';

/**
 * irqentry_exit with IRQs off: on the way to user mode act on fatal signals and need_resched;
 * on the way back to preemptible kernel code, preempt (CONFIG_PREEMPT).
 */
export function* exitPath(k: GuestKernel, tf: TrapFrame): Code {
  if (tf.savedCpl === 3) {
    for (;;) {
      const t = k.current();
      if (t.killed !== null) {
        const sig = t.killed;
        t.killed = null;
        yield* doExit(k, 128 + sig);
      }
      if (!t.needResched) break;
      yield insn.sti();
      yield* schedule(k);
      yield insn.cli();
    }
  } else if (tf.savedIf && k.config.toggles.config_preempt) {
    const t = k.current();
    if (t.preemptCount === 0 && t.needResched && !t.isIdle) yield* preemptScheduleIrq(k);
  }
}
