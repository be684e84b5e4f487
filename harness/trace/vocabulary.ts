/**
 * The trace vocabulary of docs/trace-events.md as data: every event name the host, the guest
 * and the CPU emit, with its source and fields. Scenario validation uses it to reject a typo in
 * an expectation ("kvm_async_pf_not_presnt" would otherwise match nothing, silently), and the
 * docs and `apf list` print it.
 */
import type { TraceSource } from '../../sim/trace';

export interface EventInfo {
  readonly event: string;
  readonly src: TraceSource;
  readonly fields: readonly string[];
  /** Any field name is accepted (records whose fields depend on what they describe). */
  readonly open?: boolean;
}

const ev = (src: TraceSource, event: string, ...fields: string[]): EventInfo => ({ event, src, fields });
const open = (src: TraceSource, event: string, ...fields: string[]): EventInfo => ({ event, src, fields, open: true });

export const TRACE_EVENTS: readonly EventInfo[] = [
  // host (src host / worker)
  ev('host', 'kvm_try_async_get_page', 'gva', 'gfn'),
  ev('host', 'kvm_async_pf_repeated_fault', 'gva', 'gfn'),
  ev('host', 'kvm_async_pf_doublefault', 'gva', 'gfn'),
  ev('host', 'kvm_async_pf_not_present', 'token', 'gva', 'injected', 'halt'),
  ev('worker', 'kvm_async_pf_completed', 'address', 'gva', 'pfn', 'ok'),
  ev('host', 'kvm_async_pf_ready', 'token', 'gva', 'notified'),
  ev('host', 'kvm_async_pf_wakeup_all', 'queued', 'why'),
  ev('host', 'kvm_async_pf_enable', 'msr_en_val', 'gpa', 'send_always', 'delivery_as_int', 'pf_vmexit'),
  ev('host', 'kvm_async_pf_disable', 'msr_en_val'),
  ev('host', 'kvm_async_pf_clear_queue', 'reason', 'dropped', 'tokens'),
  ev('host', 'kvm_async_pf_cancel_work_sync', 'token', 'gfn', 'outcome'),
  ev('host', 'kvm_async_pf_clear_queue_done', 'reason', 'waited_ns'),
  ev('host', 'kvm_async_pf_ack', 'was_pending'),
  ev('host', 'kvm_async_pf_df_cancel', 'token', 'pending_token'),
  ev('host', 'kvm_async_pf_halt', 'gfn', 'why'),
  ev('host', 'kvm_async_pf_unhalt', 'why'),
  ev('host', 'kvm_async_pf_sync', 'gfn', 'gva', 'why', 'ok'),
  ev('host', 'kvm_page_fault', 'fault_address', 'error_code', 'gva'),
  ev('host', 'kvm_msr', 'write', 'ecx', 'data', 'exception'),
  ev('host', 'kvm_set_msr_host', 'ecx', 'data', 'ok'),
  ev('host', 'kvm_inj_exception', 'exception', 'has_error', 'error_code', 'address', 'async'),
  ev('host', 'kvm_apic_accept_irq', 'apicid', 'dm', 'vec', 'coalesced'),
  ev('host', 'kvm_inj_virq', 'irq'),
  ev('host', 'kvm_apic_eoi', 'vector'),
  ev('host', 'kvm_lapic_enable', 'how'),
  ev('host', 'kvm_lapic_disable', 'how'),
  ev('host', 'kvm_write_guest', 'gpa', 'len', 'value', 'field', 'ok', 'hfn', 'gen', 'slot'),
  ev('host', 'kvm_vcpu_block', 'why'),
  ev('host', 'kvm_vcpu_wakeup', 'why'),
  ev('host', 'kvm_nmi'),
  ev('host', 'kvm_smi'),
  ev('host', 'kvm_rsm', 'cr0'),
  ev('host', 'kvm_vcpu_init'),
  ev('host', 'kvm_vcpu_reset'),
  ev('host', 'kvm_post_set_cr0', 'old', 'new', 'cleared'),
  ev('host', 'kvm_nested_apf_vmexit', 'token', 'form'),
  ev('host', 'kvm_vcpu_destroy', 'in_flight'),
  ev('host', 'kvm_vm_destroy', 'in_flight'),
  ev('host', 'host_page_evict', 'gfn', 'checksum', 'why'),
  ev('host', 'host_page_fault_in', 'gfn', 'checksum', 'ok', 'backing', 'why'),
  // the guest address space and the host's caches of it (docs/caches.md)
  ev('host', 'kvm_set_memory_region', 'slot', 'change', 'gfn', 'count', 'hva', 'gen'),
  ev('host', 'host_ram_alloc', 'hva', 'count', 'hfn'),
  ev('host', 'host_ram_free', 'hva', 'count'),
  ev('host', 'host_page_migrate', 'gfn', 'hva', 'old_hfn', 'new_hfn', 'ok', 'why'),
  ev('host', 'kvm_gfn_cache_init', 'gpa', 'len', 'gen', 'slot', 'hva', 'hfn', 'ok'),
  ev('host', 'kvm_gfn_cache_refresh', 'gpa', 'gen', 'slot', 'hva', 'hfn', 'ok', 'why'),
  ev('host', 'kvm_gfn_cache_invalidate', 'gpa', 'hva', 'why'),
  // host events beyond docs/trace-events.md (emitted by host/)
  ev('host', 'kvm_async_pf_enable_failed', 'msr_en_val', 'gpa'),
  ev('host', 'kvm_apic_irq_dropped', 'apicid', 'vec', 'why'),
  ev('host', 'kvm_enter_smm', 'cr0'),
  ev('host', 'kvm_host_oops', 'message'),
  ev('host', 'kvm_inj_nmi'),
  ev('host', 'kvm_mce_inject', 'gfn', 'gpa'),
  ev('host', 'kvm_async_pf_design', 'design', 'token', 'what'),
  ev('host', 'kvm_mmio', 'gpa', 'write'),
  ev('host', 'kvm_multiple_exception', 'prev', 'vector', 'result'),
  ev('host', 'kvm_shutdown', 'why'),
  // nested virtualization (host/nested, docs/nested.md)
  ev('host', 'kvm_nested_vmenter', 'vmcs12', 'launch', 'cpl'),
  ev('host', 'kvm_nested_vmexit_inject', 'reason', 'vector'),
  ev('host', 'kvm_get_nested_state', 'guest_mode', 'vmcs12'),
  ev('host', 'kvm_set_nested_state', 'ok', 'guest_mode', 'restore', 'gfn', 'page', 'error'),
  ev('host', 'kvm_get_nested_state_pages', 'ok', 'gfn', 'page'),
  ev('host', 'kvm_nested_internal_error', 'gfn', 'page'),
  ev('host', 'nested_migration', 'phase', 'restore', 'fetch', 'listener'),
  ev('host', 'postcopy_listener_start', 'queued'),
  ev('host', 'postcopy_page_request', 'gfn', 'page', 'via', 'from', 'listener'),
  ev('host', 'postcopy_page_served', 'gfn', 'page', 'via', 'ok', 'waited_ns'),
  // guest
  ev('guest', 'kvm_guest_cpu_init', 'msr_en', 'vector', 'send_always'),
  ev('guest', 'kvm_pv_disable_apf'),
  ev('guest', 'kvm_read_and_reset_apf_flags', 'flags'),
  ev('guest', 'kvm_async_pf_task_wait_schedule', 'token', 'task'),
  ev('guest', 'kvm_async_pf_task_wait_halt', 'token', 'task'),
  ev('guest', 'kvm_async_pf_dummy_consumed', 'token', 'task'),
  ev('guest', 'kvm_async_pf_dummy_alloc_failed', 'token', 'locked'),
  ev('guest', 'kvm_async_pf_task_wake', 'token', 'found', 'dummy'),
  ev('guest', 'apf_task_wake_all', 'woken', 'dummies_leaked'),
  ev('guest', 'kvm_async_pf_task_woken', 'token', 'task', 'waited_ns'),
  ev('guest', 'sysvec_kvm_asyncpf_interrupt', 'token'),
  ev('guest', 'apf_token_clear', 'token'),
  ev('guest', 'apf_ack'),
  ev('guest', 'sched_switch', 'prev', 'next', 'prev_state'),
  ev('guest', 'sched_wakeup', 'task', 'target_cpu'),
  ev('guest', 'task_new', 'task', 'kind'),
  ev('guest', 'task_exit', 'task', 'code'),
  ev('guest', 'task_access', 'task', 'gva', 'write', 'value', 'kernel'),
  ev('guest', 'uaccess_fixup', 'task', 'gva'),
  ev('guest', 'machine_check', 'task', 'gpa', 'cpl', 'action'),
  ev('guest', 'apf_design_entry', 'design', 'token', 'entry'),
  ev('guest', 'apf_page_error', 'token', 'task', 'action'),
  ev('guest', 'bug', 'kind', 'task', 'message'),
  ev('guest', 'warn', 'message'),
  ev('guest', 'hung_task', 'task', 'blocked_ns'),
  ev('guest', 'panic', 'message'),
  ev('guest', 'unexpected_exception', 'vector', 'error_code', 'cpl'),
  ev('guest', 'cpu_offline', 'migrated'),
  ev('guest', 'cpu_online'),
  ev('guest', 'suspend', 'phase'),
  ev('guest', 'resume'),
  ev('guest', 'reboot'),
  ev('guest', 'kexec'),
  ev('guest', 'crash', 'message'),
  // guest events beyond docs/trace-events.md (emitted by guest/)
  ev('guest', 'sched_migrate_task', 'task', 'orig_cpu', 'dest_cpu'),
  ev('guest', 'signal', 'task', 'sig', 'gva', 'gpa', 'vector', 'error_code'),
  ev('guest', 'next_kernel_boot', 'kind'),
  // guest/nested: the L1 hypervisor and its L2 guests
  ev('guest', 'l1_kvm_entry', 'l2', 'launch'),
  ev('guest', 'l1_kvm_exit', 'l2', 'reason', 'vector', 'exit_qualification', 'apf_flags'),
  ev('guest', 'nested_l2_exit', 'l2'),
  ev('guest', 'nested_l2_oops', 'l2', 'vector', 'message'),
  // guest/bare: the scripted bare-metal guest logs each observation as `bare_<kind>`
  ...['exception', 'interrupt', 'nmi', 'msr', 'cpuid', 'touch', 'area', 'wait', 'cpl', 'note', 'done'].map((k) =>
    ev('guest', `bare_${k}`, 'seq', 'cpl', 'step', 'vector', 'cr2', 'errorCode', 'flags', 'token', 'if', 'msr', 'value', 'write', 'ok', 'result', 'waitedNs', 'message'),
  ),
  // cpu
  ev('cpu', 'exception', 'vector', 'error_code', 'cr2', 'cpl', 'if'),
  ev('cpu', 'interrupt', 'vector', 'cpl'),
  ev('cpu', 'nmi', 'cpl', 'if'),
  ev('cpu', 'syscall', 'nr'),
  ev('cpu', 'iret', 'vector', 'cpl', 'if'),
  ev('cpu', 'idt_gate_missing', 'vector'),
  ev('cpu', 'triple_fault'),
  ev('cpu', 'nested_vmenter', 'cpl', 'if', 'launch'),
  ev('cpu', 'nested_vmexit', 'reason', 'vector', 'error_code', 'exit_qualification'),
  ev('cpu', 'init'),
  ev('cpu', 'reset'),
  // harness
  open('harness', 'inject', 'what'),
  ev('check', 'violation', 'checker', 'message'),
];

const BY_NAME = new Map<string, EventInfo>(TRACE_EVENTS.map((e) => [e.event, e]));

/** Events documented in docs/trace-events.md, plus any added at run time by `registerEvent`. */
export function eventInfo(event: string): EventInfo | undefined {
  return BY_NAME.get(event);
}

export function knownEventNames(): string[] {
  return [...BY_NAME.keys()];
}

/**
 * Adds an event name the vocabulary table does not list (a layer that emits a new event before
 * the docs list it). Fields are open: any field name is accepted for such an event.
 */
export function registerEvent(info: EventInfo): void {
  if (!BY_NAME.has(info.event)) BY_NAME.set(info.event, info);
}

/** Whether `field` may appear in (and be matched on) records of `info`. */
export function hasField(info: EventInfo, field: string): boolean {
  return info.open === true || info.fields.includes(field);
}
