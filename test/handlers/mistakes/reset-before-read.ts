/** kvm_read_and_reset_apf_flags clears the flags before it reads them */
import type { ApfHandlers } from '../../../guest/handlers';

export const description = 'kvm_read_and_reset_apf_flags clears the flags before it reads them';
/** What a diagnosis of this mistake must name. */
export const rule = /flags/;

export const handlers: Partial<ApfHandlers> = {
  *readAndResetFlags(api) {
    if (!(yield* api.enabled())) return 0;
    yield* api.apfStore('flags', 0);
    const flags = yield* api.apfLoad('flags');
    api.trace('kvm_read_and_reset_apf_flags', { flags });
    return flags;
  },
};
