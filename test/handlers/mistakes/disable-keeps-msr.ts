/** kvm_pv_disable_apf clears the enabled flag but never writes 0 to MSR_KVM_ASYNC_PF_EN */
import type { ApfHandlers } from '../../../guest/handlers';

export const description = 'kvm_pv_disable_apf clears the enabled flag but never writes 0 to MSR_KVM_ASYNC_PF_EN';
/** What a diagnosis of this mistake must name. */
export const rule = /disable|EN|offline/;

export const handlers: Partial<ApfHandlers> = {
  *disable(api) {
    if (!(yield* api.enabled())) return;
    yield* api.setEnabled(false);
    api.trace('kvm_pv_disable_apf');
  },
};
