/**
 * KVM paravirtual CPUID features (spec §1.4): leaf 0x40000001, EAX bits.
 */

/** spec §1.4: KVM_CPUID_FEATURES, the leaf whose EAX carries the KVM feature bits. */
export const KVM_CPUID_FEATURES = 0x40000001;

/** spec §1.4: bit numbers in EAX of leaf 0x40000001 (APF bits 4, 10, 14; the rest for context). */
export const KVM_FEATURE = {
  CLOCKSOURCE: 0,
  NOP_IO_DELAY: 1,
  MMU_OP: 2,
  CLOCKSOURCE2: 3,
  ASYNC_PF: 4,
  STEAL_TIME: 5,
  PV_EOI: 6,
  PV_UNHALT: 7,
  PV_TLB_FLUSH: 9,
  ASYNC_PF_VMEXIT: 10,
  PV_SEND_IPI: 11,
  POLL_CONTROL: 12,
  PV_SCHED_YIELD: 13,
  ASYNC_PF_INT: 14,
  MSI_EXT_DEST_ID: 15,
  HC_MAP_GPA_RANGE: 16,
  MIGRATION_CONTROL: 17,
  CLOCKSOURCE_STABLE_BIT: 24,
} as const;

/** spec §1.4: name of a KVM feature bit. */
export type KvmFeatureName = keyof typeof KVM_FEATURE;

/** spec §1.4: KVM_FEATURE_ASYNC_PF (4): MSR 0x4b564d02 may be written. */
export const KVM_FEATURE_ASYNC_PF = KVM_FEATURE.ASYNC_PF;
/** spec §1.4: KVM_FEATURE_ASYNC_PF_VMEXIT (10): EN bit 2 may be set. */
export const KVM_FEATURE_ASYNC_PF_VMEXIT = KVM_FEATURE.ASYNC_PF_VMEXIT;
/** spec §1.4: KVM_FEATURE_ASYNC_PF_INT (14): MSRs 0x4b564d06/07 may be used. */
export const KVM_FEATURE_ASYNC_PF_INT = KVM_FEATURE.ASYNC_PF_INT;

/** spec §1.4: EAX value with the named feature bits set. */
export function kvmFeatureEax(...names: readonly KvmFeatureName[]): number {
  let eax = 0;
  for (const n of names) eax |= 1 << KVM_FEATURE[n];
  return eax >>> 0;
}

/** spec §1.4: whether EAX of leaf 0x40000001 has the named feature bit. */
export const kvmFeatureHas = (eax: number, name: KvmFeatureName): boolean => ((eax >>> KVM_FEATURE[name]) & 1) === 1;
