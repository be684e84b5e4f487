/**
 * The MSR switch (kvm_set_msr_common / kvm_get_msr_common for the MSRs the model knows).
 *
 * `false` / `undefined` mean the access fails: #GP for a guest RDMSR/WRMSR, an error for a
 * host-initiated access (KVM_SET_MSRS). Every value is normalised to 64 bits first, so any bigint a
 * guest program supplies is handled.
 *
 * Async-PF MSRs follow spec §3.2–§3.4. MSR_KVM_ASYNC_PF_INT and _ACK exist only on hosts with
 * interrupt-based page ready (v5.8+); on older hosts they are unknown MSRs (#GP).
 */
import { KVM_FEATURE, KVM_FEATURE_ASYNC_PF, KVM_FEATURE_ASYNC_PF_INT } from '../../shared-abi/cpuid';
import {
  ASYNC_PF_ACK_READ_VALUE,
  ASYNC_PF_INT_RESERVED_MASK,
  isX2apicMsr,
  KVM_ASYNC_PF_ACK_BIT,
  KVM_ASYNC_PF_VEC_MASK,
  KVM_MSR,
  MSR_KVM_ASYNC_PF_ACK,
  MSR_KVM_ASYNC_PF_EN,
  MSR_KVM_ASYNC_PF_INT,
  U64_MASK,
  X86_MSR,
} from '../../shared-abi/msr';
import type { KvmVcpu } from '../kvm';
import { enableAsyncPf, guestPvHas } from './apf';
import { isMceMsr, mceMsrRead, mceMsrWrite } from '../designs/mce';

/** Other KVM PV MSRs: accepted and stored (no behaviour), gated by their CPUID bit under enforcement. */
const OTHER_PV_MSRS: ReadonlyMap<number, number> = new Map([
  [KVM_MSR.WALL_CLOCK_NEW, KVM_FEATURE.CLOCKSOURCE2],
  [KVM_MSR.SYSTEM_TIME_NEW, KVM_FEATURE.CLOCKSOURCE2],
  [KVM_MSR.STEAL_TIME, KVM_FEATURE.STEAL_TIME],
  [KVM_MSR.PV_EOI_EN, KVM_FEATURE.PV_EOI],
  [KVM_MSR.POLL_CONTROL, KVM_FEATURE.POLL_CONTROL],
  [KVM_MSR.MIGRATION_CONTROL, KVM_FEATURE.MIGRATION_CONTROL],
]);

/** IA32_TSC: the TSC runs at one tick per virtual nanosecond. */
export const MSR_IA32_TSC = 0x10;

const u64 = (v: bigint): bigint => v & U64_MASK;

/**
 * The KVM PV MSRs KVM advertises to userspace (KVM_GET_MSR_INDEX_LIST's emulated MSRs) on this
 * host: the async-PF MSRs (INT and ACK only where page ready is an interrupt) and the others above.
 */
function advertisedPvMsr(v: KvmVcpu, msr: number): boolean {
  if (msr === MSR_KVM_ASYNC_PF_EN) return true;
  if (msr === MSR_KVM_ASYNC_PF_INT || msr === MSR_KVM_ASYNC_PF_ACK) return v.kvm.toggles.interrupt_page_ready;
  return OTHER_PV_MSRS.has(msr);
}

/**
 * kvm_do_msr_access with 44dd0f5732b4: when an advertised PV MSR is refused because the guest's
 * CPUID lacks its feature bit (KVM_MSR_RET_UNSUPPORTED), a host-initiated access still succeeds if
 * it is a read (which returns 0) or a write of 0 (which does nothing). The guest's own access and
 * any non-zero host write still fail.
 */
function hostMaySkip(v: KvmVcpu, msr: number, data: bigint, hostInitiated: boolean): boolean {
  return hostInitiated && data === 0n && v.kvm.toggles.userspace_zero_pv_msr && advertisedPvMsr(v, msr);
}

