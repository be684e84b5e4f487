/**
 * hung-task: no task stays blocked on an async page fault for ever. Fires on the guest's own
 * hung-task detector (`hung_task` records) and, at the end of the run, for every task still
 * waiting on a token for longer than `timeout`.
 */
import { KVM_APF_WAKE_ALL_TOKEN as WAKE_ALL, sleeperBucket } from '../../shared-abi/apf';
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
  events: eventSet(['kvm_async_pf_task_wait_schedule', 'kvm_async_pf_task_wait_halt', 'kvm_async_pf_task_woken', 'kvm_async_pf_dummy_consumed', 'task_exit', 'hung_task', 'kvm_async_pf_task_wake', 'kvm_async_pf_ready', 'apf_task_wake_all'], KERNEL_GONE),
  create(opts, report) {
    const timeout = opts.timeout ?? HUNG_TASK_DEFAULT_TIMEOUT;
    const waiting = new Map<string, { token: number; t: number; cpu: number }>();
    const reported = new Set<string>();
    /** token -> the guest's wakes for it and the host's page-readies, in order. */
    const wakes = new Map<number, { t: number; found: boolean; dummy: boolean }[]>();
    const readies = new Map<number, number[]>();
    /** cpu -> times of the guest's apf_task_wake_all there. */
    const wakeAlls = new Map<number, number[]>();
    /** Why a task waiting on `token` since `since` is still asleep, from what happened to the token. */
    const why = (task: string, token: number, since: number, cpu: number): string => {
      const tok = hex(token);
      const b = sleeperBucket(token >>> 0);
      const w = wakes.get(token >>> 0) ?? [];
      const after = w.filter((x) => x.t >= since);
      const before = w.filter((x) => x.t < since);
      const foundAfter = after.find((x) => x.found);
      if (foundAfter !== undefined) {
        return `the wake for ${tok} at ${at(foundAfter.t)} found its node but ${task} was not woken: the wake must unlink the node and wake its sleeper (the waiter sleeps until its node is unhashed)`;
      }
      const missAfter = after[0];
      if (missAfter !== undefined) {
        return `task ${task} slept on token ${tok} in bucket ${b}; the wake for ${tok} at ${at(missAfter.t)} looked in bucket ${b} and found no waiter${missAfter.dummy ? ' (it left a dummy node instead)' : ''}: the waiter's node was not in the table where the wake looks, or was taken out before the wake`;
      }
      const asToken = (wakes.get(WAKE_ALL) ?? []).find((x) => x.t >= since);
      if (asToken !== undefined) {
        return `the host's wake-all (token 0xffffffff) at ${at(asToken.t)} was handled like an ordinary token (the wake looked for a waiter on 0xffffffff) instead of waking every waiter of the CPU`;
      }
      const all = (wakeAlls.get(cpu) ?? []).find((t) => t >= since);
      if (all !== undefined) {
        return `a wake-all ran on cpu${cpu} at ${at(all)}, after ${task} went to sleep, and did not wake it: the wake-all must unlink each of the CPU's nodes and wake its sleeper`;
      }
      const dummyBefore = before.find((x) => x.dummy);
      if (dummyBefore !== undefined) {
        return `the wake for ${tok} came first (at ${at(dummyBefore.t)}) and left a dummy node; the wait that followed did not consume it and slept anyway`;
      }
      const lostBefore = before[0];
      if (lostBefore !== undefined) {
        return `the wake for ${tok} came first (at ${at(lostBefore.t)}) and left no dummy node: the wait that followed could not know the page was ready (a wake that finds no waiter must leave a dummy)`;
      }
      const r = (readies.get(token >>> 0) ?? [])[0];
      if (r !== undefined) return `the host posted the page-ready for ${tok} at ${at(r)}, but the guest never ran the wake for it (the interrupt was lost on the way, or the page-ready handler skipped the wake)`;
      return 'its page-ready never came';
    };
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
          case 'kvm_async_pf_task_wake': {
            const tok = rec.token >>> 0;
            const list = wakes.get(tok) ?? [];
            list.push({ t: rec.t, found: rec.found, dummy: rec.dummy });
            wakes.set(tok, list);
            return;
          }
          case 'apf_task_wake_all': {
            const list = wakeAlls.get(rec.cpu) ?? [];
            list.push(rec.t);
            wakeAlls.set(rec.cpu, list);
            return;
          }
          case 'kvm_async_pf_ready': {
            const tok = rec.token >>> 0;
            const list = readies.get(tok) ?? [];
            list.push(rec.t);
            readies.set(tok, list);
            return;
          }
          case 'hung_task': {
            reported.add(rec.task);
            const w = waiting.get(rec.task);
            const reason = w === undefined ? '' : ` waiting for token ${hex(w.token)}: ${why(rec.task, w.token, w.t, w.cpu)}`;
            report(rec.t, rec.cpu, `INFO: task ${rec.task} blocked for more than ${dur(rec.blocked_ns)} (guest hung-task detector)${reason}`);
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
            `task ${task} still waits for token ${hex(w.token)} since ${at(w.t)} (${dur(end.t - w.t)}): ${why(task, w.token, w.t, w.cpu)}`,
          );
        }
      },
    };
  },
});
