/**
 * The trace catalogue: every event the host, the guest, the CPU, the async worker, the harness and
 * the checkers put on the trace bus, with its source, its fields and their types, and the kernel
 * tracepoint it stands for where there is one (`TRACEPOINTS` in tracepoints.ts holds the kernel's
 * own field lists and formats; this table points at it).
 *
 * It is data and types at once. `TraceEventName`, `TraceFieldsOf<E>` and `TraceRecordOf<E>` are
 * computed from it, so the trace bus's `emit` rejects an unknown event, a misspelt field or a value
 * of the wrong type at compile time, and consumers get records whose fields are typed. The
 * vocabulary scenario validation uses (harness/trace/vocabulary.ts) and docs/trace-events.md
 * (written by harness/tools/trace-events-doc.ts) are derived from it.
 *
 * The order of `fields` here is the order the trace hash reads a record's fields in (the emit site's
 * order does not matter): adding, removing or reordering an entry's fields, or changing its
 * sources, changes the hash of its records (docs/trace-format.md#the-trace-hash).
 */
import type { TracepointKey } from './tracepoints';

/** Which layer a record comes from. */
export type TraceSource = 'host' | 'guest' | 'cpu' | 'worker' | 'harness' | 'check';

/** Values a trace field may hold. */
export type TraceValue = number | bigint | string | boolean | null | undefined;

/** The value kinds a field may be declared with (`numeric`: a number or a bigint). */
export type TraceFieldKind = 'number' | 'bigint' | 'numeric' | 'string' | 'boolean';

/** One field of an event. */
export interface TraceFieldSpec {
  readonly kind: TraceFieldKind;
  /** For strings: the closed set of values (absent: any string). */
  readonly values?: readonly string[];
  /** The field is sometimes absent (or undefined). */
  readonly optional?: boolean;
  /** What the field holds, for the docs. */
  readonly doc?: string;
}

/** Where an event is listed in docs/trace-events.md. */
export type TraceSection = 'host' | 'memory' | 'guest' | 'cpu' | 'harness';

/** One event of the catalogue. */
export interface TraceEventSpec {
  /** The source(s) that emit it. */
  readonly src: TraceSource | readonly TraceSource[];
  readonly section: TraceSection;
  readonly fields: Readonly<Record<string, TraceFieldSpec>>;
  /** Records may carry further fields of any name and value (as few events as possible). */
  readonly open?: boolean;
  /** The kernel tracepoint it corresponds to (a key of `TRACEPOINTS`). */
  readonly tracepoint?: TracepointKey;
  /** When it is emitted, for the docs. */
  readonly when: string;
}

// --- field constructors (their literal types feed the computed record types) ------------------

const num = (doc?: string) => ({ kind: 'number', ...(doc === undefined ? {} : { doc }) }) as const;
const big = (doc?: string) => ({ kind: 'bigint', ...(doc === undefined ? {} : { doc }) }) as const;
const numeric = (doc?: string) => ({ kind: 'numeric', ...(doc === undefined ? {} : { doc }) }) as const;
const str = (doc?: string) => ({ kind: 'string', ...(doc === undefined ? {} : { doc }) }) as const;
const bool = (doc?: string) => ({ kind: 'boolean', ...(doc === undefined ? {} : { doc }) }) as const;
function oneOf<const V extends readonly string[]>(values: V, doc?: string): { readonly kind: 'string'; readonly values: V; readonly doc?: string } {
  return { kind: 'string', values, ...(doc === undefined ? {} : { doc }) };
}
function opt<const S extends TraceFieldSpec>(spec: S): S & { readonly optional: true } {
  return { ...spec, optional: true };
}

const GET_PAGE = { gva: num('cr2_or_gpa'), gfn: num() } as const;
const WHY_BLOCK = ['hlt', 'apf_halt'] as const;
const WHY_WAKE = ['kick', 'async_pf_completed'] as const;
const APIC_HOW = ['spiv', 'apic_base'] as const;
const NESTED_RESTORE = ['two_step', 'at_set_nested_state'] as const;
const POSTCOPY_VIA = ['vcpu_exit', 'listener'] as const;
const NESTED_EXIT_REASONS = ['exception', 'external_interrupt', 'nmi', 'hlt'] as const;
const SIG = ['SIGSEGV', 'SIGILL', 'SIGBUS'] as const;
const TASK_STATE = ['new', 'running', 'interruptible', 'uninterruptible', 'dead'] as const;

/** The fields of every `bare_<kind>` record: the scripted bare-metal guest's log entry (guest/bare). */
const BARE_FIELDS = {
  seq: num('entry number'),
  cpl: num(),
  step: num('script step (-1 before the script)'),
  vector: opt(num()),
  cr2: opt(num()),
  errorCode: opt(num()),
  flags: opt(num()),
  token: opt(num()),
  if: opt(bool()),
  msr: opt(num()),
  value: opt(numeric()),
  write: opt(bool()),
  ok: opt(bool()),
  result: opt(str()),
  waitedNs: opt(num()),
  message: opt(str()),
} as const;
const BARE_WHEN = "the scripted bare-metal guest's log (guest/bare), one record per entry";

