/**
 * The host halves of the async-PF designs of issue 10 (shared-abi/designs.ts, docs/designs.md).
 * `current` never reaches these functions: x86/apf.ts and mmu.ts call them only for another design,
 * and only outside guest mode (a nested guest always gets the current protocol).
 *
 * - not-present: `notPresent` replaces "flags := 1; #PF(CR2 = token)".
 * - page-ready of a failed fault-in: `failedPresent` replaces the token + interrupt of `current`.
 * - the guest's retry of a failed page: `retryError` replaces the VMM's #MC (`retry_pf`).
 */
import { ASYNC_PF_IMPOSSIBLE_ERROR_CODE, KVM_PV_REASON_PAGE_ERROR, VE_VECTOR, type DesignName } from '../../shared-abi/designs';
import { KVM_PV_REASON_PAGE_NOT_PRESENT } from '../../shared-abi/apf';
import { PFEC_PRESENT, PFEC_USER, PFEC_WRITE } from '../../shared-abi/arch';
import { APF_FLAGS_OFFSET, APF_TOKEN_OFFSET } from '../../shared-abi/layout';
import { PF_VECTOR, X86_EXCEPTION } from '../../shared-abi/vectors';
import type { KvmVcpu } from '../kvm';
import { recordSrao } from './mce';


/** Writes into the APF area go through the caller's checked accessor. */
export type ApfWriter = (offset: number, value: number, field: 'flags' | 'token') => boolean;

/**
 * "Page not present" of a non-current design. Returns whether it was delivered.
 * - error_code: no flags write; #PF with error code 0xaaaa and CR2 = token.
 * - ve: the token goes into the #VE information word (the APF `flags` word here), then #VE.
 * - mc, retry_pf, error_flag: as current (flags := 1, #PF(token)).
 */
export function notPresent(v: KvmVcpu, design: DesignName, token: number, write: ApfWriter): boolean {
  switch (design) {
    case 'error_code':
      v.queueException({ vector: PF_VECTOR, errorCode: ASYNC_PF_IMPOSSIBLE_ERROR_CODE, cr2: token, async: true });
      return true;
    case 've':
      if (!write(APF_FLAGS_OFFSET, token, 'flags')) return false;
      v.queueException({ vector: VE_VECTOR, async: true });
      return true;
    default:
      if (!write(APF_FLAGS_OFFSET, KVM_PV_REASON_PAGE_NOT_PRESENT, 'flags')) return false;
      v.queueException({ vector: PF_VECTOR, errorCode: 0, cr2: token, async: true });
      return true;
  }
}

/**
 * Page-ready for a work item whose fault-in failed. Returns true when the design handled it (the
 * caller then sends nothing); false to send the ordinary page-ready.
 * - error_flag: flags |= PAGE_ERROR next to the token, then the ordinary interrupt.
 * - mc: the token goes into the slot and an action-optional #MC (bank 0, no EIPV) replaces the interrupt.
 */
export function failedPresent(v: KvmVcpu, design: DesignName, token: number, gpa: number, write: ApfWriter): boolean {
  if (design === 'error_flag') {
    write(APF_FLAGS_OFFSET, KVM_PV_REASON_PAGE_ERROR, 'flags');
    v.trace('kvm_async_pf_design', { design, token, what: 'page_ready_error_flag' });
    return false;
  }
  if (design === 'mc') {
    if (!write(APF_TOKEN_OFFSET, token, 'token')) return true;
    v.apf.pageReadyPending = true;
    v.trace('kvm_async_pf_design', { design, token, what: 'mce_for_token' });
    recordSrao(v, gpa);
    v.queueException({ vector: X86_EXCEPTION.MC });
    return true;
  }
  return false;
}

/**
 * retry_pf: the retry of a failed page gets a real #PF at the faulting linear address (present,
 * user/write as the access), instead of the VMM's #MC. Needs the GLA of the EPT violation; without
 * one (a page-walk access) it returns false and the caller injects #MC as usual.
 */
export function retryError(v: KvmVcpu, gva: number | null, write: boolean): boolean {
  if (gva === null) return false;
  // Architectural #PF error code bits (not KVM's synthesised EPT ones).
  const ec = PFEC_PRESENT | (write ? PFEC_WRITE : 0) | (v.cpu.cpl === 3 ? PFEC_USER : 0);
  v.trace('kvm_async_pf_design', { design: 'retry_pf', token: 0, what: 'real_pf' });
  v.queueException({ vector: PF_VECTOR, errorCode: ec, cr2: gva });
  return true;
}
