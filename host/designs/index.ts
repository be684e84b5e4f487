/**
 * The host halves of the async-PF designs (shared-abi/designs.ts, docs/designs.md), one strategy
 * object per design, chosen once when the VM is created (`Kvm.design`). Each hook replaces one
 * step of the current protocol; a design without the hook keeps the current step, and `current`
 * has none. x86/apf.ts and mmu.ts call the hooks only outside guest mode (a nested guest always
 * gets the current protocol).
 *
 * - `notPresent` replaces "flags := 1; #PF(CR2 = token)".
 * - `failedPresent` replaces the token + interrupt of the page-ready of a failed fault-in.
 * - `retryError` replaces the VMM's #MC on the guest's retry of a failed page.
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

/** The host half of one design. */
export interface HostDesign {
  readonly name: DesignName;
  /** "Page not present" instead of the current protocol's; returns whether it was delivered. */
  readonly notPresent?: (v: KvmVcpu, token: number, write: ApfWriter) => boolean;
  /**
   * Page-ready for a work item whose fault-in failed: true when the design handled it (the caller
   * then sends nothing); false to send the ordinary page-ready.
   */
  readonly failedPresent?: (v: KvmVcpu, token: number, gpa: number, write: ApfWriter) => boolean;
  /** The guest's retry of a failed page: true when the design reported the error (no #MC then). */
  readonly retryError?: (v: KvmVcpu, gva: number | null, write: boolean) => boolean;
}

/** flags := 1, then #PF(CR2 = token) with error code 0 (as current, for designs that keep it). */
function pfNotPresent(v: KvmVcpu, token: number, write: ApfWriter): boolean {
  if (!write(APF_FLAGS_OFFSET, KVM_PV_REASON_PAGE_NOT_PRESENT, 'flags')) return false;
  v.queueException({ vector: PF_VECTOR, errorCode: 0, cr2: token, async: true });
  return true;
}

const DESIGNS: { readonly [D in DesignName]: HostDesign & { readonly name: D } } = {
  current: { name: 'current' },
  // No flags write; #PF with the impossible error code 0xaaaa and CR2 = token.
  error_code: {
    name: 'error_code',
    notPresent(v, token) {
      v.queueException({ vector: PF_VECTOR, errorCode: ASYNC_PF_IMPOSSIBLE_ERROR_CODE, cr2: token, async: true });
      return true;
    },
  },
  // The token goes into the #VE information word (the APF `flags` word here), then #VE.
  ve: {
    name: 've',
    notPresent(v, token, write) {
      if (!write(APF_FLAGS_OFFSET, token, 'flags')) return false;
      v.queueException({ vector: VE_VECTOR, async: true });
      return true;
    },
  },
  // flags |= PAGE_ERROR next to the token, then the ordinary interrupt.
  error_flag: {
    name: 'error_flag',
    notPresent: pfNotPresent,
    failedPresent(v, token, _gpa, write) {
      write(APF_FLAGS_OFFSET, KVM_PV_REASON_PAGE_ERROR, 'flags');
      v.trace('kvm_async_pf_design', { design: 'error_flag', token, what: 'page_ready_error_flag' });
      return false;
    },
  },
  // The token goes into the slot and an action-optional #MC (bank 0, no EIPV) replaces the interrupt.
  mc: {
    name: 'mc',
    notPresent: pfNotPresent,
    failedPresent(v, token, gpa, write) {
      if (!write(APF_TOKEN_OFFSET, token, 'token')) return true;
      v.apf.pageReadyPending = true;
      v.trace('kvm_async_pf_design', { design: 'mc', token, what: 'mce_for_token' });
      recordSrao(v, gpa);
      v.queueException({ vector: X86_EXCEPTION.MC });
      return true;
    },
  },
  // The retry of a failed page gets a real #PF at the faulting linear address (present, user/write
  // as the access) instead of the VMM's #MC. Needs the GLA of the EPT violation; without one (a
  // page-walk access) the caller injects #MC as usual.
  retry_pf: {
    name: 'retry_pf',
    notPresent: pfNotPresent,
    retryError(v, gva, write) {
      if (gva === null) return false;
      // Architectural #PF error code bits (not KVM's synthesised EPT ones).
      const ec = PFEC_PRESENT | (write ? PFEC_WRITE : 0) | (v.cpu.cpl === 3 ? PFEC_USER : 0);
      v.trace('kvm_async_pf_design', { design: 'retry_pf', token: 0, what: 'real_pf' });
      v.queueException({ vector: PF_VECTOR, errorCode: ec, cr2: gva });
      return true;
    },
  },
};

/** The host half of `name`. */
export function hostDesign(name: DesignName): HostDesign {
  return DESIGNS[name];
}
