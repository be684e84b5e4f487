/**
 * hung-task: no task stays blocked on an async page fault for ever. Fires on the guest's own
 * hung-task detector (`hung_task` records) and, at the end of the run, for every task still
 * waiting on a token for longer than `timeout`.
 */
import { Time } from '../scenario/scalars';
import { ABRUPT_OUTCOMES, at, defineChecker, dur, eventSet, hex, isKernelGone, KERNEL_GONE } from './types';

/** Default for the end-of-run check. */
export const HUNG_TASK_DEFAULT_TIMEOUT = 1_000_000_000;

export const hungTask = defineChecker({
  name: 'hung-task',
  description: 'no task blocked on an async page fault for good (hung-task detector, or still waiting at the end)',
  invariant:
    'No hung_task record; and at the end of a run that was not cut short, no task has been waiting on an APF token for longer than `timeout` (default 1s).',
  options: { timeout: Time.optional().meta({ description: 'How long a task may still be waiting at the end of the run (default 1s).' }) },
  events: eventSet(['kvm_async_pf_task_wait_schedule', 'kvm_async_pf_task_wait_halt', 'kvm_async_pf_task_woken', 'kvm_async_pf_dummy_consumed', 'task_exit', 'hung_task'], KERNEL_GONE),
  create(opts, report) {
    const timeout = opts.timeout ?? HUNG_TASK_DEFAULT_TIMEOUT;
    const waiting = new Map<string, { token: number; t: number; cpu: number }>();
    const reported = new Set<string>();
    return {
      onRecord(rec) {
        switch (rec.event) {
          case 'kvm_async_pf_task_wait_schedule':
          case 'kvm_async_pf_task_wait_halt': {
            waiting.set(rec.task, { token: rec.token, t: rec.t, cpu: rec.cpu });
            return;
          }
          case 'kvm_async_pf_task_woken':
          case 'kvm_async_pf_dummy_consumed':
          case 'task_exit': {
            waiting.delete(rec.task);
            return;
          }
          case 'hung_task': {
            reported.add(rec.task);
            report(rec.t, rec.cpu, `INFO: task ${rec.task} blocked for more than ${dur(rec.blocked_ns)} (guest hung-task detector)`);
            return;
          }
          default:
            if (rec.src === 'guest' && isKernelGone(rec.event)) waiting.clear();
        }
      },
      finish(end) {
        if (ABRUPT_OUTCOMES.has(end.outcome)) return;
        for (const [task, w] of waiting) {
          if (reported.has(task) || end.t - w.t < timeout) continue;
          report(
            end.t,
            w.cpu,
            `task ${task} still waits for token ${hex(w.token)} since ${at(w.t)} (${dur(end.t - w.t)}): its page-ready never came`,
          );
        }
      },
    };
  },
});
