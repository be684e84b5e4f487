/**
 * The VMM's machine-check injection (QEMU kvm_mce_inject) as seen through the guest's MCE MSRs:
 * one bank, MCG_STATUS, MC0_STATUS and MC0_ADDR. `recordSrar` fills them before the #MC is queued;
 * the guest reads them and clears MCG_STATUS. Unset registers read 0 (a raw #MC with no bank is
 * unrecoverable, as before).
 */
import {
  MCG_STATUS_EIPV,
  MCG_STATUS_MCIP,
  MCG_STATUS_RIPV,
  MCI_STATUS_SRAO,
  MCI_STATUS_SRAR,
  MSR_IA32_MC0_ADDR,
  MSR_IA32_MC0_STATUS,
  MSR_IA32_MCG_STATUS,
} from '../../shared-abi/mce';
import type { KvmVcpu } from '../kvm';

const MCE_MSRS: ReadonlySet<number> = new Set([MSR_IA32_MCG_STATUS, MSR_IA32_MC0_STATUS, MSR_IA32_MC0_ADDR]);

export function isMceMsr(msr: number): boolean {
  return MCE_MSRS.has(msr);
}

/** An action-required memory error at `gpa` (SIGBUS BUS_MCEERR_AR in the VMM). */
export function recordSrar(v: KvmVcpu, gpa: number): void {
  v.otherMsrs.set(MSR_IA32_MCG_STATUS, MCG_STATUS_RIPV | MCG_STATUS_EIPV | MCG_STATUS_MCIP);
  v.otherMsrs.set(MSR_IA32_MC0_STATUS, MCI_STATUS_SRAR);
  v.otherMsrs.set(MSR_IA32_MC0_ADDR, BigInt(gpa));
}

export function mceMsrRead(v: KvmVcpu, msr: number): bigint {
  return v.otherMsrs.get(msr) ?? 0n;
}

/** Guest writes: MCG_STATUS and MC0_STATUS may be cleared (written with 0); anything else is #GP. */
export function mceMsrWrite(v: KvmVcpu, msr: number, value: bigint): boolean {
  if (msr === MSR_IA32_MC0_ADDR) return value === 0n ? (v.otherMsrs.set(msr, 0n), true) : false;
  if (value !== 0n) return false;
  v.otherMsrs.set(msr, 0n);
  return true;
}

/** An action-optional error (no EIPV, no AR): the memory at `gpa` is bad, not the current instruction's. */
export function recordSrao(v: KvmVcpu, gpa: number): void {
  v.otherMsrs.set(MSR_IA32_MCG_STATUS, MCG_STATUS_RIPV | MCG_STATUS_MCIP);
  v.otherMsrs.set(MSR_IA32_MC0_STATUS, MCI_STATUS_SRAO);
  v.otherMsrs.set(MSR_IA32_MC0_ADDR, BigInt(gpa));
}
