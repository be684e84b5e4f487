/**
 * The scripted bare-metal guest's vocabulary (kvm-unit-tests style): raw operations, the
 * handler policies, and the log of what the guest observed. Scenario files reference these
 * types; `BareGuest` (guest.ts) runs them.
 */
import type { Cpl } from '../../shared-abi/arch';
import { BARE_LOG_KINDS, type TraceFieldsOf } from '../../shared-abi/trace-catalogue';

/** When a `wait` step (or the #PF handler's wait) ends. */
export type BareCondition =
  /** Absolute virtual time (ns). */
  | { readonly kind: 'time'; readonly t: number }
  /** `count` page-ready events in total (interrupt or #PF reason 2, wake-alls included). */
  | { readonly kind: 'page_ready'; readonly count?: number }
  /** A page-ready event carrying `token`. */
  | { readonly kind: 'token'; readonly token: number }
  /** `count` wake-all page-ready events (token 0xffffffff) in total. */
  | { readonly kind: 'wake_all'; readonly count?: number }
  /** `count` "page not present" async #PFs in total. */
  | { readonly kind: 'async_pf'; readonly count?: number }
  /** `count` deliveries of `vector` (exception or interrupt) in total. */
  | { readonly kind: 'vector'; readonly vector: number; readonly count?: number };

/** One raw operation of a script. */
export type BareStep =
  /** WRMSR; a #GP is caught (the instruction is skipped) and logged. */
  | { readonly op: 'wrmsr'; readonly msr: number; readonly value: bigint | number }
  /** RDMSR; a #GP is caught and logged. */
  | { readonly op: 'rdmsr'; readonly msr: number }
  | { readonly op: 'cpuid'; readonly leaf: number; readonly subleaf?: number }
  | { readonly op: 'sti' }
  | { readonly op: 'cli' }
  /** Switch privilege: to 3 with IRET (IF kept), to 0 with SYSCALL (IF cleared by the entry). */
  | { readonly op: 'cpl'; readonly cpl: Cpl }
  /** Read or write 4 bytes at `addr` (identity mapped: the GVA is the GPA). */
  | { readonly op: 'touch'; readonly addr: number; readonly write?: boolean; readonly value?: number }
  | { readonly op: 'hlt' }
  | { readonly op: 'sti_hlt' }
  /** Busy loop (`compute`) for `ns`. */
  | { readonly op: 'spin'; readonly ns: number }
  /** Software-enable (SPIV 0x1ff, LVT timer in TSC-deadline mode) or disable the LAPIC. */
  | { readonly op: 'lapic'; readonly enable: boolean }
  /**
   * Program the LAPIC timer (after `lapic` enable): `periodic` (LVT timer mode 1, divide by 1,
   * initial count `periodNs`: one interrupt on `vector` every period, KVM never faster than
   * 200 µs), `oneshot` (one interrupt after `periodNs`), or `off` (LVT masked). While it is not
   * in TSC-deadline mode, waits do not arm a deadline: the timer's own interrupts wake them.
   */
  | { readonly op: 'lapic_timer'; readonly mode: 'periodic' | 'oneshot' | 'off'; readonly periodNs?: number; readonly vector?: number }
  /** Write CR0 with CR0.PG set (`enable`) or clear (protection stays on): memory is identity mapped, so only CR0.PG changes. */
  | { readonly op: 'paging'; readonly enable: boolean }
  /**
   * Load the script's IDT (`load: true`, the default state) or an empty one (LIDT with limit 0, as
   * early boot code or a kexec purgatory runs): with no gates every event escalates (#GP, #DF,
   * triple fault).
   */
  | { readonly op: 'idt'; readonly load: boolean }
  /**
   * Enable APF: WRMSR INT (when `int`, default true) then EN = area | ENABLED | the chosen bits.
   * `intAfterEn` writes them in the wrong order; `reserved` sets reserved EN bits on purpose.
   */
  | {
      readonly op: 'apf_enable';
      readonly sendAlways?: boolean;
      readonly int?: boolean;
      readonly vector?: number;
      readonly pfVmexit?: boolean;
      readonly intAfterEn?: boolean;
      readonly reserved?: bigint;
    }
  /** WRMSR EN := 0. */
  | { readonly op: 'apf_disable' }
  /** WRMSR ACK := 1. */
  | { readonly op: 'ack' }
  /** LAPIC EOI. */
  | { readonly op: 'eoi' }
  /** Store to the APF area's `flags` (offset 0) or `token` (offset 4). */
  | { readonly op: 'write_area'; readonly field: 'flags' | 'token'; readonly value: number }
  /** Load both fields of the APF area and log them. */
  | { readonly op: 'read_area' }
  /**
   * Wait until `until` holds or `timeoutNs` passes: with STI;HLT at CPL 0 (the LAPIC timer is
   * armed for the timeout when the LAPIC is on), by spinning at CPL 3 or with `mode: 'spin'`.
   */
  | { readonly op: 'wait'; readonly until: BareCondition; readonly timeoutNs?: number; readonly mode?: 'sti_hlt' | 'spin' }
  /** Change the handler policies from here on. */
  | { readonly op: 'policy'; readonly pf?: Partial<BarePfPolicy>; readonly pageReady?: Partial<BarePageReadyPolicy> }
  | { readonly op: 'log'; readonly message: string }
  | { readonly op: 'repeat'; readonly times: number; readonly body: readonly BareStep[] }
  /**
   * A label, no instruction: where a SIPI with `vector` starts this vCPU (its code at vector ×
   * 4096) after an INIT left it waiting for a SIPI. Only at the top level of a script.
   */
  | { readonly op: 'sipi_entry'; readonly vector: number };

