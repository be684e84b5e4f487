/** the async #PF hook reads CR2 after the flags instead of at entry */
import type { ApfHandlers } from '../../../guest/handlers';

export const description = 'the async #PF hook reads CR2 after the flags instead of at entry';
/** What a diagnosis of this mistake must name. */
export const rule = /token|CR2/;

export const handlers: Partial<ApfHandlers> = {
  *pfHook(api, tf, _cr2) {
    return yield* api.defaults.pfHook(api, tf, null);
  },
};
