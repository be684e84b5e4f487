/**
 * The x86 half of async page faults (arch/x86/kvm/x86.c and the token allocator of mmu.c):
 * enabling through MSR_KVM_ASYNC_PF_EN, the "can do" / "can deliver" decisions, "not present"
 * and "page present" delivery, the dequeue condition, the prefault, and every host access to the
 * shared `struct kvm_vcpu_pv_apf_data`.
 *
 * Each function follows the spec's numbered steps (spec §3.2, §3.5.1, §3.5.2, §3.6, §3.6.1,
 * §3.7.2–§3.7.4) for the current host; where older hosts differ, the profile's toggles and era
 * facts select the older behaviour, as described next to the step.
 */
import { PAGE_SIZE } from '../../shared-abi/addr';
import { allocApfToken, KVM_APF_WAKE_ALL_TOKEN, KVM_PV_REASON_PAGE_NOT_PRESENT, KVM_PV_REASON_PAGE_READY } from '../../shared-abi/apf';
import { KVM_FEATURE_ASYNC_PF_INT, KVM_FEATURE_ASYNC_PF_VMEXIT } from '../../shared-abi/cpuid';
import { APF_FLAGS_OFFSET, APF_TOKEN_OFFSET, hostWritableBytes } from '../../shared-abi/layout';
import {
  ASYNC_PF_EN_GPA_MASK,
  KVM_ASYNC_PF_DELIVERY_AS_INT,
  KVM_ASYNC_PF_DELIVERY_AS_PF_VMEXIT,
  KVM_ASYNC_PF_ENABLED,
  KVM_ASYNC_PF_SEND_ALWAYS,
} from '../../shared-abi/msr';
import { ASYNC_PF_ERROR_CODE, PF_VECTOR } from '../../shared-abi/vectors';
import type { AsyncPfArch, AsyncPfWork, SetupResult } from '../async_pf';
import type { KvmVcpu } from '../kvm';

/** `vcpu->arch.apf` (spec §3.1). */
export interface ApfState {
  /** Artificial halt in progress. */
  halted: boolean;
  /** MSR_KVM_ASYNC_PF_EN as last written (`msr_val` ≤v5.7). */
  msrEnVal: bigint;
  /** MSR_KVM_ASYNC_PF_INT as last written. */
  msrIntVal: bigint;
  /** Page-ready vector (INT bits 7:0). */
  vec: number;
  /** Token counter (u32); presettable in tests. */
  id: number;
  /** SEND_ALWAYS as last enabled (`!send_user_only` before Feb 2025). */
  sendAlways: boolean;
  deliveryAsPfVmexit: boolean;
  /** A page-ready interrupt was sent and not yet ACKed. */
  pageReadyPending: boolean;
  /** ≤v6.0: token of the async #PF to reflect to L1 (`nested_apf_token`). */
  nestedApfToken: number;
  /** The cached guest mapping of the area (`apf.data`): valid GPA range, or null (not initialised / init failed). */
  area: { readonly gpa: number; readonly len: 4 | 8 } | null;
}

export function newApfState(): ApfState {
  return {
    halted: false,
    msrEnVal: 0n,
    msrIntVal: 0n,
    vec: 0,
    id: 0,
    sendAlways: false,
    deliveryAsPfVmexit: false,
    pageReadyPending: false,
    nestedApfToken: 0,
    area: null,
  };
}

// --- Guest memory access: the one place the host touches the shared struct ---------------------

type ApfField = 'flags' | 'reason' | 'token';

/**
 * The host frame a 4-byte access at `offset` of the area goes through, -1 when it fails: outside
 * the cached mapping's length, or the cache (`apf.data`, gfn_cache.ts) has no translation after
 * its check-and-refresh, or the page's backing is failing. This is the "use" of the cache.
 */
function areaFrame(v: KvmVcpu, offset: number): number {
  const a = v.apf.area;
  if (a === null || offset + 4 > a.len) return -1;
  const hfn = v.apf.data.frame();
  if (hfn < 0) return -1;
  return v.kvm.hostMem.isFailingPage(v.apf.data.hvpn) ? -1 : hfn;
}

/** Whether a 4-byte host access at `offset` of the area would succeed (the cache is checked and refreshed, nothing is written). */
export function apfAccessible(v: KvmVcpu, offset: number): boolean {
  return areaFrame(v, offset) >= 0;
}

