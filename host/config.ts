/**
 * Host configuration: profiles (which kernel's KVM), the historical fixes as toggles, and the
 * host memory model. Spec references (§) are to docs/abi.md.
 *
 * A profile is a set of toggle values plus era facts (struct layout, reserved-bit mask, how
 * "page ready" is delivered). Every fix in spec §7 is a toggle, so that a test can run the
 * current host with exactly one fix reverted: `{profile: 'current', toggles: {nonzero_token: false}}`.
 */

/** The named host profiles. `current` is the newest behaviour in the spec (~v6.19 with the 2025 fixes). */
import type { DesignName } from '../shared-abi/designs';
export const HOST_PROFILES = ['linux-3.0', 'linux-4.19', 'linux-5.8', 'linux-5.13', 'linux-6.6', 'current'] as const;
export type HostProfileName = (typeof HOST_PROFILES)[number];

/**
 * Host toggles. `true` means the behaviour named is present. For fixes, the profile that
 * predates the fix has it `false`.
 */
export const HOST_TOGGLES = {
  /** 2a266f23550b: no async PF while an exception is pending or an event needs re-injection (spec §3.5.1 step 1). */
  pending_exception_gate: 'no async #PF while an exception is pending (2a266f23550b)',
  /** 84b09f33a5de (v5.8) reverted 9a6e7c39810e (v4.14–v5.7), the #DF "fix" that cancelled a pending not-present when page-ready was injected (spec §7.3). Off: the cancellation (a bug). */
  no_df_cancellation: 'no #DF cancellation of a pending not-present (84b09f33a5de reverted the 2017 9a6e7c39810e; off: the cancellation, a bug)',
  /** June 2019: kvm_can_deliver_async_pf + HLT pass-through falls back to sync (spec §7.4). */
  can_deliver_cleanup: 'the June 2019 delivery-condition cleanup (guest mode needs opt-in; HLT pass-through goes sync)',
  /** v5.8: page ready as an interrupt with ACK (DELIVERY_AS_INT required for any PV delivery) (spec §7.7). */
  interrupt_page_ready: 'page ready delivered as an interrupt with a token slot and ACK (v5.8)',
  /** 2a18b7e7cd88 (June 2020, v5.8-rc1): page ready only if not-present was injected, or wake-all (spec §7.8). */
  page_ready_needs_not_present: 'page ready only for faults whose not-present was injected (2a18b7e7cd88, v5.8-rc1)',
  /** Sept 2020: APF MSRs refused without an in-kernel LAPIC (spec §3.2 step 5). */
  reject_without_lapic: 'APF MSRs fail without an in-kernel LAPIC (Sept 2020)',
  /** 2f15d027c05f: dequeue only with the LAPIC software-enabled; enabling it re-raises APF_READY (spec §7.10). */
  lapic_enabled_check: 'no page ready into a disabled LAPIC; LAPIC enable re-raises APF_READY (2f15d027c05f)',
  /** Feb 2022: token never 0 (spec §7.11). */
  nonzero_token: 'APF token never 0 (Feb 2022)',
  /** Feb 2022: no async PF delivery with CR0.PG=0 (spec §7.11). */
  paging_check: 'no async #PF delivered while CR0.PG=0 (Feb 2022)',
  /** ~v6.1: nested async #PF as an exception VM-exit with payload (else nested_apf_token) (spec §5.1). */
  nested_payload: 'nested async #PF as exception-VM-exit payload (~v6.1) instead of nested_apf_token',
  /** b9595d1ddef8: protected guest state counts as CPL 0 (spec §7.16). */
  protected_state_cpl0: 'protected guest state (SEV-ES/SNP/TDX) treated as CPL 0 (b9595d1ddef8)',
  /** ab4e41eb9fab: CR0.PG toggles (SMI) keep the queue; PG 0->1 re-raises APF_READY (spec §7.17). */
  keep_queue_on_cr0_pg: 'CR0.PG toggles keep the async PF queue (ab4e41eb9fab)',
  /** Honour the guest's SEND_ALWAYS bit (false = Vitaly's unmerged "ignore SEND_ALWAYS" host). */
  honour_send_always: 'honour KVM_ASYNC_PF_SEND_ALWAYS (false: treat every guest as user-only)',
  /** Every real host: not-present is injected at CPL 0 only with SEND_ALWAYS. Off: a deliberately buggy host that injects at CPL 0 regardless. */
  cpl0_needs_send_always: 'inject async #PF at CPL 0 only when the guest set SEND_ALWAYS (off: BUGGY, inject at CPL 0 regardless)',
  /**
   * The APF area cache (`apf.data`) is checked on every use and refreshed after a memslot change
   * (generation) or an MMU-notifier invalidation (page migrated or unmapped). Off: a cache that is
   * never invalidated, whose writes go through the translation taken at the EN write (docs/caches.md).
   */
  gfn_cache_refresh: 'the APF area cache is checked and refreshed on use (memslot generation, MMU-notifier invalidation); off: BUGGY, never invalidated',
  /** The APF area cache holds no long-term pin on its host page, so the page can migrate while cached (docs/caches.md). Off: the pinned-cache variant. */
  gfn_cache_unpinned: 'the APF area cache holds no pin on its host page (off: it pins it, page migration is refused while cached and done when the cache lets go)',
  /**
   * 44dd0f5732b4 (v6.12): userspace (KVM_GET/SET_MSRS) may read, and write 0 to, an advertised PV
   * MSR whose CPUID bit the guest lacks under KVM_CAP_ENFORCE_PV_FEATURE_CPUID; the guest's own
   * RDMSR/WRMSR still #GPs. Off: the host-initiated access fails like the guest's.
   */
  userspace_zero_pv_msr: 'userspace may read, and write 0 to, an advertised PV MSR the guest\'s CPUID lacks (44dd0f5732b4, v6.12)',
} as const;
export type HostToggle = keyof typeof HOST_TOGGLES;
export type HostToggles = Readonly<Record<HostToggle, boolean>>;

