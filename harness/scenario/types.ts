/**
 * A scenario after loading: every default filled in, every unit converted (integer ns, bytes,
 * `Gva`s), task programs in the guest's own types. This is what the machine builder and the
 * runner consume; `load.ts` produces it from a file, `overrides.ts` applies command-line changes.
 */
import type { DesignName } from '../../shared-abi/designs';
import type { HostProfileName, HostToggle, Latency, PageBacking } from '../../host/config';
import type { KvmFeatureName } from '../../shared-abi/cpuid';
import type { TaskSpec } from '../../guest/program';
import type { BarePageReadyPolicy, BarePfPolicy, BareStep } from '../../guest/bare/script';
import type { CheckerSetting } from '../checkers';
import type { TraceSource } from '../../sim/trace';
import type { FieldMatch, PageRef, InjectionInput, Outcome, ActionName } from './schema';
import type { NestedSpec } from './nested';
import type { GUEST_KNOBS, HOST_KNOBS, KnobValues } from './knobs';

export type { FieldMatch, PageRef, Outcome, ActionName };

/** The guest: profile, toggles and the knobs of `GUEST_KNOBS` under `GuestKernelOptions`' names. */
export type GuestSpec = {
  readonly profile: string;
  readonly toggles: Readonly<Record<string, boolean>>;
} & KnobValues<typeof GUEST_KNOBS>;

/** The host: profile, toggles and the knobs of `HOST_KNOBS` under `VmConfig`'s names. */
export type HostSpec = {
  readonly profile: HostProfileName;
  readonly toggles: Readonly<Partial<Record<HostToggle, boolean>>>;
} & KnobValues<typeof HOST_KNOBS>;

export interface MachineSpec {
  readonly vcpus: number;
  readonly memoryBytes: number;
  readonly guest: GuestSpec;
  readonly host: HostSpec;
  /** KVM CPUID features: 'auto' = what the host profile offers. */
  readonly cpuid: 'auto' | readonly KvmFeatureName[];
  /** The guest kernel is an L1 hypervisor running these nested guests (docs/nested.md). */
  readonly nested?: NestedSpec;
  /** Async-PF design of host and guest (docs/designs.md); absent = `current`. */
  readonly design?: DesignName;
}

export interface HostMemorySpec {
  readonly defaultBacking?: PageBacking;
  readonly pages: readonly { readonly ref: PageRef; readonly backing: PageBacking }[];
  readonly swapLatency?: Latency;
  readonly remoteLatency?: Latency;
  readonly failLatency?: Latency;
  readonly limitPages?: number;
  readonly evictions: readonly { readonly t: number; readonly pages: readonly PageRef[] }[];
  /** Memslots over guest RAM, counts filled in (undefined: one slot over all RAM). */
  readonly memslots?: readonly { readonly gfn: number; readonly count: number }[];
}

/** A trace record pattern. */
export interface Match {
  readonly event: string;
  readonly cpu?: number;
  readonly src?: TraceSource;
  readonly fields: Readonly<Record<string, FieldMatch>>;
}

type Timing = 'at' | 'on' | 'after' | 'nth' | 'every';
/** What an injected event does (the scenario's `do` and its parameters). */
export type Action = DistributiveOmit<InjectionInput, Timing>;
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

export type Trigger = { readonly kind: 'at'; readonly t: number } | { readonly kind: 'on'; readonly match: Match; readonly nth: number; readonly every: boolean };

export interface Injection {
  /** Position in the scenario's `events` list (for labels and messages). */
  readonly index: number;
  readonly trigger: Trigger;
  /** Delay after the trigger, ns. */
  readonly after: number;
  readonly action: Action;
}

export interface CountExpectation {
  readonly event: string;
  readonly min: number;
  readonly max: number;
  readonly cpu?: number;
  readonly src?: TraceSource;
  readonly fields: Readonly<Record<string, FieldMatch>>;
  /** Count only records with `from <= t < to` (virtual ns). */
  readonly window?: { readonly from: number; readonly to: number };
}

/**
 * The time from each record matching `from` to the first later record matching `to` with the same
 * captures (`"$name"`, bound per pair by `from`) lies in [min, max]; with `max`, every `from` must
 * be followed by its `to`.
 */
export interface LatencyExpectation {
  readonly from: Match;
  readonly to: Match;
  readonly min?: number;
  readonly max?: number;
}

export interface Expectations {
  readonly outcome: Outcome;
  readonly panic?: string;
  readonly counts: readonly CountExpectation[];
  readonly sequence: readonly Match[];
  readonly absent: readonly Match[];
  /** Latencies between matched events (absent: none). */
  readonly latency?: readonly LatencyExpectation[];
  /** Checkers that must stay quiet; undefined = every enabled checker not in `fire`. */
  readonly pass?: readonly string[];
  readonly fire: readonly string[];
}

/** The bare-metal scripted guest: guest/bare's script and policies. */
export interface BareSpec {
  readonly script: readonly BareStep[];
  readonly pf?: Partial<BarePfPolicy>;
  readonly pageReady?: Partial<BarePageReadyPolicy>;
  readonly apfArea?: number;
}

export interface Budget {
  readonly maxEvents: number;
  readonly maxTime: number;
}

/** Another run of the same scenario: profiles/toggles changed, its own expectations and verdict. */
export interface VariantSpec {
  readonly description?: string;
  readonly guest: { readonly profile?: string; readonly toggles: Readonly<Record<string, boolean>> };
  readonly host: { readonly profile?: HostProfileName; readonly toggles: Readonly<Partial<Record<HostToggle, boolean>>> };
  /** Replaces the scenario's events when given. */
  readonly events?: readonly Injection[];
  readonly expect: Expectations;
  readonly verdict: { readonly pass?: string; readonly fail?: string };
}

/** The header of a scenario that reproduces a historical bug. */
export interface Regression {
  readonly bug: string;
  readonly fixedBy: string;
  readonly shows: string;
  readonly spec?: string;
  /** Named variants; "buggy" is the run with the bug present (the scenario itself is the fixed run). */
  readonly variants: Readonly<Record<string, VariantSpec>>;
}

export interface Scenario {
  /** The file it came from, as the user named it (undefined for scenarios built in code). */
  readonly file?: string;
  readonly name: string;
  readonly description?: string;
  readonly notes: readonly string[];
  readonly seed: number | string;
  readonly machine: MachineSpec;
  readonly hostMemory: HostMemorySpec;
  readonly tasks: readonly TaskSpec[];
  readonly bare?: BareSpec;
  readonly events: readonly Injection[];
  readonly expect: Expectations;
  readonly verdict: { readonly pass?: string; readonly fail?: string };
  readonly regression?: Regression;
  /** The variant this scenario was turned into (`applyVariant`), if any. */
  readonly variant?: string;
  readonly checkers: Readonly<Record<string, CheckerSetting>>;
  readonly budget: Budget;
  /** Things that are allowed but probably not meant (printed unless --quiet). */
  readonly warnings: readonly string[];
}

export const DEFAULTS = {
  seed: 1,
  vcpus: 1,
  memoryBytes: 64 * 1024 * 1024,
  guestProfile: 'current',
  hostProfile: 'current' as HostProfileName,
  maxEvents: 5_000_000,
  maxTime: 10_000_000_000,
} as const;
