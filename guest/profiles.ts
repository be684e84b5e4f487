/**
 * Guest profiles (which kernel's kvm.c and #PF entry) and toggles (every knob that differed
 * historically). Spec references (§) are to docs/abi.md.
 *
 * A profile is a set of era facts (struct layout, how "page ready" arrives, which wait exists)
 * plus default toggle values, both written as an era chain like the host's (host/profiles.ts): each
 * era is the previous era plus what changed. A test can run any profile
 * with exactly one knob changed: `{profile: 'current', toggles: {page_ready_eoi: false}}`.
 */
import type { ApfLayoutName } from '../shared-abi/layout';

export const GUEST_PROFILE_NAMES = ['linux-5.2', 'linux-5.2-user-only', 'linux-5.8', 'linux-5.9', 'linux-6.6', 'current'] as const;
export type GuestProfileName = (typeof GUEST_PROFILE_NAMES)[number];

/** How "page ready" reaches the guest. */
export type PageReadyVia = 'pf_reason' | 'interrupt';
/** Which wait the #PF hook uses for NOT_PRESENT. */
export type WaitKind = 'halt_capable' | 'schedule';
/** Where the async PF hook sits. */
export type PfEntryKind = 'idt_hook' | 'exc_page_fault';

/** Era facts of a profile (not toggles: these define the profile). */
export interface GuestProfileFacts {
  readonly description: string;
  /** Kernel version the profile models. */
  readonly version: string;
  /** spec §2: struct kvm_vcpu_pv_apf_data layout. */
  readonly layout: ApfLayoutName;
  /** spec §2.3: where the per-CPU enabled flag lives: offset 64 of the shared area, or a private per-CPU bool. */
  readonly enabledFlag: 'shared_area' | 'percpu';
  /** spec §4.3: G-5.2 hooks the IDT #PF vector; v5.8+ calls the hook from exc_page_fault. */
  readonly pfEntry: PfEntryKind;
  /** spec §4.3/§4.8: page ready as #PF reason 2 (≤5.8) or as the 0xf3 interrupt (5.9+). */
  readonly pageReady: PageReadyVia;
  /** spec §4.4/§4.5: halt-capable wait (≤5.7) or schedule-only (5.8+). */
  readonly wait: WaitKind;
  /** spec §4.2: the CPUID bit the per-CPU init requires. */
  readonly requiredFeature: 'ASYNC_PF' | 'ASYNC_PF_INT';
  /**
   * The v5.8 __kvm_handle_async_pf switched on the exact flag values: 1 waits, 2 wakes, anything
   * else is an ordinary #PF. From v5.9 any non-zero value is async and bit 0 decides.
   */
  readonly exactFlags?: boolean;
  /** True where the spec marks the profile's behaviour [unverified]. */
  readonly unverified?: string;
}

// Each era's facts are the previous era's plus what changed, so a profile reads as "what changed".
const F_5_2 = {
  version: '5.2',
  layout: 'v2.6.38',
  enabledFlag: 'shared_area',
  pfEntry: 'idt_hook',
  pageReady: 'pf_reason',
  wait: 'halt_capable',
  requiredFeature: 'ASYNC_PF',
} as const satisfies Omit<GuestProfileFacts, 'description'>;
const F_5_8 = { ...F_5_2, version: '5.8', layout: 'v5.8', pfEntry: 'exc_page_fault', wait: 'schedule', exactFlags: true } as const;
const F_5_9 = { ...F_5_8, version: '5.9', pageReady: 'interrupt', requiredFeature: 'ASYNC_PF_INT', exactFlags: false } as const;
const F_6_6 = { ...F_5_9, version: '6.6' } as const;
const F_CURRENT = { ...F_6_6, version: '6.8', layout: 'v6.7', enabledFlag: 'percpu' } as const;