/** The bare-metal guest's log kinds: each is logged as event `bare_<kind>`. */
export const BARE_LOG_KINDS = ['exception', 'interrupt', 'nmi', 'msr', 'cpuid', 'touch', 'area', 'wait', 'cpl', 'note', 'done'] as const;

/** The catalogue, in documentation order. */
export const TRACE_CATALOGUE = {
  // --- host (src host, or worker for the async worker) ---
  kvm_try_async_get_page: {
    src: 'host',
    section: 'host',
    fields: GET_PAGE,
    tracepoint: 'kvm_try_async_get_page',
    when: 'fault path, before the repeated-fault check (`gva` holds cr2_or_gpa)',
  },
  kvm_async_pf_repeated_fault: {
    src: 'host',
    section: 'host',
    fields: GET_PAGE,
    tracepoint: 'kvm_async_pf_repeated_fault',
    when: 'gfn already outstanding. Profiles up to `linux-6.6` emit it under its old name `kvm_async_pf_doublefault` (same fields): count both',
  },
  kvm_async_pf_doublefault: {
    src: 'host',
    section: 'host',
    fields: GET_PAGE,
    tracepoint: 'kvm_async_pf_doublefault',
    when: 'the old name of `kvm_async_pf_repeated_fault`',
  },
  kvm_async_pf_not_present: {
    src: 'host',
    section: 'host',
    fields: { token: num(), gva: num(), injected: bool(), halt: bool() },
    tracepoint: 'kvm_async_pf_not_present',
    when: 'first thing in kvm_arch_async_page_not_present, emitted even when it ends in an artificial halt; `injected`/`halt` say which (≤v5.2 profiles: both false when the reason write failed)',
  },
  kvm_async_pf_completed: {
    src: 'worker',
    section: 'host',
    fields: { address: num(), pfn: opt(num('old profiles only')), gva: num(), ok: bool('fault-in succeeded') },
    tracepoint: 'kvm_async_pf_completed',
    when: 'worker, after queueing on `done`',
  },
  kvm_async_pf_ready: {
    src: 'host',
    section: 'host',
    fields: { token: num(), gva: num(), notified: bool('token written and interrupt/#PF sent') },
    tracepoint: 'kvm_async_pf_ready',
    when: 'kvm_arch_async_page_present, emitted even when nothing is sent (wake-all: token 0xffffffff, gva 0)',
  },
  kvm_async_pf_wakeup_all: {
    src: 'host',
    section: 'host',
    fields: { queued: bool(), why: opt(oneOf(['done_not_empty', 'alloc_fail'], 'only when not queued')) },
    when: 'kvm_async_pf_wakeup_all called (on every successful enable)',
  },
  kvm_async_pf_enable: {
    src: 'host',
    section: 'host',
    fields: { msr_en_val: big(), gpa: num(), send_always: bool(), delivery_as_int: bool(), pf_vmexit: bool() },
    when: 'EN write that leaves APF enabled',
  },
  kvm_async_pf_enable_failed: {
    src: 'host',
    section: 'host',
    fields: { msr_en_val: big(), gpa: num() },
    when: 'EN write refused because the area is outside guest RAM (the value is stored anyway)',
  },
  kvm_async_pf_disable: {
    src: 'host',
    section: 'host',
    fields: { msr_en_val: big() },
    when: 'EN write that disables APF',
  },
  kvm_async_pf_clear_queue: {
    src: 'host',
    section: 'host',
    fields: {
      reason: oneOf(['disable', 'reset', 'cr0_pg', 'destroy', 'migrate'], '`migrate`: a fresh destination vCPU (the source\'s work stays behind, nobody waits)'),
      dropped: num('count'),
      tokens: str('comma list of hex tokens'),
    },
    when: 'kvm_clear_async_pf_completion_queue',
  },
  kvm_async_pf_cancel_work_sync: {
    src: 'host',
    section: 'host',
    fields: {
      token: num(),
      gfn: num(),
      outcome: oneOf(['cancelled', 'wait'], '`cancelled`: the worker had not started, its page is never fetched; `wait`: the worker is paging in, the clear waits for it'),
    },
    when: 'cancel_work_sync on one outstanding item inside kvm_clear_async_pf_completion_queue, right after `kvm_async_pf_clear_queue`',
  },
  kvm_async_pf_clear_queue_done: {
    src: 'host',
    section: 'host',
    fields: { reason: oneOf(['disable', 'reset', 'cr0_pg', 'destroy', 'migrate']), waited_ns: num() },
    when:
      'the last page-in a clear was waiting for has ended (its `kvm_async_pf_completed` comes just before): the clear returns and its caller (the WRMSR, INIT/RESET, the CR0 write, RSM, the teardown) carries on. Only when the clear had to wait',
  },
  kvm_async_pf_ack: {
    src: 'host',
    section: 'host',
    fields: { was_pending: bool() },
    when: 'ACK write with bit 0 (pageready_pending cleared, synchronous re-scan)',
  },
  kvm_async_pf_df_cancel: {
    src: 'host',
    section: 'host',
    fields: { token: num('page-ready dropped'), pending_token: num() },
    when: 'the 2017 #DF cancellation fired (buggy profiles only)',
  },
  kvm_async_pf_halt: {
    src: 'host',
    section: 'host',
    fields: { gfn: num(), why: oneOf(['undeliverable', 'repeated']) },
    when: 'KVM_REQ_APF_HALT consumed: artificial halt begins',
  },
  kvm_async_pf_unhalt: {
    src: 'host',
    section: 'host',
    fields: { why: oneOf(['event', 'page_present'], '`event`: woken from the block') },
    when: 'artificial halt ends',
  },
  kvm_async_pf_sync: {
    src: 'host',
    section: 'host',
    fields: { gfn: num(), gva: num(), why: oneOf(['prefetch', 'cannot_do', 'queue_full', 'alloc_fail']), ok: bool() },
    when: 'fault resolved synchronously, emitted when the page-in finished (the vCPU was blocked for the latency)',
  },
  kvm_page_fault: {
    src: 'host',
    section: 'host',
    fields: { fault_address: num(), error_code: num(), gva: num() },
    tracepoint: 'kvm_page_fault',
    when: 'EPT violation exit for a non-resident page',
  },
  kvm_mce_inject: {
    src: 'host',
    section: 'host',
    fields: { gfn: num(), gpa: num() },
    when: 'a fault-in returned an error (failing page): the VMM injects #MC (vector 18), filling MCE bank 0 with an action-required error at `gpa`',
  },
  kvm_async_pf_design: {
    src: 'host',
    section: 'host',
    fields: { design: str(), token: num(), what: oneOf(['page_ready_error_flag', 'mce_for_token', 'real_pf']) },
    when: 'a non-`current` design (docs/designs.md) reports a failed page-in its own way',
  },
  kvm_mmio: {
    src: 'host',
    section: 'host',
    fields: { gpa: num(), write: bool() },
    when: 'access outside guest RAM (unassigned MMIO: reads 0, writes dropped)',
  },
  kvm_msr: {
    src: 'host',
    section: 'host',
    fields: { write: bool(), ecx: num('msr'), data: big(), exception: bool('#GP') },
    tracepoint: 'kvm_msr',
    when: 'every MSR access (guest-initiated)',
  },
  kvm_set_msr_host: {
    src: 'host',
    section: 'host',
    fields: { ecx: num(), data: big(), ok: bool() },
    when: 'host-initiated MSR write (userspace restore)',
  },
  kvm_get_msr_host: {
    src: 'host',
    section: 'host',
    fields: { ecx: num(), data: big(), ok: bool() },
    when: 'host-initiated MSR read (KVM_GET_MSRS, the `get_msr` action); `data` is 0 when refused',
  },
  kvm_multiple_exception: {
    src: 'host',
    section: 'host',
    fields: { prev: num(), vector: num(), result: oneOf(['serial', 'double_fault', 'triple_fault']) },
    when: 'an exception queued on top of a pending one (kvm_multiple_exception)',
  },
  kvm_inj_exception: {
    src: 'host',
    section: 'host',
    fields: { exception: num('vector'), has_error: bool(), error_code: num(), address: num('CR2 payload'), async: bool() },
    tracepoint: 'kvm_inj_exception',
    when: 'an exception delivered at VM entry',
  },
  kvm_inj_nmi: { src: 'host', section: 'host', fields: {}, when: 'an NMI delivered at VM entry' },
  kvm_apic_accept_irq: {
    src: 'host',
    section: 'host',
    fields: { apicid: num(), dm: oneOf(['fixed', 'nmi', 'init']), vec: num(), coalesced: bool() },
    tracepoint: 'kvm_apic_accept_irq',
    when: 'LAPIC accepted an interrupt (the kernel format shows the delivery mode and edge triggering)',
  },
  kvm_apic_irq_dropped: {
    src: 'host',
    section: 'host',
    fields: { apicid: num(), vec: num(), why: oneOf(['sw_disabled', 'hw_disabled']) },
    when: 'a fixed interrupt hit a disabled LAPIC and was lost',
  },
  kvm_inj_virq: { src: 'host', section: 'host', fields: { irq: num('vector') }, tracepoint: 'kvm_inj_virq', when: 'an interrupt delivered at VM entry' },
  kvm_apic_eoi: { src: 'host', section: 'host', fields: { vector: num() }, tracepoint: 'kvm_eoi', when: 'EOI write retired the highest ISR bit (printed in the format of the kernel\'s kvm_eoi, apicid = the vCPU)' },
  kvm_lapic_enable: {
    src: 'host',
    section: 'host',
    fields: { how: oneOf(APIC_HOW) },
    when: 'SPIV software-enable bit (or IA32_APIC_BASE EN) set',
  },
  kvm_lapic_disable: {
    src: 'host',
    section: 'host',
    fields: { how: oneOf(APIC_HOW) },
    when: 'SPIV software-enable bit (or IA32_APIC_BASE EN) cleared',
  },
  kvm_write_guest: {
    src: 'host',
    section: 'host',
    fields: {
      gpa: num(),
      len: num(),
      value: num(),
      field: oneOf(['flags', 'token', 'reason']),
      ok: bool(),
      hfn: opt(num('host frame written, -1 when not ok; only once translations are traced')),
      gen: opt(num("memslots generation of the cache's translation; only once translations are traced")),
      slot: opt(num('only once translations are traced')),
    },
    when: 'every host write into guest memory on behalf of the APF protocol (also failed ones, `ok: false`); the extra fields say which translation it went through ([caches.md](caches.md))',
  },
  kvm_vcpu_block: { src: 'host', section: 'host', fields: { why: oneOf(WHY_BLOCK) }, when: 'the vCPU thread blocks' },
  kvm_vcpu_wakeup: { src: 'host', section: 'host', fields: { why: oneOf(WHY_WAKE) }, when: 'the vCPU thread wakes' },
  kvm_nmi: { src: 'host', section: 'host', fields: {}, when: 'userspace-triggered NMI' },
  kvm_smi: { src: 'host', section: 'host', fields: {}, when: 'userspace-triggered SMI' },
  kvm_vcpu_init: { src: 'host', section: 'host', fields: {}, when: 'userspace-triggered INIT, when it takes effect' },
  kvm_vcpu_reset: { src: 'host', section: 'host', fields: {}, when: 'userspace-triggered reset, when it takes effect' },
  kvm_enter_smm: { src: 'host', section: 'host', fields: { cr0: num('before') }, when: 'SMM entry' },
  kvm_rsm: { src: 'host', section: 'host', fields: { cr0: num('after') }, when: 'RSM' },
  kvm_post_set_cr0: {
    src: 'host',
    section: 'host',
    fields: { old: num(), new: num(), cleared: bool('queue cleared') },
    when: 'CR0.PG changed',
  },
  kvm_nested_apf_vmexit: {
    src: 'host',
    section: 'host',
    fields: { token: num(), form: oneOf(['nested_apf_token', 'payload']) },
    when: 'async #PF turned into a #PF VM-exit to L1',
  },
  kvm_nested_vmenter: {
    src: 'host',
    section: 'host',
    fields: { vmcs12: num('gpa'), launch: bool(), cpl: num("L2's") },
    when: "L0 emulated L1's VMLAUNCH/VMRESUME: the vCPU enters L2 ([nested.md](nested.md))",
  },
  kvm_nested_vmexit_inject: {
    src: 'host',
    section: 'host',
    fields: { reason: oneOf(NESTED_EXIT_REASONS), vector: num() },
    when: "L0 reflects an exit to L1: L1's interrupt or NMI while L2 runs, or L2's HLT",
  },
  kvm_get_nested_state: {
    src: 'host',
    section: 'host',
    fields: { guest_mode: bool(), vmcs12: num('gpa, -1 outside guest mode') },
    when: 'KVM_GET_NESTED_STATE at a migration switch-over (`nested_migrate`)',
  },
  kvm_set_nested_state: {
    src: 'host',
    section: 'host',
    fields: { ok: bool(), guest_mode: bool(), restore: oneOf(NESTED_RESTORE), gfn: num(), page: str(), error: str('`EFAULT` when not ok') },
    when: 'KVM_SET_NESTED_STATE on the destination returned',
  },
  kvm_get_nested_state_pages: {
    src: 'host',
    section: 'host',
    fields: { ok: bool(), gfn: num(), page: str('the failing page when not ok') },
    when: "KVM_REQ_GET_NESTED_STATE_PAGES processed at a VM entry (the two-step restore's second step)",
  },
  kvm_nested_internal_error: {
    src: 'host',
    section: 'host',
    fields: { gfn: num(), page: str() },
    when: 'a nested state page could not be mapped in KVM_RUN: KVM_EXIT_INTERNAL_ERROR, the VMM destroys the VM',
  },
  nested_migration: {
    src: 'host',
    section: 'host',
    fields: { phase: oneOf(['switchover', 'resume', 'abort']), restore: oneOf(NESTED_RESTORE), fetch: oneOf(POSTCOPY_VIA), listener: oneOf(['before_set_nested_state', 'after_set_nested_state', 'never']) },
    when: "the VMM's switch-over of a `nested_migrate` (`cpu` -1)",
  },
  postcopy_listener_start: {
    src: 'host',
    section: 'host',
    fields: { queued: num() },
    when: 'the VMM started its userfaultfd listener thread (`cpu` -1)',
  },
  postcopy_page_request: {
    src: 'host',
    section: 'host',
    fields: { gfn: num(), page: str(), via: oneOf(POSTCOPY_VIA), from: oneOf(['kvm_run', 'set_nested_state']), listener: bool('running') },
    when: 'a thread needs a page that is still on the migration source',
  },
  postcopy_page_served: {
    src: 'host',
    section: 'host',
    fields: { gfn: num(), page: str(), via: oneOf(POSTCOPY_VIA), ok: bool(), waited_ns: num() },
    when: 'that page arrived (or the source could not send it)',
  },
  kvm_shutdown: {
    src: 'host',
    section: 'host',
    fields: { why: oneOf(['triple_fault', 'host_oops']) },
    when: 'the vCPU stops (KVM_EXIT_SHUTDOWN)',
  },
  kvm_host_oops: {
    src: 'host',
    section: 'host',
    fields: { message: str() },
    when: 'the host hit one of its own historical bugs (e.g. page ready without an in-kernel LAPIC before Sept 2020); the vCPU stops',
  },
  kvm_vcpu_destroy: { src: 'host', section: 'host', fields: { in_flight: num('workers still faulting in') }, when: 'vCPU teardown' },
  kvm_vm_destroy: { src: 'host', section: 'host', fields: { in_flight: num('workers still faulting in') }, when: 'VM teardown' },
  host_page_evict: {
    src: 'host',
    section: 'host',
    fields: { gfn: num(), checksum: num(), why: oneOf(['explicit', 'scheduled', 'lru', 'postcopy']) },
    when: 'host swaps a page out (`cpu` -1); `postcopy`: at a migration switch-over the page is still on the source',
  },
  host_page_fault_in: {
    src: ['host', 'worker'],
    section: 'host',
    fields: {
      gfn: num(),
      checksum: num(),
      ok: bool(),
      backing: oneOf(['resident', 'swapped', 'remote', 'failing']),
      why: oneOf(['sync', 'worker', 'prefetch', 'host_access']),
    },
    when: 'host brings a page in (sync or worker); the checksum equals the one at eviction',
  },
  // --- the guest address space and the host's caches of it ---
  kvm_set_memory_region: {
    src: 'host',
    section: 'memory',
    fields: {
      slot: num(),
      change: oneOf(['create', 'delete', 'move', 'resize', 'existing']),
      gfn: num(),
      count: num(),
      hva: num("of the slot's first page"),
      gen: num('memslots generation after the change'),
    },
    when: 'a memslot was created, deleted, moved or resized (KVM_SET_USER_MEMORY_REGION; hot-unplug deletes too)',
  },
  host_ram_alloc: {
    src: 'host',
    section: 'memory',
    fields: { hva: num(), count: num(), hfn: num() },
    when: 'the VMM maps `count` pages of memory at `hva`, backed by host frames `hfn`, `hfn+1`, ... (one record per run of consecutive frames)',
  },
  host_ram_free: {
    src: 'host',
    section: 'memory',
    fields: { hva: num(), count: num() },
    when: 'the VMM unmaps memory (hot-unplug, memory replaced on a re-add); its frames go back to the host',
  },
  host_page_migrate: {
    src: 'host',
    section: 'memory',
    fields: {
      gfn: num(),
      hva: num(),
      old_hfn: num(),
      new_hfn: num('-1 when refused'),
      ok: bool(),
      why: oneOf(['requested', 'unpinned', 'pinned', 'not_resident', 'no_free_frame'], '`unpinned`: done after a pin went; refused: `pinned`, `not_resident`, `no_free_frame`'),
    },
    when: 'the host moved a page to another frame, contents copied (or refused to)',
  },
  kvm_gfn_cache_init: {
    src: 'host',
    section: 'memory',
    fields: { gpa: num(), len: num("4 or 8: the era's"), gen: num(), slot: num(), hva: num(), hfn: num('-1: no memslot'), ok: bool() },
    when: 'the EN write initialised the APF area cache (`cpu`: the vCPU)',
  },
  kvm_gfn_cache_refresh: {
    src: 'host',
    section: 'memory',
    fields: { gpa: num(), gen: num(), slot: num(), hva: num(), hfn: num(), ok: bool(), why: oneOf(['generation', 'invalidated']) },
    when: 'a use found the cache stale and looked the area up again',
  },
  kvm_gfn_cache_invalidate: {
    src: 'host',
    section: 'memory',
    fields: { gpa: num(), hva: num(), why: oneOf(['migrate', 'unmap']) },
    when: 'the MMU notifier invalidated the cache: its page migrates or is unmapped',
  },
  // --- guest ---
  kvm_guest_cpu_init: {
    src: 'guest',
    section: 'guest',
    fields: { msr_en: big(), vector: num('0xf3, or 14 for #PF-based page ready'), send_always: bool() },
    when: 'PV driver enabled APF on this CPU (after the INT/EN writes, whatever they returned)',
  },
  kvm_pv_disable_apf: { src: 'guest', section: 'guest', fields: {}, when: 'APF disabled on this CPU (EN := 0)' },
  kvm_read_and_reset_apf_flags: {
    src: 'guest',
    section: 'guest',
    fields: { flags: num() },
    when: "#PF entry read (and zeroed) the flags/reason; only when this CPU's enabled flag is set",
  },
  kvm_async_pf_task_wait_schedule: { src: 'guest', section: 'guest', fields: { token: num(), task: str() }, when: 'a task parks on a token (schedule-based wait)' },
  kvm_async_pf_task_wait_halt: { src: 'guest', section: 'guest', fields: { token: num(), task: str() }, when: 'halt-based wait (≤5.7 guests in atomic/idle context)' },
  kvm_async_pf_dummy_consumed: { src: 'guest', section: 'guest', fields: { token: num(), task: str() }, when: 'the wait found a dummy node: the wake came first' },
  kvm_async_pf_dummy_alloc_failed: {
    src: 'guest',
    section: 'guest',
    fields: { token: num(), locked: bool('the allocation was made under the bucket lock (before 0547758a6de3)') },
    when: "kvm_async_pf_task_wake's kzalloc(GFP_ATOMIC) of a dummy node failed (`machine.guest.dummyAllocFailures`): the wake relaxes and looks for the waiter again",
  },
  kvm_async_pf_task_wake: {
    src: 'guest',
    section: 'guest',
    fields: { token: num(), found: bool(), dummy: bool('a dummy was inserted') },
    when: 'page ready handled for one token',
  },
  apf_task_wake_all: { src: 'guest', section: 'guest', fields: { woken: num(), dummies_leaked: num() }, when: 'wake-all on this CPU' },
  kvm_async_pf_task_woken: { src: 'guest', section: 'guest', fields: { token: num(), task: str(), waited_ns: num() }, when: 'the sleeper resumed' },
  sysvec_kvm_asyncpf_interrupt: { src: 'guest', section: 'guest', fields: { token: num() }, when: 'page-ready interrupt handler read the token slot' },
  apf_token_clear: { src: 'guest', section: 'guest', fields: { token: num() }, when: 'guest writes 0 to the token slot (emitted with the store)' },
  apf_ack: { src: 'guest', section: 'guest', fields: {}, when: 'guest writes 1 to MSR_KVM_ASYNC_PF_ACK (emitted with the WRMSR)' },
  apf_handler_rule: {
    src: 'guest',
    section: 'guest',
    fields: { handler: str(), rule: str(), message: str() },
    when:
      'a kvm.c handler returned having broken an ABI rule (the kernel\'s debug check on its APF-area accesses and MSR writes; never emitted while the rules hold): token_read_after_ack, token_slot_not_cleared, no_ack, ack_before_token_clear, flags_cleared_before_read, flags_not_reset, enabled_flag_not_set, msr_not_disabled',
  },
  sched_switch: { src: 'guest', section: 'guest', fields: { prev: str(), next: str(), prev_state: oneOf(TASK_STATE) }, when: 'context switch' },
  sched_wakeup: { src: 'guest', section: 'guest', fields: { task: str(), target_cpu: num() }, when: 'a task became runnable' },
  sched_migrate_task: {
    src: 'guest',
    section: 'guest',
    fields: { task: str(), orig_cpu: num(), dest_cpu: num() },
    when: 'a task moved to another CPU (wake-up placement, idle pull, CPU offline)',
  },
  task_new: { src: 'guest', section: 'guest', fields: { task: str(), kind: oneOf(['user', 'kthread']) }, when: 'a task of the spec was created' },
  task_exit: { src: 'guest', section: 'guest', fields: { task: str(), code: num('`128 + signal` when killed') }, when: 'do_exit' },
  task_access: {
    src: 'guest',
    section: 'guest',
    fields: { task: str(), gva: num(), write: bool(), value: num(), kernel: bool('copy_*_user / kernel_touch') },
    when: "a workload access retired (data check); for an L2 guest `task` is its name, `gva` its address and `kernel` means L2 CPL 0",
  },
  uaccess_fixup: { src: 'guest', section: 'guest', fields: { task: str(), gva: num() }, when: 'copy_*_user returned -EFAULT via the exception table' },
  machine_check: {
    src: 'guest',
    section: 'guest',
    fields: { task: str(), gpa: num(), cpl: num(), action: oneOf(['sigbus', 'fixup', 'panic']) },
    when: "do_machine_check found an action-required memory error in bank 0 (the VMM's injected #MC, guest/designs/mce.ts)",
  },
  apf_design_entry: {
    src: 'guest',
    section: 'guest',
    fields: { design: str(), token: num(), entry: oneOf(['pf_error_code', 've', 'page_ready_error_flag', 'mce_token']) },
    when: "a non-`current` design's guest entry point recognised an async PF event (guest/designs)",
  },
  apf_page_error: {
    src: 'guest',
    section: 'guest',
    fields: { token: num(), task: str(), action: oneOf(['sigbus', 'panic']) },
    when: "a woken waiter finds its token's page-in failed (designs `error_flag`, `mc`)",
  },
  signal: {
    src: 'guest',
    section: 'guest',
    fields: { task: str(), sig: oneOf(SIG), gva: opt(num()), gpa: opt(num()), error_code: opt(num()), vector: opt(num()) },
    when: 'a user-mode fault kills the task on its way back to user mode',
  },
  bug: {
    src: 'guest',
    section: 'guest',
    fields: {
      kind: oneOf([
        'scheduling_while_atomic',
        'sleeping_in_invalid_context',
        'rcu_sleep',
        'sleeping_alloc_in_atomic',
        'spinlock_recursion',
        'stale_apf_write',
        'preempt_count_leak',
      ]),
      task: str(),
      message: str(),
    },
    when: 'kernel self-checks (`stale_apf_write`: the next kernel after kexec/kdump saw the previous kernel\'s APF area change)',
  },
  warn: { src: 'guest', section: 'guest', fields: { message: str() }, when: 'WARN/WARN_ONCE, unchecked MSR access, "No irq handler for vector"' },
  hung_task: {
    src: 'guest',
    section: 'guest',
    fields: { task: str(), blocked_ns: num() },
    when: 'hung-task detector fired (TASK_UNINTERRUPTIBLE longer than the timeout)',
  },
  panic: {
    src: 'guest',
    section: 'guest',
    fields: { message: str() },
    when: 'panic; every CPU stops with IF=0 (the simulation is stopped unless `stopOnPanic: false`)',
  },
  unexpected_exception: {
    src: 'guest',
    section: 'guest',
    fields: { vector: num(), error_code: num(), cpl: num() },
    when: 'an exception nobody handles (kernel oops, followed by `panic`)',
  },
  cpu_online: { src: 'guest', section: 'guest', fields: {}, when: 'a CPU finished bring-up (boot or hotplug)' },
  cpu_offline: { src: 'guest', section: 'guest', fields: { migrated: num('tasks moved away') }, when: 'the dying CPU finished its teardown' },
  suspend: { src: 'guest', section: 'guest', fields: { phase: oneOf(['start', 'sleeping']) }, when: 'system suspend began / the boot CPU went to sleep' },
  resume: { src: 'guest', section: 'guest', fields: {}, when: 'lifecycle: resume from suspend' },
  reboot: { src: 'guest', section: 'guest', fields: {}, when: 'lifecycle: reboot' },
  kexec: { src: 'guest', section: 'guest', fields: {}, when: 'lifecycle: kexec into the next kernel' },
  crash: { src: 'guest', section: 'guest', fields: { message: str() }, when: 'panic → kdump shutdown (not a `panic` record: the kdump kernel runs next)' },
  next_kernel_boot: { src: 'guest', section: 'guest', fields: { kind: oneOf(['kexec', 'kdump']) }, when: 'the next kernel started on this CPU' },
  kdump_area_changed: {
    src: 'guest',
    section: 'guest',
    fields: { area_cpu: num(), gpa: num(), before: num(), after: num() },
    when:
      'the kdump kernel sees the old APF area of a CPU other than the crashing one change: the crash path tears down APF only on the crashing CPU, so the host may still complete page-ins of the stopped CPUs into the old kernel\'s memory (not a BUG)',
  },
  l1_kvm_entry: {
    src: 'guest',
    section: 'guest',
    fields: { l2: str(), launch: bool() },
    when: "L1's hypervisor enters L2 guest `l2` (guest/nested; [nested.md](nested.md))",
  },
  l1_kvm_exit: {
    src: 'guest',
    section: 'guest',
    fields: { l2: str(), reason: str(), vector: num(), exit_qualification: num(), apf_flags: num("L1's own flags, read right after a #PF exit") },
    when: 'L1 handles a nested VM-exit (after its IRQs-off part)',
  },
  nested_l2_exit: { src: 'guest', section: 'guest', fields: { l2: str() }, when: 'the L2 guest ran its program to the end' },
  nested_l2_oops: {
    src: 'guest',
    section: 'guest',
    fields: { l2: str(), vector: num(), message: str() },
    when: 'the L2 guest died (an event it cannot handle, or L1 gave up on it)',
  },
  bare_exception: { src: 'guest', section: 'guest', fields: BARE_FIELDS, when: BARE_WHEN },
  bare_interrupt: { src: 'guest', section: 'guest', fields: BARE_FIELDS, when: BARE_WHEN },
  bare_nmi: { src: 'guest', section: 'guest', fields: BARE_FIELDS, when: BARE_WHEN },
  bare_msr: { src: 'guest', section: 'guest', fields: BARE_FIELDS, when: BARE_WHEN },
  bare_cpuid: { src: 'guest', section: 'guest', fields: BARE_FIELDS, when: BARE_WHEN },
  bare_touch: { src: 'guest', section: 'guest', fields: BARE_FIELDS, when: BARE_WHEN },
  bare_area: { src: 'guest', section: 'guest', fields: BARE_FIELDS, when: BARE_WHEN },
  bare_wait: { src: 'guest', section: 'guest', fields: BARE_FIELDS, when: BARE_WHEN },
  bare_cpl: { src: 'guest', section: 'guest', fields: BARE_FIELDS, when: BARE_WHEN },
  bare_note: { src: 'guest', section: 'guest', fields: BARE_FIELDS, when: BARE_WHEN },
  bare_done: { src: 'guest', section: 'guest', fields: BARE_FIELDS, when: BARE_WHEN },
  // --- cpu (sim/cpu/vcpu.ts) ---
  exception: {
    src: 'cpu',
    section: 'cpu',
    fields: { vector: num(), error_code: opt(num()), cr2: opt(num('for #PF')), cpl: num(), if: bool('interrupted context') },
    when: 'the CPU vectors an exception through the IDT',
  },
  interrupt: { src: 'cpu', section: 'cpu', fields: { vector: num(), cpl: num() }, when: 'the CPU vectors an interrupt through the IDT' },
  nmi: { src: 'cpu', section: 'cpu', fields: { cpl: num(), if: bool() }, when: 'the CPU takes an NMI' },
  syscall: { src: 'cpu', section: 'cpu', fields: { nr: num() }, when: 'SYSCALL' },
  iret: { src: 'cpu', section: 'cpu', fields: { vector: num(), cpl: num(), if: bool('restored') }, when: 'IRET back to the interrupted context' },
  idt_gate_missing: { src: 'cpu', section: 'cpu', fields: { vector: num() }, when: 'no IDT gate for a vector' },
  triple_fault: { src: 'cpu', section: 'cpu', fields: {}, when: 'triple fault: the CPU shuts down' },
  nested_vmenter: {
    src: 'cpu',
    section: 'cpu',
    fields: { cpl: num(), if: bool("L2's, loaded from the VMCS"), launch: bool() },
    when: 'the vCPU enters L2',
  },
  nested_vmexit: {
    src: 'cpu',
    section: 'cpu',
    fields: {
      reason: oneOf(NESTED_EXIT_REASONS),
      vector: num(),
      error_code: num(),
      exit_qualification: num('the token of an async #PF'),
    },
    when: 'L2 exits to L1',
  },
  init: { src: 'cpu', section: 'cpu', fields: {}, when: 'INIT' },
  reset: { src: 'cpu', section: 'cpu', fields: {}, when: 'RESET' },
  // --- harness and checkers ---
  inject: {
    src: 'harness',
    section: 'harness',
    fields: { what: str('the scenario action') },
    open: true,
    when: "a scenario-injected event; the action's other settings follow as fields (objects as JSON)",
  },
  violation: {
    src: 'check',
    section: 'harness',
    fields: { checker: str(), message: str() },
    when: 'emitted by checkers at the end of a run or when detected',
  },
} as const satisfies Readonly<Record<string, TraceEventSpec>>;

