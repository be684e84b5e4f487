/** the wake returns without unlocking the bucket when it found the waiter */
import type { ApfHandlers } from '../../../guest/handlers';
import { KVM_APF_WAKE_ALL_TOKEN } from '../../../shared-abi/apf';
export const description = 'the wake returns without unlocking the bucket when it found the waiter';
/** What a diagnosis of this mistake must name. */
export const rule = /still holding|lock/;

export const handlers: Partial<ApfHandlers> = {
  *wake(api, token) {
    if (token >>> 0 === KVM_APF_WAKE_ALL_TOKEN) {
      yield* api.handlers.wakeAll(api);
      return;
    }
    const b = api.bucket(token);
    yield* api.lockBucket(b);
    const n = api.sleepers.find(token);
    if (n !== undefined) {
      yield* api.handlers.wakeOne(api, n);
      api.trace('kvm_async_pf_task_wake', { token, found: true, dummy: false });
      return;
    }
    yield* api.allocDummy();
    api.sleepers.add(api.newDummyNode(token));
    yield* api.unlockBucket(b);
    api.trace('kvm_async_pf_task_wake', { token, found: false, dummy: true });
  },
};