export const GUEST_PROFILES: Readonly<Record<GuestProfileName, GuestProfileFacts>> = {
  'linux-5.2': {
    description:
      'v5.2 guest (G-5.2): IDT-hooked async_page_fault, page ready as #PF reason 2, SEND_ALWAYS on CONFIG_PREEMPT, halt-capable wait woken by a reschedule IPI, 68-byte layout with `reason`, CR2 read late (before the v5.3 entry fix)',
    ...F_5_2,
  },
  'linux-5.2-user-only': {
    description: 'linux-5.2 with only the SEND_ALWAYS bit dropped (Andy Lutomirski, Mar 2020, spec §7.5): the host never injects at CPL 0',
    ...F_5_2,
  },
  'linux-5.8': {
    description:
      "v5.8 guest (Thomas Gleixner's rework, spec §7.6): hook called from exc_page_fault, user-only, panics on kernel-mode or IF=0 async #PF, schedule-only wait, page ready still via #PF reason 2",
    ...F_5_8,
    unverified: 'spec §8 q.6: that the v5.8 guest still woke on PAGE_READY via #PF is from memory',
  },
  'linux-5.9': {
    description:
      'v5.9 guest (b1d405751cd5, spec §7.9): page ready as the 0xf3 interrupt with token slot and ACK, INT written before EN, user-only, 68-byte flags/token/enabled layout',
    ...F_5_9,
  },
  'linux-6.6': {
    description: 'v6.6 guest: as linux-5.9 plus the Apr 2021 teardown fixes (§7.10) and the May 2022 dummy allocation outside the lock (§7.12); 68-byte layout',
    ...F_6_6,
  },
  current: {
    description: 'current guest (spec §2.3/§4): 64-byte flags/token layout, private per-CPU enabled bool, everything else as linux-6.6',
    ...F_CURRENT,
  },
};

/**
 * Guest toggles; `true` means the behaviour named is present, and for every fix that is the fixed
 * kernel's behaviour (one polarity, as the host's toggles). The others are build/boot options.
 */
export const GUEST_TOGGLES = {
  config_preempt: 'CONFIG_PREEMPT: kernel code is preemptible (interrupt-return and preempt_enable preemption); ≤5.7 guests then set SEND_ALWAYS',
  preempt_count: 'CONFIG_PREEMPT_COUNT: preempt_disable/spin_lock count in preempt_count (implied by config_preempt)',
  preempt_rt: 'PREEMPT_RT: spinlock_t sleeps; allocation under a raw spinlock is a "sleeping function called from invalid context" bug',
  dummy_alloc_outside_lock: '0547758a6de3 (May 2022): the wake path allocates its dummy node outside the raw bucket lock',
  wake_all_frees_dummies: 'not in Linux: wake-all frees the dummy nodes it unlinks (the leak fix Sean Christopherson proposed)',
  page_ready_eoi: 'Sept 2020 "don\'t forget to ACK async PF IRQ": the page-ready handler EOIs the LAPIC first',
  teardown_boot_cpu: '8b79feffeca2 (Apr 2021): suspend tears APF down on the boot CPU too (syscore ops)',
  disable_apf_on_crash: '3d6b84132d2a (Apr 2021): the crash/kdump shutdown disables APF on the crashing CPU',
  cr2_read_at_entry: 'v5.3 CR2 fix: CR2 is read first thing in the #PF entry (false: read after the flags, as v5.2 did)',
  nmi_saves_cr2: 'since 2012: the NMI handler saves CR2 at entry and restores it if a fault inside the NMI changed it',
  kvmapf: 'boot parameter kvmapf (false = `no-kvmapf`): no async PF at all',
  send_always: 'set KVM_ASYNC_PF_SEND_ALWAYS in MSR_KVM_ASYNC_PF_EN (default: linux-5.2 with config_preempt)',
  int_before_en: 'write MSR_KVM_ASYNC_PF_INT before MSR_KVM_ASYNC_PF_EN (false: the wrong order, vector 0 until INT is written)',
  apf_panics: 'v5.8+: panic on an async #PF with IF=0 or in kernel mode (false: the v5.2 behaviour of waiting)',
  pf_vmexit: 'set KVM_ASYNC_PF_DELIVERY_AS_PF_VMEXIT when CPUID has KVM_FEATURE_ASYNC_PF_VMEXIT (Linux does)',
  page_ready_zero_token: 'the page-ready interrupt handler writes 0 to the token slot after reading it (every Linux does; false: a guest that never frees the slot)',
  page_ready_ack: 'the page-ready interrupt handler writes MSR_KVM_ASYNC_PF_ACK (every Linux does; false: a guest that never ACKs)',
} as const;
export type GuestToggle = keyof typeof GUEST_TOGGLES;
export type GuestToggles = Readonly<Record<GuestToggle, boolean>>;
export const GUEST_TOGGLE_NAMES = Object.keys(GUEST_TOGGLES) as GuestToggle[];

/** The toggles a profile sets; send_always and preempt_count are derived unless given. */
type EraToggles = Omit<GuestToggles, 'send_always' | 'preempt_count'>;

