/** kvm_guest_cpu_init enables APF in the MSR but never sets the per-CPU enabled flag */
import type { ApfHandlers } from '../../../guest/handlers';

export const description = 'kvm_guest_cpu_init enables APF in the MSR but never sets the per-CPU enabled flag';
/** What a diagnosis of this mistake must name. */
export const rule = /enabled/;

export const handlers: Partial<ApfHandlers> = {
  *cpuInit(api) {
    yield* api.defaults.cpuInit(api);
    // BUG: the flag the page-ready handler and the #PF hook test is cleared again.
    yield* api.setEnabled(false);
  },
};
