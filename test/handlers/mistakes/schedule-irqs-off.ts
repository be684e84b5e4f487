/** the wait calls schedule() with IRQs still disabled */
import type { ApfHandlers } from '../../../guest/handlers';

export const description = 'the wait calls schedule() with IRQs still disabled';
/** What a diagnosis of this mistake must name. */
export const rule = /invalid context|IRQs off/;

export const handlers: Partial<ApfHandlers> = {
  *wait(api, token) {
    const b = api.bucket(token);
    yield* api.lockBucket(b);
    const e = api.sleepers.find(token);
    if (e !== undefined) {
      api.sleepers.unlink(e);
      yield* api.unlockBucket(b);
      api.freeDummy(e, 'consumed');
      api.trace('kvm_async_pf_dummy_consumed', { token, task: api.task().name });
      return;
    }
    const n = api.newWaiterNode(token, false);
    api.sleepers.add(n);
    yield* api.unlockBucket(b);
    api.trace('kvm_async_pf_task_wait_schedule', { token, task: api.task().name });
    for (;;) {
      api.prepareToWait(n);
      if (!n.linked) break;
      yield* api.schedule();
    }
    api.finishWait(n);
    api.trace('kvm_async_pf_task_woken', { token, task: api.task().name, waited_ns: 0 });
  },
};
