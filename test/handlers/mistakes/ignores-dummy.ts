/** the wait never looks for a dummy node left by an earlier wake */
import type { ApfHandlers } from '../../../guest/handlers';

export const description = 'the wait never looks for a dummy node left by an earlier wake';
/** What a diagnosis of this mistake must name. */
export const rule = /dummy|woken|wake/;

export const handlers: Partial<ApfHandlers> = {
  *wait(api, token) {
    const b = api.bucket(token);
    yield* api.lockBucket(b);
    const n = api.newWaiterNode(token, false);
    api.sleepers.add(n);
    yield* api.unlockBucket(b);
    api.trace('kvm_async_pf_task_wait_schedule', { token, task: api.task().name });
    for (;;) {
      api.prepareToWait(n);
      if (!n.linked) break;
      yield* api.sti();
      yield* api.schedule();
      yield* api.cli();
    }
    api.finishWait(n);
    api.trace('kvm_async_pf_task_woken', { token, task: api.task().name, waited_ns: 0 });
  },
};
