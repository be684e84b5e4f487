/**
 * preempt_count: the PREEMPT bits of the running task (a no-op without CONFIG_PREEMPT_COUNT),
 * preempt_disable/preempt_enable, and the preempt_schedule() check at the end of preempt_enable.
 */
import { insn, type Code } from './code';
import type { GuestKernel } from './kernel';
import { scheduleCore } from './sched';
import type { Task } from './task';

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
