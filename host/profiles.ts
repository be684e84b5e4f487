/**
 * Host profiles: which kernel's KVM the simulated host behaves like.
 *
 * A profile is (a) a value for every toggle of `HOST_TOGGLES` and (b) era facts that are not
 * fixes but differences of the ABI itself: struct layout, EN reserved-bit mask, whether the
 * async-PF tracepoint for a repeated fault is still called `kvm_async_pf_doublefault`, and so on.
 * `resolveHostProfile(name, overrides)` applies toggle overrides on top of a profile, so a test
 * can run the current host with exactly one fix reverted.
 *
 * Spec references (§) are to docs/abi.md.
 */
import { type ApfLayoutName } from '../shared-abi/layout';
import { KVM_FEATURE } from '../shared-abi/cpuid';
import { KVM_ASYNC_PF_DELIVERY_AS_INT, KVM_ASYNC_PF_ENABLED, reservedMaskFor, type HostEra } from '../shared-abi/msr';
import { HOST_PROFILES, HOST_TOGGLES, type HostProfileName, type HostToggle, type HostToggles } from './config';

/** Facts of a kernel era that are not toggles (they describe the ABI, not a fix). */
export interface HostEraFacts {
  /** Kernel version the profile models, e.g. `v4.19`. */
  readonly version: string;
  /** EN reserved-bit era (spec §1.2). */
  readonly hostEra: HostEra;
  /** Layout of `struct kvm_vcpu_pv_apf_data` in this kernel's UAPI header (spec §2). */
  readonly layout: ApfLayoutName;
  /** Name of the repeated-fault tracepoint (spec §6; the rename is after v6.6, see docs/host.md). */
  readonly repeatedFaultTracepoint: 'kvm_async_pf_doublefault' | 'kvm_async_pf_repeated_fault';
  /**
   * `kvm_async_pf_completed` carries a `pfn` field: only while the worker took a page reference,
   * i.e. before f2e106692d51 ("KVM: Drop FOLL_GET in GUP when doing async page fault", v3.13).
   */
  readonly completedHasPfn: boolean;
  /**
   * v2.6.38 traced `kvm_async_pf_ready` before turning a wake-all item's token into ~0, so a
   * wake-all shows token 0 (the zeroed item's token) there; later kernels set ~0 first.
   */
  readonly readyTracedBeforeWakeAllToken: boolean;
  /** hash_32 multiplier: GOLDEN_RATIO_32 from v4.7, GOLDEN_RATIO_PRIME_32 before (spec §1.6, §8.4). */
  readonly hashPre47: boolean;
  /** KVM_CAP_ENFORCE_PV_FEATURE_CPUID exists (~v5.10, spec §1.4). Older hosts ignore `enforcePvCpuid`. */
  readonly pvCpuidEnforcement: boolean;
  /** Nested delivery exists (bit 2, v4.13+). v3.0 always exits to L1 (spec §5.1, 2.6.38 nested SVM note). */
  readonly nestedOptIn: boolean;
  /** Page present also sets mp_state RUNNABLE (not in H-3.0, spec §3.7.4 "older"). */
  readonly presentSetsRunnable: boolean;
  /** KVM PV CPUID feature bits this host can expose in leaf 0x40000001 EAX. */
  readonly supportedKvmFeatures: number;
}

/** A profile after toggle overrides: the toggles, the era facts and a few derived facts. */
export interface ResolvedHostProfile extends HostEraFacts {
  readonly name: HostProfileName;
  readonly toggles: HostToggles;
  /** How "page ready" reaches the guest: a #PF with reason 2 (≤v5.7) or an interrupt (v5.8+). */
  readonly pageReady: 'pf' | 'interrupt';
  /** EN reserved-bit mask in effect (the era's mask, plus bit 3 when page-ready is a #PF). */
  readonly enReservedMask: bigint;
  /** Bits of MSR_KVM_ASYNC_PF_EN that make APF "pv enabled": ENABLED (≤v5.7) or ENABLED|DELIVERY_AS_INT. */
  readonly pvEnabledMask: bigint;
}