/**
 * kvm_write_guest_offset_cached for a u32 of the area: range-checked against the cached mapping
 * (4 bytes ≤v5.7, 8 bytes from v5.8: `hostWritableBytes`), written through the cache's host frame
 * (faulting a non-resident page in), emits `kvm_write_guest`. False = the write failed (-EFAULT).
 * Once the host traces translations (docs/caches.md) the record also says which translation the
 * write went through: `hfn`, `gen`, `slot`.
 */
export function apfWrite(v: KvmVcpu, offset: number, value: number, field: ApfField): boolean {
  const a = v.apf.area;
  const c = v.apf.data;
  const hfn = areaFrame(v, offset);
  const ok = hfn >= 0 && v.kvm.hostMem.hostAccessPage(c.hvpn, v.id);
  const gpa = a === null ? -1 : a.gpa + offset;
  if (ok) v.kvm.hostMem.phys.writeU32(hfn * PAGE_SIZE + (gpa % PAGE_SIZE), value >>> 0);
  if (v.kvm.hostMem.space.traced) v.trace('kvm_write_guest', { gpa, len: 4, value: value >>> 0, field, ok, hfn: ok ? hfn : -1, gen: c.generation, slot: c.slot });
  else v.trace('kvm_write_guest', { gpa, len: 4, value: value >>> 0, field, ok });
  return ok;
}

/** kvm_read_guest_offset_cached for a u32 of the area; undefined = the read failed. */
export function apfRead(v: KvmVcpu, offset: number): number | undefined {
  const a = v.apf.area;
  const hfn = areaFrame(v, offset);
  if (a === null || hfn < 0) return undefined;
  if (!v.kvm.hostMem.hostAccessPage(v.apf.data.hvpn, v.id)) return undefined;
  return v.kvm.hostMem.phys.readU32(hfn * PAGE_SIZE + ((a.gpa + offset) % PAGE_SIZE));
}

/**
 * A page-ready the VMM raises for a token of its choosing (a test device standing in for
 * kvm_arch_async_page_present): the token goes into the area's token slot through the vCPU's
 * cached mapping, with the same translation and host access as KVM's own write (`apfWrite`) but
 * no `kvm_write_guest` record (the write is the VMM's, not KVM's), then the page-ready interrupt.
 * False, with nothing written or raised, when the area cannot be reached (not registered, outside
 * the cached mapping, or a failing page).
 */
export function vmmPageReady(v: KvmVcpu, token: number): boolean {
  const a = v.apf.area;
  const hfn = areaFrame(v, APF_TOKEN_OFFSET);
  if (a === null || hfn < 0 || !v.kvm.hostMem.hostAccessPage(v.apf.data.hvpn, v.id)) return false;
  v.kvm.hostMem.phys.writeU32(hfn * PAGE_SIZE + ((a.gpa + APF_TOKEN_OFFSET) % PAGE_SIZE), token >>> 0);
  v.lapic?.accept('fixed', v.apf.vec);
  return true;
}

const flagsField = (v: KvmVcpu): ApfField => (v.kvm.profile.layout === 'v2.6.38' ? 'reason' : 'flags');

// --- Predicates -------------------------------------------------------------------------------

/** kvm_pv_async_pf_enabled: ENABLED and DELIVERY_AS_INT (v5.8+), ENABLED alone before. */
export function pvEnabled(v: KvmVcpu): boolean {
  const m = v.kvm.profile.pvEnabledMask;
  return (v.apf.msrEnVal & m) === m;
}

/** guest_pv_has: true without KVM_CAP_ENFORCE_PV_FEATURE_CPUID, else the guest's CPUID bit (spec §1.4). */
export function guestPvHas(v: KvmVcpu, feature: number): boolean {
  if (!v.kvm.pvCpuidEnforced) return true;
  return ((v.kvm.cpuidKvmFeatures >>> feature) & 1) === 1;
}

/**
 * The CPL the host uses for the SEND_ALWAYS rule. With protected guest state the host cannot read
 * the CPL: the fix (b9595d1ddef8) treats it as 0; without the fix the model reads a stale 3
 * [inference, docs/host.md], i.e. the host may inject into the guest kernel.
 */
function apfCpl(v: KvmVcpu): number {
  if (v.kvm.config.protectedState === true) return v.kvm.toggles.protected_state_cpl0 ? 0 : 3;
  return v.cpu.cpl;
}

/** SEND_ALWAYS as the host honours it (`honour_send_always` off = every guest is user-only). */
const sendAlways = (v: KvmVcpu): boolean => v.kvm.toggles.honour_send_always && v.apf.sendAlways;

