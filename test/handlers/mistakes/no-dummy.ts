/** the wake leaves no dummy node when it finds no waiter */
import type { ApfHandlers } from '../../../guest/handlers';
import { KVM_APF_WAKE_ALL_TOKEN } from '../../../shared-abi/apf';
export const description = 'the wake leaves no dummy node when it finds no waiter';
/** What a diagnosis of this mistake must name. */
export const rule = /lost|dummy|wake/;

export const handlers: Partial<ApfHandlers> = {
  *wake(api, token) {
    if (token >>> 0 === KVM_APF_WAKE_ALL_TOKEN) {
      yield* api.handlers.wakeAll(api);
      return;
    }
    const b = api.bucket(token);
    yield* api.lockBucket(b);
    const n = api.sleepers.find(token);
    if (n !== undefined) yield* api.handlers.wakeOne(api, n);
    yield* api.unlockBucket(b);
    api.trace('kvm_async_pf_task_wake', { token, found: n !== undefined, dummy: false });
  },
};