// --- types computed from the catalogue ----------------------------------------------------------

type Catalogue = typeof TRACE_CATALOGUE;

/** Every event name of the catalogue. */
export type TraceEventName = keyof Catalogue;

/** The TypeScript type of a value of field spec `S`. */
export type TraceFieldValue<S extends TraceFieldSpec> = S extends { readonly values: readonly (infer V extends string)[] }
  ? V
  : S['kind'] extends 'number'
    ? number
    : S['kind'] extends 'bigint'
      ? bigint
      : S['kind'] extends 'numeric'
        ? number | bigint
        : S['kind'] extends 'string'
          ? string
          : boolean;

type Spec<E extends TraceEventName> = Catalogue[E];
type FieldSpecs<E extends TraceEventName> = Spec<E>['fields'];
type Required_<F> = { readonly [K in keyof F as F[K] extends { readonly optional: true } ? never : K]: F[K] extends TraceFieldSpec ? TraceFieldValue<F[K]> : never };
type Optional_<F> = { readonly [K in keyof F as F[K] extends { readonly optional: true } ? K : never]?: F[K] extends TraceFieldSpec ? TraceFieldValue<F[K]> : never };
type Flatten<T> = { [K in keyof T]: T[K] };
type OpenFields<E extends TraceEventName> = Spec<E> extends { readonly open: true } ? Readonly<Record<string, TraceValue>> : unknown;