/** The CPL rule of delivery: false when "not present" may not be sent at this CPL. */
function cplAllows(v: KvmVcpu): boolean {
  if (sendAlways(v) || !v.kvm.toggles.cpl0_needs_send_always) return true;
  return apfCpl(v) !== 0;
}

/** kvm_can_deliver_async_pf (spec §3.5.2; the June 2019 cleanup and later). */
export function canDeliverAsyncPf(v: KvmVcpu): boolean {
  // 1. PV delivery enabled.
  if (!pvEnabled(v)) return false;
  // 2. CPL 0 (or protected state) without SEND_ALWAYS.
  if (!cplAllows(v)) return false;
  // 3. Guest mode: L1 must have opted into #PF VM-exits.
  if (v.cpu.guestMode) return v.apf.deliveryAsPfVmexit;
  // 4. Paging (Feb 2022); before that, deliverable.
  return v.kvm.toggles.paging_check ? v.cpu.paging : true;
}

/** kvm_can_do_async_pf (spec §3.5.1). */
export function canDoAsyncPf(v: KvmVcpu): boolean {
  const t = v.kvm.toggles;
  // 1. In-kernel LAPIC; no event to re-inject (every era); no pending exception (2a266f23550b).
  if (v.lapic === null || v.eventNeedsReinjection()) return false;
  if (t.pending_exception_gate && v.exceptionPending()) return false;
  if (t.can_deliver_cleanup) {
    // 2. HLT pass-through: async only when it can be delivered as PV.
    if (v.kvm.config.hltPassthrough === true && !canDeliverAsyncPf(v)) return false;
  } else if (v.kvm.profile.nestedOptIn && v.cpu.guestMode && !v.apf.deliveryAsPfVmexit) {
    // v4.13–v5.2: guest mode without the opt-in was refused here (synchronous fault) [docs/host.md].
    return false;
  }
  // 3. The guest could take an interrupt now.
  return v.cpu.interruptAllowed();
}

// --- MSR_KVM_ASYNC_PF_EN ------------------------------------------------------------------------

/** kvm_async_pf_hash_reset. */
export function asyncPfHashReset(v: KvmVcpu): void {
  v.apf.hash.reset();
}

/**
 * Step 8: kvm_gfn_to_hva_cache_init for the area (gfn_cache.ts): the old translation goes, the new
 * one is taken (and the page held against LRU eviction). False: the GPA is not in a memslot.
 */
function initArea(v: KvmVcpu, gpa: number, len: 4 | 8): boolean {
  const ok = v.apf.data.init(gpa, len);
  v.apf.area = ok ? { gpa, len } : null;
  return ok;
}

/**
 * kvm_pv_enable_async_pf (spec §3.2 steps 2–10; step 1, the CPUID gate, is in the MSR switch).
 * Returns false when the write fails (#GP for the guest, an error for userspace).
 */
export function enableAsyncPf(v: KvmVcpu, data: bigint): boolean {
  const p = v.kvm.profile;
  // 2. Reserved bits (0x30 v5.8+, 0x38 v4.13–v5.7, 0x3c before).
  if ((data & p.enReservedMask) !== 0n) return false;
  // 3./4. Feature bits for nested delivery and interrupt delivery (only bite with PV CPUID enforcement).
  if ((data & KVM_ASYNC_PF_DELIVERY_AS_PF_VMEXIT) !== 0n && !guestPvHas(v, KVM_FEATURE_ASYNC_PF_VMEXIT)) return false;
  if ((data & KVM_ASYNC_PF_DELIVERY_AS_INT) !== 0n && !guestPvHas(v, KVM_FEATURE_ASYNC_PF_INT)) return false;
  // 5. No in-kernel LAPIC (Sept 2020): only a write of 0 succeeds, with no effect.
  if (p.toggles.reject_without_lapic && v.lapic === null) return data === 0n;
  // 6. Stored before the address is validated (the quirk).
  v.apf.msrEnVal = data;
  // 7. Not PV-enabled: this is the disable path.
  if (!pvEnabled(v)) {
    v.asyncPf.clear('disable');
    asyncPfHashReset(v);
    v.trace('kvm_async_pf_disable', { msr_en_val: data });
    return true;
  }
  // 8. Map the area (the cache init): 8 bytes (v5.8+) or 4 bytes; a GPA outside guest RAM (every
  //    memslot) fails, msr_en_val keeps the value.
  const gpa = Number(data & ASYNC_PF_EN_GPA_MASK);
  const len = hostWritableBytes(p.layout).length;
  if (!initArea(v, gpa, len)) {
    v.trace('kvm_async_pf_enable_failed', { msr_en_val: data, gpa });
    return false;
  }
  // 9. Delivery options.
  v.apf.sendAlways = (data & KVM_ASYNC_PF_SEND_ALWAYS) !== 0n;
  v.apf.deliveryAsPfVmexit = p.nestedOptIn && (data & KVM_ASYNC_PF_DELIVERY_AS_PF_VMEXIT) !== 0n;
  v.trace('kvm_async_pf_enable', {
    msr_en_val: data,
    gpa,
    send_always: v.apf.sendAlways,
    delivery_as_int: (data & KVM_ASYNC_PF_DELIVERY_AS_INT) !== 0n,
    pf_vmexit: v.apf.deliveryAsPfVmexit,
  });
  // 10. Broadcast wake-all (return value ignored).
  v.asyncPf.wakeupAll();
  return true;
}

