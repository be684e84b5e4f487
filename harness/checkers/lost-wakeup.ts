/**
 * lost-wakeup: no wake-up of an async-PF waiter is lost. Two ways to lose one:
 * - a wake that comes before the wait and finds nobody must leave a dummy node that the wait then
 *   consumes; a task that goes to sleep on that token anyway lost it (the fuzzer's
 *   `no-lost-wakeup` property, harness/fuzz/properties.ts, as a scenario checker);
 * - a wake that finds the waiter's node before the waiter is ready to be woken (its state still
 *   TASK_RUNNING, so the wake-up is a no-op) and the waiter that then goes to sleep: the wait must
 *   set its state before it checks its node, and enable IRQs only after both.
 */
import { LOST_WAKEUP_EVENTS, lostWakeupObserver } from '../fuzz/properties';
import { at, defineChecker, eventSet, hex } from './types';

export const lostWakeup = defineChecker({
  name: 'lost-wakeup',
  description: 'no wake-up of an async-PF waiter is lost (early wake without a dummy, or a wake before the waiter was ready)',
  invariant:
    'No task sleeps on a token whose wake already came and left no dummy it consumed; no task switches out asleep (prev_state D) on a token after a wake found its node.',
  options: {},
  // The fuzzer's observer's events, and the scheduler's for the second way.
  events: eventSet(LOST_WAKEUP_EVENTS, ['task_exit', 'sched_switch', 'sched_wakeup']),
  create(_opts, report) {
    const early = lostWakeupObserver();
    /** task -> the token it waits on and when its node was found by a wake (if it was). */
    const waiting = new Map<string, { token: number; found?: { t: number; cpu: number }; woken?: boolean }>();
    const byToken = new Map<number, string>();
    /** Tasks that switched out asleep after their node was found, until someone wakes them. */
    const suspects = new Map<string, { t: number; cpu: number; message: string }>();
    return {
      onRecord(rec) {
        if (rec.src !== 'guest') return;
        if (early.events.has(rec.event as never)) early.onRecord(rec as never);
        switch (rec.event) {
          case 'kvm_async_pf_task_wait_schedule': {
            waiting.set(rec.task, { token: rec.token >>> 0 });
            byToken.set(rec.token >>> 0, rec.task);
            return;
          }
          case 'kvm_async_pf_task_woken':
          case 'kvm_async_pf_dummy_consumed':
          case 'task_exit': {
            const task = rec.task;
            suspects.delete(task);
            const w = waiting.get(task);
            if (w !== undefined) byToken.delete(w.token);
            waiting.delete(task);
            return;
          }
          case 'kvm_async_pf_task_wake': {
            if (!rec.found) return;
            const task = byToken.get(rec.token >>> 0);
            const w = task === undefined ? undefined : waiting.get(task);
            // The wake path wakes the task before it reports the wake: a wake-up the scheduler
            // delivered just before (sched_wakeup) was not lost, whatever the task does next.
            if (w !== undefined && w.found === undefined && w.woken !== true) w.found = { t: rec.t, cpu: rec.cpu };
            if (w !== undefined) w.woken = false;
            return;
          }
          case 'sched_switch': {
            const task = rec.prev;
            if (rec.prev_state !== 'uninterruptible') return;
            const w = waiting.get(task);
            if (w === undefined || w.found === undefined || suspects.has(task)) return;
            suspects.set(task, {
              t: rec.t,
              cpu: rec.cpu,
              message: `task ${task} went to sleep on token ${hex(w.token)} after the wake for it (cpu${w.found.cpu}, ${at(w.found.t)}) had already taken its node out of the table while the task was not yet asleep: that wake-up is lost (the wait must set its task state before it checks its node, and enable IRQs only after)`,
            });
            return;
          }
          case 'sched_wakeup': {
            // The wake-up reached the task (the scheduler reports only one that changed its state):
            // if the task sleeps on the same token again, that is not this race (hung-task says why).
            suspects.delete(rec.task);
            const w = waiting.get(rec.task);
            if (w !== undefined) {
              w.found = undefined;
              w.woken = true;
            }
            return;
          }
          default:
            return;
        }
      },
      finish() {
        for (const x of suspects.values()) report(x.t, x.cpu, x.message);
        for (const f of early.finish()) report(f.t ?? 0, f.cpu ?? -1, f.message);
      },
    };
  },
});