/** The fields an emit site passes for event `E` (for a union of names: any one of their field sets). */
export type TraceFieldsOf<E extends TraceEventName> = E extends TraceEventName ? Flatten<Required_<FieldSpecs<E>> & Optional_<FieldSpecs<E>>> & OpenFields<E> : never;

/** The source(s) event `E` comes from. */
export type TraceSourceOf<E extends TraceEventName> = Extract<Spec<E>['src'] extends readonly (infer S)[] ? S : Spec<E>['src'], TraceSource>;

/** The events source `S` may emit. */
export type TraceEventFrom<S extends TraceSource> = { [E in TraceEventName]: S extends TraceSourceOf<E> ? E : never }[TraceEventName];

/** Events whose records carry no field at all (their emit may leave `fields` out). */
export type FieldlessEventName = { [E in TraceEventName]: keyof FieldSpecs<E> extends never ? E : never }[TraceEventName];

/** The part of every record the bus sets. `cpu` is -1 when the record is not per-CPU. */
export interface TraceRecordHead<E extends string = string, S extends TraceSource = TraceSource> {
  readonly t: number;
  readonly cpu: number;
  readonly src: S;
  readonly event: E;
}

/** A record of event `E`, its fields typed (for a union of names: the union of their records). */
export type TraceRecordOf<E extends TraceEventName> = E extends TraceEventName ? TraceRecordHead<E, TraceSourceOf<E>> & TraceFieldsOf<E> : never;