// --- Token allocation and work setup ---------------------------------------------------------

/**
 * alloc_apf_token: (id << 12) | vcpu_id, post-incremented; never 0 with the Feb 2022 fix. The
 * vcpu_id is KVM's (`vcpuId`), not the vCPU's index, and is not masked: ids of 4096 and more
 * alias in the counter bits (`tokenIdAliases`, docs/host.md "vCPU ids and tokens").
 */
export function allocToken(v: KvmVcpu): number {
  const { token, nextId } = allocApfToken(v.apf.id >>> 0, v.vcpuId >>> 0, { avoidZero: v.kvm.toggles.nonzero_token });
  v.apf.id = nextId;
  return token;
}

/** kvm_arch_setup_async_pf (spec §3.6): the token is taken before the generic setup can refuse. */
export function archSetupAsyncPf(v: KvmVcpu, cr2OrGpa: number, gfn: number, errorCode: number): SetupResult {
  const token = allocToken(v);
  return v.asyncPf.setup(cr2OrGpa, { token, gfn, errorCode, directMap: true, cr3: -1 });
}

// --- Delivery -------------------------------------------------------------------------------

/**
 * kvm_inject_page_fault for an async #PF: CR2 = token, error code 0. In guest mode it becomes a
 * #PF VM-exit to L1 carrying the token: as an exception-VM-exit payload (~v6.1+) or through
 * `nested_apf_token` (v4.13–v6.0; v3.0 per the 2.6.38 "always exits to L1" note).
 */
function injectAsyncPf(v: KvmVcpu, token: number): void {
  if (v.cpu.guestMode) {
    if (v.kvm.toggles.nested_payload) {
      v.queueException({ vector: PF_VECTOR, errorCode: ASYNC_PF_ERROR_CODE, cr2: token, async: true, nested: 'payload' });
    } else {
      v.apf.nestedApfToken = token;
      v.queueException({ vector: PF_VECTOR, errorCode: ASYNC_PF_ERROR_CODE, async: true, nested: 'nested_apf_token' });
    }
    return;
  }
  v.queueException({ vector: PF_VECTOR, errorCode: ASYNC_PF_ERROR_CODE, cr2: token, async: true });
}

/** kvm_arch_async_page_not_present (spec §3.6.1). Returns whether "not present" was injected. */
export function asyncPageNotPresent(v: KvmVcpu, work: AsyncPfWork): boolean {
  const token = work.arch.token;
  if (!v.kvm.toggles.can_deliver_cleanup) return asyncPageNotPresentOld(v, work);
  const canDeliver = canDeliverAsyncPf(v);
  const injected = canDeliver && apfAccessible(v, APF_FLAGS_OFFSET);
  // 1. Trace first, whatever follows (`injected`/`halt` say how it will end).
  v.trace('kvm_async_pf_not_present', { token, gva: work.cr2OrGpa, injected, halt: !injected });
  // 2. The gfn goes into the hash even when the fault will not be delivered.
  v.apf.hash.add(work.arch.gfn);
  // 3. Deliverable and flags := 1 succeeded: queue #PF(token). (Other designs: host/designs.)
  const designNotPresent = v.cpu.guestMode ? undefined : v.kvm.design.notPresent;
  if (canDeliver && designNotPresent !== undefined) {
    if (designNotPresent(v, token, (o, val, f) => apfWrite(v, o, val, f === 'flags' ? flagsField(v) : f))) {
      v.stats.asyncPfInjected++;
      return true;
    }
  } else if (canDeliver && apfWrite(v, APF_FLAGS_OFFSET, KVM_PV_REASON_PAGE_NOT_PRESENT, flagsField(v))) {
    injectAsyncPf(v, token);
    v.stats.asyncPfInjected++;
    return true;
  }
  // 4. Otherwise halt the vCPU until the page is in.
  v.makeRequest('apf_halt', { gfn: work.arch.gfn, why: 'undeliverable' });
  return false;
}

