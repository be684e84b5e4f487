/** the wait sleeps on the page number of CR2 (token >> 12) instead of the token itself */
import type { ApfHandlers } from '../../../guest/handlers';

export const description = 'the wait sleeps on the page number of CR2 (token >> 12) instead of the token itself';
/** What a diagnosis of this mistake must name. */
export const rule = /token/;

export const handlers: Partial<ApfHandlers> = {
  *wait(api, token, tf) {
    yield* api.defaults.wait(api, token >>> 12, tf);
  },
};