const ALL_FEATURES_EXCEPT = (...bits: number[]): number => {
  let eax = 0xffffffff;
  for (const b of bits) eax &= ~(1 << b);
  return eax >>> 0;
};

const OFF: HostToggles = {
  pending_exception_gate: false,
  no_df_cancellation: true,
  can_deliver_cleanup: false,
  interrupt_page_ready: false,
  page_ready_needs_not_present: false,
  reject_without_lapic: false,
  lapic_enabled_check: false,
  nonzero_token: false,
  paging_check: false,
  nested_payload: false,
  protected_state_cpl0: false,
  keep_queue_on_cr0_pg: false,
  honour_send_always: true,
  cpl0_needs_send_always: true,
  gfn_cache_refresh: true,
  gfn_cache_unpinned: true,
  userspace_zero_pv_msr: false,
};

interface ProfileDef {
  readonly description: string;
  readonly facts: HostEraFacts;
  readonly toggles: HostToggles;
}

const OLD_FACTS = {
  layout: 'v2.6.38',
  repeatedFaultTracepoint: 'kvm_async_pf_doublefault',
  completedHasPfn: false,
  readyTracedBeforeWakeAllToken: false,
  pvCpuidEnforcement: false,
  presentSetsRunnable: true,
} as const;

/** v5.8-era facts, shared by every interrupt-based profile up to v6.6. */
const V58_FACTS = {
  version: 'v5.8',
  hostEra: 'v5.8',
  layout: 'v5.8',
  repeatedFaultTracepoint: 'kvm_async_pf_doublefault',
  completedHasPfn: false,
  readyTracedBeforeWakeAllToken: false,
  hashPre47: false,
  pvCpuidEnforcement: false,
  nestedOptIn: true,
  presentSetsRunnable: true,
  supportedKvmFeatures: 0xffffffff,
} as const satisfies HostEraFacts;

// Each era's fixes on top of the previous era's (spec §7), so that a profile reads as
// "what changed" and a fix appears in exactly one place.
const T_4_19: HostToggles = { ...OFF, pending_exception_gate: true, no_df_cancellation: false };
// 2a18b7e7cd88 (page ready only after not-present) went into the second KVM pull for v5.8-rc1.
const T_5_8: HostToggles = { ...T_4_19, no_df_cancellation: true, can_deliver_cleanup: true, interrupt_page_ready: true, page_ready_needs_not_present: true };
const T_5_13: HostToggles = { ...T_5_8, reject_without_lapic: true, lapic_enabled_check: true };
const T_6_6: HostToggles = { ...T_5_13, nonzero_token: true, paging_check: true, nested_payload: true };
const T_CURRENT: HostToggles = { ...T_6_6, protected_state_cpl0: true, keep_queue_on_cr0_pg: true, userspace_zero_pv_msr: true };

