/** the wake leaves no dummy node when it finds no waiter (the fuzzer's no-dummy canary) */
import type { ApfHandlers } from '../../../guest/handlers';
import { canaryByName } from '../../../harness/fuzz/canaries';
export const description = 'the wake leaves no dummy node when it finds no waiter';
/** What a diagnosis of this mistake must name. */
export const rule = /lost|dummy|wake/;

export const handlers: Partial<ApfHandlers> = canaryByName('no-dummy').handlers;
