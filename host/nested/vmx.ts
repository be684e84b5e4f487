/**
 * Nested VMX in L0, reduced to what the async-PF model needs (arch/x86/kvm/vmx/nested.c):
 *
 * - emulation of L1's VMLAUNCH/VMRESUME (`nested_vmx_run`): map the pages the vmcs12 points to
 *   (`nested_get_vmcs12_pages`: the MSR bitmap and the virtual-APIC page), then enter L2;
 * - reflection to L1 of what L1 must handle: an L2 HLT, and L1's own interrupts and NMIs that
 *   arrive while L2 runs (external-interrupt and NMI exiting); the async #PF is reflected by the
 *   injection code of host/x86/run.ts (`kvm_nested_apf_vmexit`);
 * - KVM_REQ_GET_NESTED_STATE_PAGES: after KVM_SET_NESTED_STATE restored a vCPU in guest mode
 *   without touching guest memory, the pages are mapped at the first KVM_RUN (the two-step
 *   restore, docs/nested.md).
 *
 * A nested state page that is not resident is brought in by the vCPU thread before it can enter
 * L2. After a post-copy migration (host/nested/migrate.ts) the page is still on the source and the
 * demand pager decides how (the vCPU exits to ask for it, or blocks on the userfaultfd listener);
 * otherwise it is an ordinary blocking fault-in (swap).
 */
import { PAGE_SIZE } from '../../shared-abi/addr';
import type { NestedVmexit, Vmcs12 } from '../../shared-abi/arch';
import type { VmExit } from '../../sim/cpu/vcpu';
import type { Kvm, KvmVcpu } from '../kvm';

// Bound once (docs/performance.md).
const { floor } = Math;

/** What each entry of `Vmcs12.pages` is, by index. */
export const NESTED_PAGE_KINDS = ['msr_bitmap', 'virtual_apic'] as const;

/** The name of nested state page `i` (for traces and messages). */
export const nestedPageKind = (i: number): string => NESTED_PAGE_KINDS[i] ?? `page${i}`;

/**
 * How a remote page is brought in for a vCPU that needs it inside KVM_RUN. Registered by the
 * post-copy demand pager for the pages it serves; `done(ok)` is called when the page is in (or the
 * fetch failed). The vCPU is stalled by the caller meanwhile.
 */
export interface NestedPageFetcher {
  /** Whether this pager serves `gfn` (it is still on the migration source). */
  covers(gfn: number): boolean;
  /** The page's name for traces (e.g. "msr_bitmap of l2a"), else `fallback`. */
  nameOf(gfn: number, fallback: string): string;
  fetchForRun(v: KvmVcpu, gfn: number, what: string, done: (ok: boolean) => void): void;
}

const fetchers = new WeakMap<Kvm, NestedPageFetcher>();

/** Install the post-copy demand pager of a VM (host/nested/migrate.ts). */
export function setNestedPageFetcher(kvm: Kvm, f: NestedPageFetcher): void {
  fetchers.set(kvm, f);
}

/** Outcome of mapping the nested state pages from the vCPU thread. */
type MapResult = { readonly kind: 'ok' } | { readonly kind: 'wait' } | { readonly kind: 'fail'; readonly gfn: number; readonly what: string };

/**
 * kvm_vcpu_map of every page the vmcs12 points to, from the vCPU thread (KVM_RUN): resident pages
 * are mapped; the first one that is not makes the vCPU wait for it (`wait`; the caller retries when
 * the vCPU runs again); a page whose fault-in failed is an error (`fail`).
 */