const PROFILES: Record<HostProfileName, ProfileDef> = {
  'linux-3.0': {
    description: 'v3.0: the original design; page ready as #PF reason 2; reserved mask 0x3c; no pending-exception gate (two #PFs can become #DF)',
    facts: {
      ...OLD_FACTS,
      version: 'v3.0',
      hostEra: 'v2.6.38',
      completedHasPfn: true,
      readyTracedBeforeWakeAllToken: true,
      hashPre47: true,
      nestedOptIn: false,
      presentSetsRunnable: false,
      supportedKvmFeatures: ALL_FEATURES_EXCEPT(KVM_FEATURE.ASYNC_PF_VMEXIT, KVM_FEATURE.ASYNC_PF_INT),
    },
    toggles: { ...OFF },
  },
  'linux-4.19': {
    description: 'v4.19: page ready as #PF reason 2 with the 2017 #DF cancellation; mask 0x38 (bit 2 = nested delivery); no INT/ACK',
    facts: {
      ...OLD_FACTS,
      version: 'v4.19',
      hostEra: 'v4.13',
      hashPre47: false,
      nestedOptIn: true,
      supportedKvmFeatures: ALL_FEATURES_EXCEPT(KVM_FEATURE.ASYNC_PF_INT),
    },
    toggles: T_4_19,
  },
  'linux-5.8': {
    description: 'v5.8: page ready as an interrupt with token slot and ACK, only after an injected not-present (2a18b7e7cd88); before the Sept 2020 LAPIC check',
    facts: V58_FACTS,
    toggles: T_5_8,
  },
  'linux-5.13': {
    description: 'v5.13: PV CPUID enforcement, LAPIC-less rejection, no page ready into a disabled LAPIC',
    facts: { ...V58_FACTS, version: 'v5.13', pvCpuidEnforcement: true },
    toggles: T_5_13,
  },
  'linux-6.6': {
    description: 'v6.6 as released: non-zero tokens, no delivery with CR0.PG=0, nested payload; CR0.PG toggles still clear the queue',
    facts: { ...V58_FACTS, version: 'v6.6', pvCpuidEnforcement: true },
    toggles: T_6_6,
  },
  current: {
    description: 'current (~v6.19 with the 2024-2025 fixes): protected state as CPL 0, queue kept over CR0.PG toggles',
    facts: { ...V58_FACTS, version: 'v6.19', layout: 'v6.7', repeatedFaultTracepoint: 'kvm_async_pf_repeated_fault', pvCpuidEnforcement: true },
    toggles: T_CURRENT,
  },
};

/** Description and kernel version of every profile (for `apf list`). */
export const HOST_PROFILE_INFO: Record<HostProfileName, { description: string; version: string }> = Object.fromEntries(
  HOST_PROFILES.map((n) => [n, { description: PROFILES[n].description, version: PROFILES[n].facts.version }]),
) as Record<HostProfileName, { description: string; version: string }>;

/** The toggle values a profile starts from (before overrides). */
export function profileToggles(name: HostProfileName): HostToggles {
  return PROFILES[name].toggles;
}

/** Whether `name` is a host profile. */
export const isHostProfileName = (name: string): name is HostProfileName => (HOST_PROFILES as readonly string[]).includes(name);

/** Whether `name` is a host toggle. */
export const isHostToggle = (name: string): name is HostToggle => Object.prototype.hasOwnProperty.call(HOST_TOGGLES, name);

/**
 * The profile `name` with `toggles` applied on top. Unknown toggle names are ignored only if
 * they are `undefined`; a name that is not a toggle throws (a configuration error, not guest input).
 */
export function resolveHostProfile(name: HostProfileName, toggles?: Partial<Record<HostToggle, boolean>>): ResolvedHostProfile {
  const def = PROFILES[name];
  if (def === undefined) throw new RangeError(`unknown host profile '${String(name)}'`);
  const t: Record<HostToggle, boolean> = { ...def.toggles };
  if (toggles !== undefined) {
    for (const [k, v] of Object.entries(toggles)) {
      if (!isHostToggle(k)) throw new RangeError(`unknown host toggle '${k}'`);
      if (v !== undefined) t[k] = v;
    }
  }
  const interrupt = t.interrupt_page_ready;
  return {
    ...def.facts,
    name,
    toggles: t,
    pageReady: interrupt ? 'interrupt' : 'pf',
    enReservedMask: reservedMaskFor(def.facts.hostEra) | (interrupt ? 0n : KVM_ASYNC_PF_DELIVERY_AS_INT),
    pvEnabledMask: interrupt ? KVM_ASYNC_PF_ENABLED | KVM_ASYNC_PF_DELIVERY_AS_INT : KVM_ASYNC_PF_ENABLED,
  };
}