/** Any record of the catalogue: a union discriminated by `event`. */
export type AnyTraceRecord = TraceRecordOf<TraceEventName>;

// --- runtime access -------------------------------------------------------------------------------

/** The catalogue entries as a plain table (same objects). */
export const TRACE_EVENT_SPECS: Readonly<Record<TraceEventName, TraceEventSpec>> = TRACE_CATALOGUE;

/** Whether `event` is a name of the catalogue. */
export function isTraceEventName(event: string): event is TraceEventName {
  return Object.prototype.hasOwnProperty.call(TRACE_CATALOGUE, event);
}

/** The sources of a spec as a list. */
export function specSources(spec: TraceEventSpec): readonly TraceSource[] {
  return typeof spec.src === 'string' ? [spec.src] : spec.src;
}

/** Whether `v` is a value of field spec `f` (undefined only for optional fields). */
export function fieldValueOk(f: TraceFieldSpec, v: unknown): boolean {
  if (v === undefined) return f.optional === true;
  switch (f.kind) {
    case 'number':
      return typeof v === 'number';
    case 'bigint':
      return typeof v === 'bigint';
    case 'numeric':
      return typeof v === 'number' || typeof v === 'bigint';
    case 'boolean':
      return typeof v === 'boolean';
    case 'string':
      return typeof v === 'string' && (f.values === undefined || f.values.includes(v));
  }
}
