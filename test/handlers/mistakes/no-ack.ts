/** the page-ready handler never writes MSR_KVM_ASYNC_PF_ACK */
import type { ApfHandlers } from '../../../guest/handlers';
export const description = 'the page-ready handler never writes MSR_KVM_ASYNC_PF_ACK';
/** What a diagnosis of this mistake must name. */
export const rule = /ACK/;

export const handlers: Partial<ApfHandlers> = {
  *pageReady(api) {
    if (api.toggles.page_ready_eoi) yield* api.eoi();
    if (!(yield* api.enabled())) return;
    const token = yield* api.apfLoad('token');
    api.trace('sysvec_kvm_asyncpf_interrupt', { token });
    yield* api.handlers.wake(api, token);
    api.trace('apf_token_clear', { token });
    yield* api.apfStore('token', 0);
  },
};
