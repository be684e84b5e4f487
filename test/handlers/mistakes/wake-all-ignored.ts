/** the wake treats the wake-all token 0xffffffff like any other token */
import type { ApfHandlers } from '../../../guest/handlers';

export const description = 'the wake treats the wake-all token 0xffffffff like any other token';
/** What a diagnosis of this mistake must name. */
export const rule = /wake-all|0xffffffff/;

export const handlers: Partial<ApfHandlers> = {
  *wake(api, token) {
    const b = api.bucket(token);
    yield* api.lockBucket(b);
    const n = api.sleepers.find(token);
    if (n !== undefined) {
      yield* api.handlers.wakeOne(api, n);
      yield* api.unlockBucket(b);
      api.trace('kvm_async_pf_task_wake', { token, found: true, dummy: false });
      return;
    }
    yield* api.allocDummy();
    api.sleepers.add(api.newDummyNode(token));
    yield* api.unlockBucket(b);
    api.trace('kvm_async_pf_task_wake', { token, found: false, dummy: true });
  },
};
