/** the page-ready handler forgets the EOI */
import type { ApfHandlers } from '../../../guest/handlers';
import { MSR_KVM_ASYNC_PF_ACK } from '../../../shared-abi/msr';
export const description = 'the page-ready handler forgets the EOI';
/** What a diagnosis of this mistake must name. */
export const rule = /EOI/;

export const handlers: Partial<ApfHandlers> = {
  *pageReady(api) {
    if (!(yield* api.enabled())) return;
    const token = yield* api.apfLoad('token');
    api.trace('sysvec_kvm_asyncpf_interrupt', { token });
    yield* api.handlers.wake(api, token);
    api.trace('apf_token_clear', { token });
    yield* api.apfStore('token', 0);
    api.trace('apf_ack');
    yield* api.wrmsr(MSR_KVM_ASYNC_PF_ACK, 1n);
  },
};
