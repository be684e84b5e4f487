/**
 * The host fault path for guest frames that are not resident (__kvm_mmu_faultin_pfn and
 * kvm_arch_setup_async_pf, spec §3.5–§3.6): decide between async (#PF "not present" or an
 * artificial halt), a repeated fault (halt), and a synchronous fault-in that blocks the vCPU.
 *
 * The model is TDP (EPT/NPT): `cr2_or_gpa` is the guest-physical address of the access, work
 * items are `direct_map`, and the retried instruction re-executes after the fault is resolved.
 */
import { PAGE_SIZE } from '../shared-abi/addr';
import { VEC_MC } from '../sim/cpu/exceptions';
import type { VmExit } from '../sim/cpu/vcpu';
import type { KvmVcpu } from './kvm';
import { archSetupAsyncPf, canDoAsyncPf } from './x86/apf';
import { recordSrar } from './designs/mce';

/** Synthesised EPT-violation error code bits (KVM's PFERR_*). */
export const PFERR_WRITE = 2;
export const PFERR_GUEST_FINAL = 2 ** 32;
export const PFERR_GUEST_PAGE = 2 ** 33;

type EptViolation = Extract<VmExit, { reason: 'ept_violation' }>;

/** Why a fault was resolved synchronously (the `why` of `kvm_async_pf_sync`). */
export type SyncWhy = 'prefetch' | 'cannot_do' | 'queue_full' | 'alloc_fail' | 'reinjection' | 'private';

/** What the fault path decided (for tests and counters). */
export type FaultOutcome = 'spurious' | 'error' | 'async' | 'repeated' | SyncWhy;

/** Handle an EPT violation exit for a guest frame. The faulting instruction is retried afterwards. */
export function handleEptViolation(v: KvmVcpu, exit: EptViolation): FaultOutcome {
  const gpa = exit.gpa;
  const gfn = Math.floor(gpa / PAGE_SIZE);
  const errorCode = (exit.write ? PFERR_WRITE : 0) + (exit.walk ? PFERR_GUEST_PAGE : PFERR_GUEST_FINAL);
  v.stats.eptViolations++;
  v.trace('kvm_page_fault', { fault_address: gpa, error_code: errorCode, gva: exit.gva ?? 0 });
  // RET_PF_RETRY (or the re-execution after a synchronous fault-in): the instruction is not completed.
  v.cpu.abandonExit();
  // A page-table page the walk needed stays resident once in (never an LRU victim).
  if (exit.walk) v.kvm.hostMem.pin(gfn);
  // Running a nested guest, cr2_or_gpa is L2's guest-physical address (EPT02); the gfn is L1's.
  const cr2OrGpa = v.cpu.currentVmcs !== null && exit.gva !== null ? exit.gva : gpa;
  // A design may report a failed page's retry itself (retry_pf: a real #PF instead of #MC; host/designs).
  const retryError = v.kvm.design.retryError;
  if (retryError !== undefined && !v.cpu.guestMode && v.kvm.hostMem.lookupNoWait(gfn) === 'error' && retryError(v, exit.gva, exit.write)) return 'error';
  return faultinPfn(v, cr2OrGpa, gfn, errorCode, false);
}

/**
 * __kvm_mmu_faultin_pfn (spec §3.5): non-blocking lookup, then async if allowed, else a blocking
 * fault-in. `cr2OrGpa` is what the tracepoints call `gva`.
 */
export function faultinPfn(v: KvmVcpu, cr2OrGpa: number, gfn: number, errorCode: number, prefetch: boolean): FaultOutcome {
  // 2. The non-blocking first try: resident → done; an error other than "needs I/O" → done (with the error).
  const look = v.kvm.hostMem.lookupNoWait(gfn);
  if (look === 'resident') return 'spurious';
  // 1. A private (guest_memfd) frame: kvm_faultin_pfn_private gets the page from guest_memfd in
  //    the vCPU thread; that path never reaches the async decision below.
  if (!prefetch && v.kvm.hostMem.isPrivate(gfn)) {
    v.syncFault(gfn, cr2OrGpa, 'private', true);
    return 'private';
  }
  if (look === 'error') {
    machineCheck(v, gfn, cr2OrGpa);
    return 'error';
  }
  // 3. Not a prefetch, and kvm_can_do_async_pf.
  // (`reinjection`: the "cannot do" of an event waiting to be re-injected, told apart in the trace.)
  let why: SyncWhy = prefetch ? 'prefetch' : v.eventNeedsReinjection() ? 'reinjection' : 'cannot_do';
  if (!prefetch && canDoAsyncPf(v)) {
    // a. before the repeated-fault check
    v.trace('kvm_try_async_get_page', { gva: cr2OrGpa, gfn });
    // b. already outstanding: artificial halt, no new work
    if (v.apf.hash.find(gfn)) {
      v.trace(v.kvm.profile.repeatedFaultTracepoint, { gva: cr2OrGpa, gfn });
      v.stats.repeatedFaults++;
      v.makeRequest('apf_halt', { gfn, why: 'repeated' });
      return 'repeated';
    }
    // c. set up the work item
    const r = archSetupAsyncPf(v, cr2OrGpa, gfn, errorCode);
    if (r === 'queued') return 'async';
    why = r;
  }
  // 4. Blocking fault-in: the vCPU waits for the page, then the instruction re-executes.
  v.syncFault(gfn, cr2OrGpa, why, true);
  return why;
}

/**
 * A fault-in that returned an error (hwpoison / truncated file / failed remote fetch): KVM hands it
 * to userspace (SIGBUS / -EFAULT), and the VMM injects a machine check into the guest.
 */
export function machineCheck(v: KvmVcpu, gfn: number, gpa: number): void {
  v.stats.machineChecks++;
  v.trace('kvm_mce_inject', { gfn, gpa });
  recordSrar(v, gpa);
  v.queueException({ vector: VEC_MC });
}