/**
 * ≤v5.2 (H-4.19, H-3.0): halt if not ENABLED or (user-only and CPL 0); else inject if writing
 * reason = 1 succeeds; a failed write does neither (the retry then finds the gfn outstanding).
 */
function asyncPageNotPresentOld(v: KvmVcpu, work: AsyncPfWork): boolean {
  const token = work.arch.token;
  const halt = (v.apf.msrEnVal & KVM_ASYNC_PF_ENABLED) === 0n || !cplAllows(v);
  const injected = !halt && apfAccessible(v, APF_FLAGS_OFFSET);
  v.trace('kvm_async_pf_not_present', { token, gva: work.cr2OrGpa, injected, halt });
  v.apf.hash.add(work.arch.gfn);
  if (halt) {
    v.makeRequest('apf_halt', { gfn: work.arch.gfn, why: 'undeliverable' });
    return false;
  }
  if (apfWrite(v, APF_FLAGS_OFFSET, KVM_PV_REASON_PAGE_NOT_PRESENT, flagsField(v))) {
    injectAsyncPf(v, token);
    v.stats.asyncPfInjected++;
    return true;
  }
  return false;
}

/** kvm_arch_can_dequeue_async_page_present (spec §3.7.2); ≤v5.7 kvm_arch_can_inject_async_page_present. */
export function canDequeueAsyncPagePresent(v: KvmVcpu): boolean {
  const t = v.kvm.toggles;
  if (!t.interrupt_page_ready) {
    if ((v.apf.msrEnVal & KVM_ASYNC_PF_ENABLED) === 0n) return true;
    return canDoAsyncPf(v);
  }
  if (!pvEnabled(v)) return true;
  if (t.lapic_enabled_check && (v.lapic === null || !v.lapic.enabled)) return false;
  return apfRead(v, APF_TOKEN_OFFSET) === 0;
}

/** kvm_arch_async_page_ready: prefault the page as a prefetch fault (spec §3.7.3). */
export function asyncPageReady(v: KvmVcpu, work: AsyncPfWork): void {
  if (work.wakeupAll || !work.arch.directMap) return;
  const gfn = work.arch.gfn;
  const look = v.kvm.hostMem.lookupNoWait(gfn);
  if (look === 'resident') {
    v.stats.pfFixed++;
    return;
  }
  // A prefetch fault never goes async: bring the page in synchronously; an error is ignored here
  // (the guest's retry takes the fault path and gets the error there).
  if (look === 'needs_io') v.syncFault(gfn, work.cr2OrGpa, 'prefetch', false);
}

/** Send the page-ready interrupt (kvm_apic_set_irq, fixed mode, vector apf.vec). */
function sendPageReadyIrq(v: KvmVcpu): void {
  if (v.lapic === null) {
    // Before the Sept 2020 fix a VM without an in-kernel LAPIC got here and dereferenced NULL.
    v.hostOops('kvm_apic_set_irq on a vCPU without an in-kernel LAPIC (NULL pointer dereference)');
    return;
  }
  v.lapic.accept('fixed', v.apf.vec);
}

function unhalt(v: KvmVcpu, setRunnable: boolean): void {
  if (v.apf.halted) {
    v.apf.halted = false;
    v.trace('kvm_async_pf_unhalt', { why: 'page_present' });
  }
  if (setRunnable) v.mpState = 'runnable';
}