// Each era's toggles are the previous era's plus its own fixes (a fix appears in exactly one place).
const T_5_2: EraToggles = {
  config_preempt: true,
  preempt_rt: false,
  dummy_alloc_outside_lock: false,
  wake_all_frees_dummies: false,
  page_ready_eoi: true,
  teardown_boot_cpu: false,
  disable_apf_on_crash: false,
  cr2_read_at_entry: false,
  nmi_saves_cr2: true,
  kvmapf: true,
  int_before_en: true,
  apf_panics: false,
  pf_vmexit: true,
  page_ready_zero_token: true,
  page_ready_ack: true,
};
/** v5.3: CR2 read first in the #PF entry; v5.8: the hook moves into exc_page_fault and panics on a kernel-mode or IF=0 async #PF. */
const T_5_8: EraToggles = { ...T_5_2, cr2_read_at_entry: true, apf_panics: true };
const T_5_9: EraToggles = { ...T_5_8 };
/** Apr 2021 teardown fixes and the May 2022 dummy allocation outside the lock. */
const T_6_6: EraToggles = { ...T_5_9, dummy_alloc_outside_lock: true, teardown_boot_cpu: true, disable_apf_on_crash: true };
const T_CURRENT: EraToggles = { ...T_6_6 };

interface GuestEra {
  readonly toggles: EraToggles;
  /** The kernel sets SEND_ALWAYS when built with CONFIG_PREEMPT (the v5.2 driver did). */
  readonly sendAlwaysWithPreempt: boolean;
}

const ERAS: Readonly<Record<GuestProfileName, GuestEra>> = {
  'linux-5.2': { toggles: T_5_2, sendAlwaysWithPreempt: true },
  // linux-5.2 with the SEND_ALWAYS bit dropped: the only difference.
  'linux-5.2-user-only': { toggles: T_5_2, sendAlwaysWithPreempt: false },
  'linux-5.8': { toggles: T_5_8, sendAlwaysWithPreempt: false },
  'linux-5.9': { toggles: T_5_9, sendAlwaysWithPreempt: false },
  'linux-6.6': { toggles: T_6_6, sendAlwaysWithPreempt: false },
  current: { toggles: T_CURRENT, sendAlwaysWithPreempt: false },
};

/** A profile with every toggle decided. */
export interface ResolvedGuestConfig {
  readonly profile: GuestProfileName;
  readonly facts: GuestProfileFacts;
  readonly toggles: GuestToggles;
  /** Toggles the caller set explicitly (for reports). */
  readonly overridden: readonly GuestToggle[];
}

export function isGuestProfileName(s: string): s is GuestProfileName {
  return (GUEST_PROFILE_NAMES as readonly string[]).includes(s);
}

/**
 * Decide every toggle: explicit values win; `preempt_count` defaults to `config_preempt`
 * (CONFIG_PREEMPT selects PREEMPT_COUNT; turning it off under CONFIG_PREEMPT is rejected);
 * `send_always` defaults to "CONFIG_PREEMPT in an era that set it" (linux-5.2).
 */
export function resolveGuestProfile(name: GuestProfileName, toggles: Partial<Record<GuestToggle, boolean>> = {}): ResolvedGuestConfig {
  if (!isGuestProfileName(name)) throw new RangeError(`unknown guest profile '${String(name)}' (known: ${GUEST_PROFILE_NAMES.join(', ')})`);
  for (const k of Object.keys(toggles)) {
    if (!(k in GUEST_TOGGLES)) throw new RangeError(`unknown guest toggle '${k}' (known: ${GUEST_TOGGLE_NAMES.join(', ')})`);
  }
  const era = ERAS[name];
  const base = era.toggles;
  const configPreempt = toggles.config_preempt ?? base.config_preempt;
  const preemptCount = toggles.preempt_count ?? configPreempt;
  if (configPreempt && !preemptCount) throw new RangeError('guest toggles: config_preempt requires preempt_count (CONFIG_PREEMPT selects CONFIG_PREEMPT_COUNT)');
  const sendAlways = toggles.send_always ?? (era.sendAlwaysWithPreempt && configPreempt);
  const resolved: GuestToggles = {
    ...base,
    ...toggles,
    config_preempt: configPreempt,
    preempt_count: preemptCount,
    send_always: sendAlways,
  };
  const overridden = GUEST_TOGGLE_NAMES.filter((k) => toggles[k] !== undefined);
  return { profile: name, facts: GUEST_PROFILES[name], toggles: resolved, overridden };
}