/** WRMSR (guest) or KVM_SET_MSRS (host-initiated). */
export function msrWrite(v: KvmVcpu, msr: number, value: bigint, hostInitiated: boolean): boolean {
  const data = u64(value);
  const t = v.kvm.toggles;
  switch (msr) {
    case MSR_KVM_ASYNC_PF_EN:
      // 1. CPUID gate, in the switch before the helper (spec §3.2).
      if (!guestPvHas(v, KVM_FEATURE_ASYNC_PF)) return hostMaySkip(v, msr, data, hostInitiated);
      return enableAsyncPf(v, data);
    case MSR_KVM_ASYNC_PF_INT:
      if (!t.interrupt_page_ready) return false;
      // spec §3.3: CPUID gate, reserved bits 63:8, in-kernel LAPIC, then store.
      if (!guestPvHas(v, KVM_FEATURE_ASYNC_PF_INT)) return hostMaySkip(v, msr, data, hostInitiated);
      if ((data & ASYNC_PF_INT_RESERVED_MASK) !== 0n) return false;
      if (t.reject_without_lapic && v.lapic === null) return false;
      v.apf.msrIntVal = data;
      v.apf.vec = Number(data & KVM_ASYNC_PF_VEC_MASK);
      return true;
    case MSR_KVM_ASYNC_PF_ACK:
      if (!t.interrupt_page_ready) return false;
      // spec §3.4: CPUID gate; bit 0 clears pageready_pending and re-scans synchronously.
      if (!guestPvHas(v, KVM_FEATURE_ASYNC_PF_INT)) return hostMaySkip(v, msr, data, hostInitiated);
      if ((data & KVM_ASYNC_PF_ACK_BIT) !== 0n) {
        const was = v.apf.pageReadyPending;
        v.apf.pageReadyPending = false;
        v.stats.acks++;
        v.trace('kvm_async_pf_ack', { was_pending: was });
        v.asyncPf.checkCompletion();
      }
      return true;
    case MSR_IA32_TSC:
      return false;
    default:
      break;
  }
  if (isMceMsr(msr)) return mceMsrWrite(v, msr, data);
  const feature = OTHER_PV_MSRS.get(msr);
  if (feature !== undefined) {
    if (!guestPvHas(v, feature)) return hostMaySkip(v, msr, data, hostInitiated);
    v.otherMsrs.set(msr, data);
    return true;
  }
  if (msr === X86_MSR.IA32_TSC_DEADLINE) {
    // Without an in-kernel LAPIC the write is ignored (kvm_set_lapic_tscdeadline_msr).
    if (v.lapic === null) return true;
    return v.lapic.writeMsr(msr, data);
  }
  if (msr === X86_MSR.IA32_APIC_BASE || isX2apicMsr(msr)) {
    if (v.lapic === null) return false;
    return v.lapic.writeMsr(msr, data);
  }
  return false;
}

/** RDMSR (guest) or KVM_GET_MSRS (host-initiated). */
export function msrRead(v: KvmVcpu, msr: number, hostInitiated: boolean): bigint | undefined {
  const t = v.kvm.toggles;
  // A refused read of an advertised PV MSR reads 0 for userspace (44dd0f5732b4).
  const refused = (): bigint | undefined => (hostMaySkip(v, msr, 0n, hostInitiated) ? 0n : undefined);
  switch (msr) {
    case MSR_KVM_ASYNC_PF_EN:
      if (!guestPvHas(v, KVM_FEATURE_ASYNC_PF)) return refused();
      return v.apf.msrEnVal;
    case MSR_KVM_ASYNC_PF_INT:
      if (!t.interrupt_page_ready) return undefined;
      if (!guestPvHas(v, KVM_FEATURE_ASYNC_PF_INT)) return refused();
      return v.apf.msrIntVal;
    case MSR_KVM_ASYNC_PF_ACK:
      if (!t.interrupt_page_ready) return undefined;
      if (!guestPvHas(v, KVM_FEATURE_ASYNC_PF_INT)) return refused();
      return ASYNC_PF_ACK_READ_VALUE;
    case MSR_IA32_TSC:
      return BigInt(v.kvm.sim.now);
    default:
      break;
  }
  if (isMceMsr(msr)) return mceMsrRead(v, msr);
  const feature = OTHER_PV_MSRS.get(msr);
  if (feature !== undefined) {
    if (!guestPvHas(v, feature)) return refused();
    return v.otherMsrs.get(msr) ?? 0n;
  }
  if (msr === X86_MSR.IA32_TSC_DEADLINE) {
    if (v.lapic === null) return 0n;
    return v.lapic.readMsr(msr);
  }
  if (msr === X86_MSR.IA32_APIC_BASE) {
    if (v.lapic === null) return 0xfee00000n;
    return v.lapic.readMsr(msr);
  }
  if (isX2apicMsr(msr)) {
    if (v.lapic === null) return undefined;
    return v.lapic.readMsr(msr);
  }
  return undefined;
}