/** kvm_arch_async_page_present (spec §3.7.4). */
export function asyncPagePresent(v: KvmVcpu, work: AsyncPfWork): void {
  if (!v.kvm.toggles.interrupt_page_ready) {
    asyncPagePresentOld(v, work);
    return;
  }
  // 1. Wake-all token, or the gfn leaves the hash.
  const token = work.wakeupAll ? KVM_APF_WAKE_ALL_TOKEN : work.arch.token;
  if (!work.wakeupAll) v.apf.hash.delete(work.arch.gfn);
  const wanted =
    (work.wakeupAll || work.notpresentInjected || !v.kvm.toggles.page_ready_needs_not_present) && pvEnabled(v);
  const notified = wanted && apfAccessible(v, APF_TOKEN_OFFSET);
  // 2. Trace, whether or not anything is sent.
  v.trace('kvm_async_pf_ready', { token, gva: work.cr2OrGpa, notified });
  // 3. Token into the slot, then the interrupt. (A failed fault-in under another design: host/designs.)
  const write = (o: number, val: number, f: 'flags' | 'token'): boolean => apfWrite(v, o, val, f === 'flags' ? flagsField(v) : f);
  const failedPresent = wanted && !work.wakeupAll && !work.ok && !v.cpu.guestMode ? v.kvm.design.failedPresent : undefined;
  if (failedPresent !== undefined && failedPresent(v, token, work.arch.gfn * PAGE_SIZE, write)) {
    v.stats.pageReadyDelivered++;
  } else if (wanted && apfWrite(v, APF_TOKEN_OFFSET, token, 'token')) {
    v.apf.pageReadyPending = true;
    v.stats.pageReadyDelivered++;
    sendPageReadyIrq(v);
  }
  // 4. Un-halt (also makes a HLT-ed vCPU runnable).
  unhalt(v, true);
}

/** ≤v5.7 present: page ready as #PF with reason 2 (and the 2017 #DF cancellation when toggled on). */
function asyncPagePresentOld(v: KvmVcpu, work: AsyncPfWork): void {
  const t = v.kvm.toggles;
  const token = work.wakeupAll ? KVM_APF_WAKE_ALL_TOKEN : work.arch.token;
  if (!work.wakeupAll) v.apf.hash.delete(work.arch.gfn);
  const enabled = (v.apf.msrEnVal & KVM_ASYNC_PF_ENABLED) !== 0n;
  const wanted = enabled && (work.wakeupAll || work.notpresentInjected || !t.page_ready_needs_not_present);
  const pending = v.pendingException;
  let cancel = false;
  let readable = true;
  if (wanted && !t.no_df_cancellation) {
    const reason = apfRead(v, APF_FLAGS_OFFSET);
    readable = reason !== undefined;
    cancel = readable && reason === KVM_PV_REASON_PAGE_NOT_PRESENT && pending !== null && pending.vector === PF_VECTOR && apfAccessible(v, APF_FLAGS_OFFSET);
  }
  const notified = wanted && readable && !cancel && apfAccessible(v, APF_FLAGS_OFFSET);
  // v2.6.38 traced before setting the wake-all token: the zeroed item's token, 0.
  const traced = work.wakeupAll && v.kvm.profile.readyTracedBeforeWakeAllToken ? 0 : token;
  v.trace('kvm_async_pf_ready', { token: traced, gva: work.cr2OrGpa, notified });
  if (wanted && readable) {
    if (cancel && pending !== null && apfWrite(v, APF_FLAGS_OFFSET, 0, flagsField(v))) {
      // Drops the pending #PF (whatever token it carried) and this page-ready.
      v.pendingException = null;
      v.stats.dfCancellations++;
      v.trace('kvm_async_pf_df_cancel', { token, pending_token: pending.cr2 ?? v.apf.nestedApfToken });
    } else if (apfWrite(v, APF_FLAGS_OFFSET, KVM_PV_REASON_PAGE_READY, flagsField(v))) {
      injectAsyncPf(v, token);
      v.stats.pageReadyDelivered++;
    }
  }
  unhalt(v, v.kvm.profile.presentSetsRunnable);
}

/**
 * kvm_arch_async_page_present_queued (v5.8+, spec §3.7.0 step 6): APF_READY, then a kick unless
 * a page-ready is still un-ACKed. On x86 raising the request is a locked bit operation, a full
 * barrier, so the `pageready_pending` read after it is never stale (docs/host.md, decision 13).
 */
export function asyncPagePresentQueued(v: KvmVcpu): void {
  v.makeRequest('apf_ready');
  if (!v.apf.pageReadyPending) v.kick();
}

/** The arch hooks the generic async-PF code calls. */
export function x86AsyncPfArch(v: KvmVcpu): AsyncPfArch {
  return {
    notPresent: (w) => asyncPageNotPresent(v, w),
    ready: (w) => asyncPageReady(v, w),
    present: (w) => asyncPagePresent(v, w),
    presentQueued: () => asyncPagePresentQueued(v),
    canDequeue: () => canDequeueAsyncPagePresent(v),
    get hasPresentQueued() {
      return v.kvm.toggles.interrupt_page_ready;
    },
  };
}
