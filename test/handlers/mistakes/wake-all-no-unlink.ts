/** apf_task_wake_all wakes the sleepers but leaves their nodes in the table */
import type { ApfHandlers } from '../../../guest/handlers';

export const description = 'apf_task_wake_all wakes the sleepers but leaves their nodes in the table';
/** What a diagnosis of this mistake must name. */
export const rule = /unlink|wake-all|woken/;

export const handlers: Partial<ApfHandlers> = {
  *wakeAll(api) {
    const me = api.cpu();
    for (const b of api.sleepers.buckets) {
      yield* api.lockBucket(b);
      for (const n of [...b.nodes]) {
        if (n.cpu !== me || n.sleeper === null) continue;
        yield* api.wakeSleeper(n);
      }
      yield* api.unlockBucket(b);
    }
    api.trace('apf_task_wake_all', { woken: 0, dummies_leaked: 0 });
  },
};
