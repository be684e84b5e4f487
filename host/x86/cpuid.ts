/**
 * The CPUID table the VMM gives the guest (KVM_SET_CPUID2), as far as the model needs it:
 * - leaf 0x40000000: KVM signature "KVMKVMKVM\0\0\0" in EBX/ECX/EDX, EAX = highest KVM leaf;
 * - leaf 0x40000001 (KVM_CPUID_FEATURES): EAX = the configured feature bits, limited to what the
 *   host profile supports (what QEMU would get from KVM_GET_SUPPORTED_CPUID);
 * - leaf 1: ECX advertises x2APIC (21), TSC-deadline (24) and "running on a hypervisor" (31);
 * - every other leaf reads as zeros.
 */
import type { CpuidResult } from '../../shared-abi/arch';
import { KVM_CPUID_FEATURES } from '../../shared-abi/cpuid';

export const KVM_CPUID_SIGNATURE = 0x40000000;

/** "KVMKVMKVM\0\0\0" as three little-endian dwords. */
function signatureDwords(): [number, number, number] {
  const s = 'KVMKVMKVM\0\0\0';
  const dw = (i: number): number =>
    (s.charCodeAt(i) | (s.charCodeAt(i + 1) << 8) | (s.charCodeAt(i + 2) << 16) | (s.charCodeAt(i + 3) << 24)) >>> 0;
  return [dw(0), dw(4), dw(8)];
}

const [SIG_EBX, SIG_ECX, SIG_EDX] = signatureDwords();
const LEAF1_ECX = ((1 << 21) | (1 << 24) | (1 << 31)) >>> 0;
const ZERO: CpuidResult = { eax: 0, ebx: 0, ecx: 0, edx: 0 };

/** The CPUID result for `leaf` with KVM feature bits `kvmFeatures` (already masked). */
export function cpuidLeaf(leaf: number, _subleaf: number, kvmFeatures: number): CpuidResult {
  switch (leaf >>> 0) {
    case 0:
      return { eax: 1, ebx: 0, ecx: 0, edx: 0 };
    case 1:
      return { eax: 0, ebx: 0, ecx: LEAF1_ECX, edx: 0 };
    case KVM_CPUID_SIGNATURE:
      return { eax: KVM_CPUID_FEATURES, ebx: SIG_EBX, ecx: SIG_ECX, edx: SIG_EDX };
    case KVM_CPUID_FEATURES:
      return { eax: kvmFeatures >>> 0, ebx: 0, ecx: 0, edx: 0 };
    default:
      return ZERO;
  }
}