function mapNestedPages(v: KvmVcpu, vmcs: Vmcs12): MapResult {
  const hostMem = v.kvm.hostMem;
  const pager = fetchers.get(v.kvm);
  for (let i = 0; i < vmcs.pages.length; i++) {
    const gfn = floor(vmcs.pages[i]! / PAGE_SIZE);
    const what = pager === undefined ? nestedPageKind(i) : pager.nameOf(gfn, nestedPageKind(i));
    const look = hostMem.lookupNoWait(gfn);
    if (look === 'resident') continue;
    if (look === 'error') return { kind: 'fail', gfn, what };
    v.stall();
    const done = (): void => v.unstall();
    if (pager !== undefined && pager.covers(gfn)) {
      pager.fetchForRun(v, gfn, what, done);
    } else {
      // An ordinary blocking fault-in (get_user_pages from the vCPU thread); the retry sees the result.
      hostMem.pageIn(gfn, 'sync', 'host', v.id, done);
    }
    return { kind: 'wait' };
  }
  return { kind: 'ok' };
}

/**
 * A nested VM entry or KVM_REQ_GET_NESTED_STATE_PAGES could not map a page (its fault-in failed):
 * KVM_EXIT_INTERNAL_ERROR. The nested state is half loaded; all the VMM can do is kill the VM.
 */
function internalError(v: KvmVcpu, gfn: number, what: string): void {
  v.trace('kvm_nested_internal_error', { gfn, page: what });
  v.kvm.destroyVm();
}

/**
 * Handle a `vmenter` exit (L1 executed VMLAUNCH/VMRESUME): nested_vmx_run. When a nested state
 * page has to be brought in first, the instruction is not completed and runs again afterwards.
 */
export function handleVmenter(v: KvmVcpu, exit: Extract<VmExit, { reason: 'vmenter' }>): void {
  const cpu = v.cpu;
  const r = mapNestedPages(v, exit.vmcs);
  if (r.kind !== 'ok') {
    cpu.abandonExit();
    if (r.kind === 'fail') internalError(v, r.gfn, r.what);
    return;
  }
  v.trace('kvm_nested_vmenter', { vmcs12: exit.vmcs.gpa, launch: exit.launch, cpl: exit.vmcs.guest.cpl });
  cpu.enterGuestMode(exit.vmcs);
}

/**
 * KVM_REQ_GET_NESTED_STATE_PAGES at a VM entry (the second step of the two-step restore). Returns
 * true when the vCPU may go on into L2, false when it waits (the request stays pending) or the VM
 * died.
 */
export function getNestedStatePages(v: KvmVcpu): boolean {
  const vmcs = v.cpu.currentVmcs;
  if (vmcs === null) {
    // Left guest mode meanwhile (a nested VM-exit clears the request in KVM).
    v.requests.delete('get_nested_state_pages');
    return true;
  }
  const r = mapNestedPages(v, vmcs);
  if (r.kind === 'wait') return false;
  v.requests.delete('get_nested_state_pages');
  if (r.kind === 'fail') {
    v.trace('kvm_get_nested_state_pages', { ok: false, gfn: r.gfn, page: r.what });
    internalError(v, r.gfn, r.what);
    return false;
  }
  v.trace('kvm_get_nested_state_pages', { ok: true, gfn: -1, page: '' });
  return true;
}

/**
 * Reflect an exit to L1 (nested_vmx_vmexit): an L2 HLT, or an interrupt / NMI for L1 that arrived
 * while L2 ran. The interrupt is not acknowledged: it stays pending and L1 takes it when it enables
 * interrupts; the NMI stays pending and is delivered to L1 right after the exit.
 */
export function reflectToL1(v: KvmVcpu, exit: NestedVmexit): void {
  v.stats.nestedVmexits++;
  v.requests.delete('get_nested_state_pages');
  v.trace('kvm_nested_vmexit_inject', { reason: exit.reason, vector: exit.vector });
  v.cpu.nestedVmexit(exit);
}

/** The nested-exit records for interrupts, NMIs and HLT. */
export const NESTED_EXIT = {
  interrupt: (vector: number): NestedVmexit => ({ reason: 'external_interrupt', vector, errorCode: 0, exitQualification: 0 }),
  nmi: (): NestedVmexit => ({ reason: 'nmi', vector: 2, errorCode: 0, exitQualification: 0 }),
  hlt: (): NestedVmexit => ({ reason: 'hlt', vector: -1, errorCode: 0, exitQualification: 0 }),
} as const;
