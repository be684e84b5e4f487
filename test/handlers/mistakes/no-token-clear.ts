/** the page-ready handler wakes and ACKs but never writes 0 to the token slot */
import type { ApfHandlers } from '../../../guest/handlers';
import { MSR_KVM_ASYNC_PF_ACK } from '../../../shared-abi/msr';
export const description = 'the page-ready handler wakes and ACKs but never writes 0 to the token slot';
/** What a diagnosis of this mistake must name. */
export const rule = /token slot/;

export const handlers: Partial<ApfHandlers> = {
  *pageReady(api) {
    if (api.toggles.page_ready_eoi) yield* api.eoi();
    if (!(yield* api.enabled())) return;
    const token = yield* api.apfLoad('token');
    api.trace('sysvec_kvm_asyncpf_interrupt', { token });
    yield* api.handlers.wake(api, token);
    api.trace('apf_ack');
    yield* api.wrmsr(MSR_KVM_ASYNC_PF_ACK, 1n);
  },
};
