/** apf_task_wake_one wakes the sleeper but leaves its node in the table */
import type { ApfHandlers } from '../../../guest/handlers';

export const description = 'apf_task_wake_one wakes the sleeper but leaves its node in the table';
/** What a diagnosis of this mistake must name. */
export const rule = /unlink|not woken|woken/;

export const handlers: Partial<ApfHandlers> = {
  *wakeOne(api, n) {
    if (n.sleeper !== null) yield* api.wakeSleeper(n);
  },
};
