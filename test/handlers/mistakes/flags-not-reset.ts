/** kvm_read_and_reset_apf_flags reads the flags but never writes 0 back */
import type { ApfHandlers } from '../../../guest/handlers';

export const description = 'kvm_read_and_reset_apf_flags reads the flags but never writes 0 back';
/** What a diagnosis of this mistake must name. */
export const rule = /flags/;

export const handlers: Partial<ApfHandlers> = {
  *readAndResetFlags(api) {
    if (!(yield* api.enabled())) return 0;
    const flags = yield* api.apfLoad('flags');
    api.trace('kvm_read_and_reset_apf_flags', { flags });
    return flags;
  },
};