/** How a guest page is backed on the host. */
export type PageBacking =
  /** In host RAM: accesses need no fault-in. */
  | 'resident'
  /** Swapped out: fault-in reads it back from swap. */
  | 'swapped'
  /** Not yet on this host (post-copy migration): fault-in fetches it from the source. */
  | 'remote'
  /** Fault-in fails (truncated DAX file, poisoned page, failed remote fetch). */
  | 'failing';

/** A latency distribution in nanoseconds. */
export type Latency =
  | { readonly kind: 'fixed'; readonly ns: number }
  | { readonly kind: 'uniform'; readonly min: number; readonly max: number }
  | { readonly kind: 'exponential'; readonly mean: number; readonly max?: number };

export interface PageRangeConfig {
  /** First guest frame number and count. */
  readonly gfn: number;
  readonly count?: number;
  readonly backing: PageBacking;
}

export interface HostMemoryConfig {
  /** Backing of pages not listed in `pages` (default 'resident'). */
  readonly defaultBacking?: PageBacking;
  readonly pages?: readonly PageRangeConfig[];
  /** Fault-in latency of a swapped page (default fixed 100 µs). */
  readonly swapLatency?: Latency;
  /** Fault-in latency of a remote page (default fixed 1 ms). */
  readonly remoteLatency?: Latency;
  /** Latency before a failing fault-in reports its error (default fixed 100 µs). */
  readonly failLatency?: Latency;
  /** Host RAM available to the guest, in pages; beyond it the least recently used page is evicted to swap. */
  readonly limitPages?: number;
  /** Explicit evictions: at virtual time `t`, swap out these frames. */
  readonly evictions?: readonly { readonly t: number; readonly gfns: readonly number[] }[];
  /**
   * Memslots over guest RAM (default: one slot over all of it). Each is a frame range of the RAM the
   * VM was created with, mapped 1:1; frames outside every slot are not RAM (MMIO). An explicit layout
   * puts the host's translation records on the trace from the start (docs/caches.md).
   */
  readonly memslots?: readonly { readonly gfn: number; readonly count: number }[];
  /** Host frames beyond guest RAM the host can use for page migration and new memory (default 64). */
  readonly spareFrames?: number;
}

/** The VMM's view of the VM: what userspace (QEMU) configures. */
export interface VmConfig {
  readonly profile: HostProfileName;
  /** Async-PF design (host/designs; default `current`). */
  readonly design?: DesignName;
  readonly toggles?: Partial<Record<HostToggle, boolean>>;
  /** EAX of CPUID 0x40000001 exposed to the guest (bit numbers from shared-abi/cpuid.ts). */
  readonly kvmFeatures: number;
  /** KVM_CAP_ENFORCE_PV_FEATURE_CPUID (spec §1.4). */
  readonly enforcePvCpuid?: boolean;
  /** In-kernel LAPIC (default) or userspace LAPIC (APF MSRs fail, spec §3.2 step 5). */
  readonly lapic?: 'in-kernel' | 'userspace';
  /** KVM_X86_DISABLE_EXITS_HLT (spec §3.5.1 step 2). */
  readonly hltPassthrough?: boolean;
  /** SEV-ES/SNP/TDX: CPL not readable by the host (spec §3.5.2 step 2). */
  readonly protectedState?: boolean;
  /** Cost of a VM exit round trip, ns (default 1000). */
  readonly exitCostNs?: number;
  readonly memory?: HostMemoryConfig;
  /**
   * Probability that allocating an async PF work item fails (GFP_NOWAIT in kvm_setup_async_pf,
   * GFP_ATOMIC in kvm_async_pf_wakeup_all), drawn from the `host.alloc` PRNG stream. Default never.
   */
  readonly asyncAllocFailure?: { readonly numerator: number; readonly denominator: number };
  /**
   * Time from `schedule_work` to the async-PF worker starting its fault-in, ns (default 0: at
   * once). While it has not started, a queue clear cancels the item and its page is never fetched;
   * once it runs, the clear waits for the page-in (cancel_work_sync).
   */
  readonly workerStartNs?: number;
  /**
   * Initial async-PF token counter (`apf.id`) of every vCPU (default 0): lets a scenario reach the
   * counter's wrap-around without a billion faults.
   */
  readonly apfTokenCounter?: number;
  /** Default time a vCPU spends in SMM per KVM_SMI before RSM, ns (default 20000). */
  readonly smmNs?: number;
  /**
   * Schedule perturbation, off by default (0): every run-loop iteration of a vCPU is scheduled up
   * to this many ns later than its cost, uniformly, drawn from the PRNG stream `host.jitter`. Models
   * the host scheduling vCPU threads unevenly, so that interleavings of the vCPUs at instruction
   * boundaries vary with the seed (the fuzzer's schedule knob).
   */
  readonly stepJitterNs?: number;
}