export type BareStepOp = BareStep['op'];

/** What the #PF handler does. */
export interface BarePfPolicy {
  /** Zero the flags after reading them (Linux does; a guest that does not will misread the next #PF). */
  readonly clearFlags: boolean;
  /** On "page not present": wait right there with STI;HLT ('sti_hlt'), or return at once ('none'). */
  readonly wait: 'sti_hlt' | 'none';
  /** The wait ends on its own token, or on its token or any wake-all. */
  readonly waitFor: 'token' | 'token_or_wake_all';
  /** Give up waiting after this many ns (default 1 s). */
  readonly limitNs: number;
  /**
   * Steps the handler runs on "page not present", after reading CR2 and the flags and before its
   * wait (default none). They run at CPL 0 with IF clear, as the handler entered (an interrupt
   * gate): a `touch` of another cold page there is the nested case. Only the outermost #PF
   * handler runs them; a #PF taken inside them is handled without the body.
   */
  readonly body: readonly BareStep[];
}

/** What the page-ready interrupt handler does (in order: read token, zero, ACK, EOI). */
export interface BarePageReadyPolicy {
  readonly zeroToken: boolean;
  readonly ack: boolean;
  readonly eoi: boolean;
}

export const DEFAULT_PF_POLICY: BarePfPolicy = { clearFlags: true, wait: 'sti_hlt', waitFor: 'token_or_wake_all', limitNs: 1_000_000_000, body: [] };
export const DEFAULT_PAGE_READY_POLICY: BarePageReadyPolicy = { zeroToken: true, ack: true, eoi: true };

/** What an observation is about; each kind is traced as event `bare_<kind>` (the trace catalogue lists them). */
export type BareLogKind = (typeof BARE_LOG_KINDS)[number];

/** The fields of a `bare_<kind>` trace record: a log entry without `kind` and `t`. */
export type BareRecordFields = TraceFieldsOf<'bare_note'>;

/** One observation. Fields that do not apply are absent. */
export interface BareLogEntry {
  readonly seq: number;
  /** Virtual time (ns). */
  readonly t: number;
  readonly kind: BareLogKind;
  /** CPL of the context the observation is about (the interrupted one for deliveries). */
  readonly cpl: Cpl;
  /** Index of the script step running (-1 before the script). */
  readonly step: number;
  readonly vector?: number;
  readonly cr2?: number;
  readonly errorCode?: number;
  readonly flags?: number;
  readonly token?: number;
  /** RFLAGS.IF of the context the observation is about. */
  readonly if?: boolean;
  readonly msr?: number;
  readonly value?: number | bigint;
  readonly write?: boolean;
  /** The instruction completed (false: it raised #GP and was skipped). */
  readonly ok?: boolean;
  /** For `wait`: 'token', 'wake_all', 'condition' or 'timeout'; for #PF: 'not_present', 'page_ready', 'ordinary'. */
  readonly result?: string;
  readonly waitedNs?: number;
  readonly message?: string;
}

/**
 * Compile-time: every key of a log entry but `kind` and `t` is a field of the `bare_*` records,
 * with a type the catalogue accepts (guest.ts copies the entry into the record key by key).
 */
export type BareEntryFieldsCheck = [Exclude<keyof BareLogEntry, 'kind' | 't' | keyof BareRecordFields>] extends [never]
  ? Omit<BareLogEntry, 'kind' | 't'> extends BareRecordFields
    ? true
    : never
  : never;
export const BARE_ENTRY_FIELDS_MATCH: BareEntryFieldsCheck = true;
