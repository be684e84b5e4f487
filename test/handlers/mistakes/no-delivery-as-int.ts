/** kvm_guest_cpu_init leaves KVM_ASYNC_PF_DELIVERY_AS_INT out of MSR_KVM_ASYNC_PF_EN */
import type { ApfHandlers } from '../../../guest/handlers';
import { KVM_ASYNC_PF_ENABLED, MSR_KVM_ASYNC_PF_EN, MSR_KVM_ASYNC_PF_INT } from '../../../shared-abi/msr';
import { HYPERVISOR_CALLBACK_VECTOR } from '../../../shared-abi/vectors';
export const description = 'kvm_guest_cpu_init leaves KVM_ASYNC_PF_DELIVERY_AS_INT out of MSR_KVM_ASYNC_PF_EN';
/** What a diagnosis of this mistake must name. */
export const rule = /DELIVERY_AS_INT/;

export const handlers: Partial<ApfHandlers> = {
  *cpuInit(api) {
    if (!api.toggles.kvmapf || !api.hasFeature(api.config.facts.requiredFeature)) return;
    const en = BigInt(api.apfAreaGpa()) | KVM_ASYNC_PF_ENABLED;
    yield* api.wrmsr(MSR_KVM_ASYNC_PF_EN, en);
    yield* api.wrmsr(MSR_KVM_ASYNC_PF_INT, BigInt(HYPERVISOR_CALLBACK_VECTOR));
    yield* api.setEnabled(true);
    api.trace('kvm_guest_cpu_init', { msr_en: en, vector: HYPERVISOR_CALLBACK_VECTOR, send_always: false });
  },
};
