/**
 * The per-vCPU timeline: what each vCPU ran and what happened to it (faults, waits, halts,
 * interrupts, ACKs), one plain-words line per step, so that reading it teaches the protocol.
 * The host's async page-in worker gets its own section. Records the reader does not need (every
 * MSR access, every LAPIC accept) are left out unless `verbose`.
 */
import { formatTime } from '../../sim/clock';
import type { TraceRecord } from '../../sim/trace';
import { hex } from '../../shared-abi/addr';
import { WAKE_ALL } from '../checkers/types';
import { ALL_TRACE_EVENTS, TraceRouter, type AnyTraceRecord, type TraceConsumer } from '../trace/consumer';
const APF_MSRS: Readonly<Record<number, string>> = { 0x4b564d02: 'MSR_KVM_ASYNC_PF_EN', 0x4b564d06: 'MSR_KVM_ASYNC_PF_INT', 0x4b564d07: 'MSR_KVM_ASYNC_PF_ACK' };
const VECTORS: Readonly<Record<number, string>> = { 2: 'NMI', 8: '#DF', 13: '#GP', 14: '#PF', 6: '#UD', 18: '#MC', 0xf3: 'page-ready (0xf3)' };

export interface TimelineContext {
  /** A readable name for a guest frame, e.g. `reader:0x7f0000001000`. */
  pageName?(gfn: number): string | undefined;
  /** Show every record, including the noisy ones. */
  readonly verbose?: boolean;
}

/** Hex of a field; optional fields the record does not carry print as `?`. */
const h = (v: number | bigint | undefined): string => (v === undefined ? '?' : hex(v));
const s = (v: unknown): string => (typeof v === 'string' ? v : String(v));
const vec = (v: unknown): string => (typeof v === 'number' ? (VECTORS[v] ?? `vector ${h(v)}`) : '?');
const dur = (ns: unknown): string => {
  if (typeof ns !== 'number') return '?';
  if (ns < 1_000) return `${ns}ns`;
  if (ns < 1_000_000) return `${Number((ns / 1_000).toFixed(3))}us`;
  if (ns < 1_000_000_000) return `${Number((ns / 1_000_000).toFixed(3))}ms`;
  return `${Number((ns / 1e9).toFixed(3))}s`;
};

/** Plain-words text for a record, or undefined when the timeline skips it. */
export function describe(rec: AnyTraceRecord, ctx: TimelineContext = {}): string | undefined {
  const page = (gfn: number): string => {
    const name = ctx.pageName?.(gfn);
    return `gfn ${h(gfn)}${name === undefined ? '' : ` (${name})`}`;
  };
  const verbose = ctx.verbose === true;
  switch (rec.event) {
    // ---- host: the fault path
    case 'kvm_page_fault':
      return verbose ? `EPT violation at gpa ${h(rec.fault_address)}: the page is not mapped on the host` : undefined;
    case 'kvm_try_async_get_page':
      return `${page(rec.gfn)} is not in host memory → try to page it in asynchronously`;
    case 'kvm_async_pf_repeated_fault':
    case 'kvm_async_pf_doublefault':
      return `${page(rec.gfn)} is already being paged in (repeated fault) → halt the vCPU until it is in`;
    case 'kvm_async_pf_not_present':
      return rec.injected === false
        ? `page-in started (token ${h(rec.token)}), but the fault cannot be handed to the guest here → the vCPU halts instead`
        : `page-in started in a worker → inject async #PF: flags = 1 (page not present), CR2 = token ${h(rec.token)}`;
    case 'kvm_async_pf_halt':
      return `artificial halt: the vCPU waits on the host for ${page(rec.gfn)} (${s(rec.why)})`;
    case 'kvm_async_pf_unhalt':
      return 'artificial halt ends: the vCPU runs again and retries the access';
    case 'kvm_async_pf_sync':
      return `fault on ${page(rec.gfn)} handled synchronously (${s(rec.why)}): the vCPU is stuck until the page is in`;
    case 'kvm_inj_exception':
      if (rec.async === true) return `delivers the async #PF (error code 0, CR2 = token ${h(rec.address)})`;
      return `injects ${vec(rec.exception)}${rec.has_error === true ? ` (error ${h(rec.error_code)})` : ''}`;
    // ---- host: completion
    case 'kvm_async_pf_completed': {
      const name = typeof rec.gva === 'number' ? ctx.pageName?.(Math.floor(rec.gva / 4096)) : undefined;
      return `page-in done: gpa ${h(rec.gva)}${name === undefined ? '' : ` (${name})`} is in host memory${rec.ok === false ? ' (FAILED: the vCPU will retry synchronously)' : ''}`;
    }
    case 'kvm_async_pf_ready':
      if (rec.token === WAKE_ALL) return rec.notified === false ? 'wake-all dequeued (guest not notified)' : 'wake-all: token 0xffffffff → the guest wakes every sleeper of this CPU';
      return rec.notified === false
        ? `page for token ${h(rec.token)} is ready; the guest is not told (it never saw the not-present, or APF is off)`
        : `page for token ${h(rec.token)} is ready → tell the guest ("page ready")`;
    case 'kvm_async_pf_wakeup_all':
      return rec.queued === false ? undefined : 'APF enabled → host queues a wake-all (as after every enable)';
    case 'kvm_async_pf_ack':
      return 'ACK received (wrmsr MSR_KVM_ASYNC_PF_ACK) → host looks for the next ready page right away';
    case 'kvm_async_pf_df_cancel':
      return `#DF "fix" (2017): cancels page-ready ${h(rec.token)} AND the pending not-present ${h(rec.pending_token)}`;
    case 'kvm_async_pf_clear_queue':
      return `drops ${s(rec.dropped)} outstanding page-in${rec.dropped === 1 ? '' : 's'} (${s(rec.reason)})${typeof rec.tokens === 'string' && rec.tokens !== '' ? `: ${rec.tokens}` : ''}, no notification`;
    case 'kvm_async_pf_cancel_work_sync':
      return rec.outcome === 'wait'
        ? `token ${h(rec.token)}: its worker is already paging in → the clear must wait for it (the vCPU is stuck in the host)`
        : `token ${h(rec.token)}: its worker had not started → cancelled, the page is never fetched`;
    case 'kvm_async_pf_clear_queue_done':
      return `the clear (${s(rec.reason)}) returns after waiting ${typeof rec.waited_ns === 'number' ? `${Math.round(rec.waited_ns / 1000)} µs` : '?'} for running page-ins; the vCPU runs again`;
    case 'kvm_async_pf_enable':
      return (
        `guest enabled APF: shared area at gpa ${h(rec.gpa)}` +
        `${rec.delivery_as_int === true ? ', page-ready as an interrupt' : ''}${rec.send_always === true ? ', SEND_ALWAYS (kernel-mode faults go async too)' : ', user-mode faults only'}`
      );
    case 'kvm_async_pf_disable':
      return 'guest disabled APF';
    case 'kvm_write_guest':
      return `writes ${s(rec.field)} = ${h(rec.value)} into the shared area (gpa ${h(rec.gpa)})`;
    case 'kvm_msr':
      // EN and ACK writes are told by kvm_async_pf_enable/disable/ack; INT and refused accesses are not.
      if (!verbose && rec.write === true && rec.exception !== true && (rec.ecx === 0x4b564d02 || rec.ecx === 0x4b564d07)) return undefined;
      if (typeof rec.ecx === 'number' && APF_MSRS[rec.ecx] !== undefined) {
        return `guest ${rec.write === true ? 'wrmsr' : 'rdmsr'} ${APF_MSRS[rec.ecx]}${rec.write === true ? ` = ${h(rec.data)}` : ''}${rec.exception === true ? ' → #GP' : ''}`;
      }
      return verbose ? `${rec.write === true ? 'wrmsr' : 'rdmsr'} ${h(rec.ecx)}${rec.exception === true ? ' → #GP' : ''}` : undefined;
    case 'kvm_set_msr_host':
      return `userspace sets ${typeof rec.ecx === 'number' ? (APF_MSRS[rec.ecx] ?? h(rec.ecx)) : '?'} = ${h(rec.data)}${rec.ok === false ? ' (refused)' : ''}`;
    case 'kvm_get_msr_host':
      return `userspace reads ${typeof rec.ecx === 'number' ? (APF_MSRS[rec.ecx] ?? h(rec.ecx)) : '?'}${rec.ok === false ? ' (refused)' : ` = ${h(rec.data)}`}`;
    case 'kvm_apic_accept_irq':
      return verbose ? `LAPIC accepts ${vec(rec.vec)}${rec.coalesced === true ? ' (coalesced)' : ''}` : undefined;
    case 'kvm_inj_virq':
      return rec.irq === 0xf3 || verbose ? `delivers interrupt ${vec(rec.irq)}` : undefined;
    case 'kvm_apic_eoi':
      return verbose ? `guest EOI for ${vec(rec.vector)}` : undefined;
    case 'kvm_apic_irq_dropped':
      return `LAPIC drops ${vec(rec.vec)} (${s(rec.why)})${rec.vec === 0xf3 ? ': that page-ready is lost' : ''}`;
    case 'kvm_async_pf_enable_failed':
      return `enable failed: cannot map the area at gpa ${h(rec.gpa)} (EN = ${h(rec.msr_en_val)} is stored anyway)`;
    case 'kvm_host_oops':
      return `HOST OOPS: ${s(rec.message)}`;
    case 'kvm_enter_smm':
      return 'enters SMM (CR0.PG off)';
    case 'kvm_shutdown':
      return `vCPU shutdown (${s(rec.why)})`;
    case 'kvm_multiple_exception':
      return `${vec(rec.vector)} while delivering ${vec(rec.prev)} → ${s(rec.result)}`;
    case 'kvm_mce_inject':
      return `injects #MC for gfn ${h(rec.gfn)}`;
    case 'kvm_lapic_enable':
      return 'LAPIC software-enabled';
    case 'kvm_lapic_disable':
      return 'LAPIC software-disabled';
    case 'kvm_vcpu_block':
      return `vCPU blocks (${s(rec.why)})`;
    case 'kvm_vcpu_wakeup':
      return `vCPU wakes (${s(rec.why)})`;
    case 'kvm_nmi':
      return 'NMI injected';
    case 'kvm_smi':
      return 'SMI: the vCPU enters SMM';
    case 'kvm_rsm':
      return 'RSM: the vCPU leaves SMM';
    case 'kvm_vcpu_init':
      return 'INIT: vCPU reset (APF state cleared)';
    case 'kvm_vcpu_reset':
      return 'RESET: vCPU reset (APF state cleared)';
    case 'kvm_post_set_cr0':
      if (!verbose && rec.old === 0 && rec.cleared !== true) return undefined; // paging turned on at boot
      return `CR0 ${h(rec.old)} → ${h(rec.new)}${rec.cleared === true ? ': outstanding page-ins dropped' : ''}`;
    case 'kvm_nested_apf_vmexit':
      return `async #PF turned into a #PF VM-exit to L1 (token ${h(rec.token)}, ${s(rec.form)})`;
    case 'kvm_vcpu_destroy':
      return `vCPU destroyed (${s(rec.in_flight)} page-ins in flight)`;
    case 'kvm_vm_destroy':
      return `VM destroyed (${s(rec.in_flight)} page-ins in flight)`;
    case 'host_page_evict':
      return `host swaps out ${page(rec.gfn)}`;
    case 'host_page_fault_in':
      return verbose || rec.ok === false ? `${page(rec.gfn)} paged in from ${s(rec.backing)}${rec.ok === false ? ' — FAILED' : ''}` : undefined;
    // ---- guest
    case 'kvm_guest_cpu_init':
      return `APF on for this CPU (EN = ${h(rec.msr_en)}, page-ready vector ${h(rec.vector)}${rec.send_always === true ? ', SEND_ALWAYS' : ''})`;
    case 'kvm_pv_disable_apf':
      return 'kvm_pv_disable_apf(): APF off for this CPU';
    case 'kvm_read_and_reset_apf_flags':
      if (rec.flags === 0) return verbose ? '#PF entry: APF flags are 0 → an ordinary page fault' : undefined;
      return `#PF entry: APF flags = ${s(rec.flags)} (${rec.flags === 1 ? 'page not present' : rec.flags === 2 ? 'page ready' : 'unexpected'}) → read and reset to 0`;
    case 'kvm_async_pf_task_wait_schedule':
      return `task ${s(rec.task)} sleeps until token ${h(rec.token)} is ready; the CPU runs something else`;
    case 'kvm_async_pf_task_wait_halt':
      return `task ${s(rec.task)} cannot sleep here → HLT until token ${h(rec.token)} is ready`;
    case 'kvm_async_pf_dummy_consumed':
      return `task ${s(rec.task)} finds a dummy node for token ${h(rec.token)}: the page-ready came first → no wait`;
    case 'kvm_async_pf_task_wake':
      if (rec.token === WAKE_ALL) return undefined;
      return rec.found === true
        ? `wake: token ${h(rec.token)} has a sleeper → wake it`
        : `wake: nobody waits for token ${h(rec.token)} yet → leave a dummy node for the waiter`;
    case 'apf_task_wake_all':
      return `wake-all: woke ${s(rec.woken)} sleeper${rec.woken === 1 ? '' : 's'} of this CPU${typeof rec.dummies_leaked === 'number' && rec.dummies_leaked > 0 ? ` (${rec.dummies_leaked} dummy nodes leaked)` : ''}`;
    case 'kvm_async_pf_task_woken':
      return `task ${s(rec.task)} resumes after waiting ${dur(rec.waited_ns)} for token ${h(rec.token)}`;
    case 'sysvec_kvm_asyncpf_interrupt':
      return `page-ready interrupt: token slot = ${h(rec.token)}`;
    case 'apf_token_clear':
      return 'clears the token slot (writes 0: the host may post the next page-ready)';
    case 'apf_ack':
      return 'ACK done: wrmsr MSR_KVM_ASYNC_PF_ACK = 1 (the slot may be reused)';
    case 'sched_switch': {
      const next = s(rec.next);
      return `runs ${next.startsWith('swapper/') ? `the idle task (${next})` : next}`;
    }
    case 'sched_wakeup':
      return verbose ? `${s(rec.task)} is runnable (on cpu${s(rec.target_cpu)})` : undefined;
    case 'task_new':
      return `task ${s(rec.task)} starts`;
    case 'task_exit':
      return `task ${s(rec.task)} exits${rec.code !== undefined && rec.code !== 0 ? ` (code ${s(rec.code)})` : ''}`;
    case 'task_access':
      return verbose ? `${s(rec.task)} ${rec.write === true ? 'writes' : 'reads'} ${h(rec.value)} at ${h(rec.gva)}` : undefined;
    case 'sched_migrate_task':
      return `task ${s(rec.task)} moves from cpu${s(rec.orig_cpu)} to cpu${s(rec.dest_cpu)}`;
    case 'signal':
      return `task ${s(rec.task)} gets signal ${s(rec.sig)}${rec.gva === undefined ? '' : ` at ${h(rec.gva)}`}`;
    case 'next_kernel_boot':
      return `the next kernel boots (${s(rec.kind)})`;
    case 'uaccess_fixup':
      return `copy_*_user on ${h(rec.gva)} faulted → returns -EFAULT (exception-table fixup)`;
    case 'bug':
      return `BUG: ${s(rec.kind).replace(/_/g, ' ')}${rec.task === undefined ? '' : ` (${s(rec.task)})`}`;
    case 'warn':
      return `WARNING: ${s(rec.message)}`;
    case 'hung_task':
      return `INFO: task ${s(rec.task)} blocked for more than ${dur(rec.blocked_ns)}`;
    case 'panic':
      return `Kernel panic - not syncing: ${s(rec.message)}`;
    case 'unexpected_exception':
      return `unexpected ${vec(rec.vector)} at CPL ${s(rec.cpl)}`;
    case 'cpu_offline':
    case 'cpu_online':
    case 'suspend':
    case 'resume':
    case 'reboot':
    case 'kexec':
    case 'crash':
      return rec.event.replace('_', ' ');
    // ---- guest/bare: the scripted guest's observations
    case 'bare_exception':
      if (rec.vector === 14) {
        const what = rec.result === 'not_present' ? `page not present → token ${h(rec.token)}` : rec.result === 'ordinary' ? 'an ordinary #PF (skipped)' : `page ready (reason 2), token ${h(rec.token)}`;
        return `script's #PF handler: CR2 = ${h(rec.cr2)}, flags = ${s(rec.flags)}: ${what}`;
      }
      return `script caught ${vec(rec.vector)}${rec.message === undefined ? '' : ` (${s(rec.message)})`}`;
    case 'bare_interrupt':
      return rec.token !== undefined
        ? `script's page-ready handler: token ${h(rec.token)}${rec.result === 'wake_all' ? ' (wake-all)' : ''}`
        : `script got interrupt ${vec(rec.vector)}`;
    case 'bare_nmi':
      return 'script got an NMI';
    case 'bare_msr':
      if (rec.ok === false) return `script ${rec.write === true ? 'wrmsr' : 'rdmsr'} ${typeof rec.msr === 'number' ? (APF_MSRS[rec.msr] ?? h(rec.msr)) : '?'} → #GP (caught)`;
      return verbose || (typeof rec.msr === 'number' && APF_MSRS[rec.msr] !== undefined)
        ? `script ${rec.write === true ? 'wrmsr' : 'rdmsr'} ${typeof rec.msr === 'number' ? (APF_MSRS[rec.msr] ?? h(rec.msr)) : '?'}${rec.value === undefined ? '' : ` = ${h(rec.value)}`}`
        : undefined;
    case 'bare_wait':
      return `script waited ${dur(rec.waitedNs)}${rec.token === undefined ? '' : ` for token ${h(rec.token)}`}: ${s(rec.result)}`;
    case 'bare_area':
      return `script reads the area: flags = ${s(rec.flags)}, token = ${h(rec.token)}`;
    case 'bare_cpl':
      return `script now runs at CPL ${s(rec.cpl)}`;
    case 'bare_note':
      return `script: ${s(rec.message)}`;
    case 'bare_done':
      return 'script finished';
    case 'bare_touch':
    case 'bare_cpuid':
      return verbose ? `script ${rec.event.slice(5)} ${s(rec.message)}` : undefined;
    // ---- cpu
    case 'exception':
      if (rec.vector === 14) return `#PF delivered (CR2 = ${h(rec.cr2)}, error code ${h(rec.error_code)}, from CPL ${s(rec.cpl)})`;
      return `${vec(rec.vector)} delivered${rec.error_code === undefined ? '' : ` (error ${h(rec.error_code)})`}`;
    case 'nmi':
      return 'NMI taken';
    case 'triple_fault':
      return 'TRIPLE FAULT: the vCPU shuts down';
    case 'idt_gate_missing':
      return `no IDT gate for ${vec(rec.vector)}`;
    case 'init':
    case 'reset':
      return `CPU ${rec.event}`;
    case 'interrupt':
    case 'iret':
      return verbose ? `${rec.event} ${vec(rec.vector)}` : undefined;
    case 'syscall':
      return verbose ? rec.event : undefined;
    // ---- harness
    case 'inject':
      return `harness injects: ${s(rec.what)}`;
    default:
      return verbose ? rec.event : undefined;
  }
}

const SRC_TAG: Readonly<Record<string, string>> = { host: 'host ', worker: 'worker', guest: 'guest', cpu: 'cpu  ', harness: 'apf  ', check: 'CHECK' };

export interface TimelineOptions extends TimelineContext {
  readonly cpus: number;
  /** Lines per section before "... N more" (default 100). */
  readonly maxLinesPerCpu?: number;
}

/** The timeline as a trace consumer: every record it can describe goes to its vCPU's (or the worker's, or the VM's) section. */
export class TimelineBuilder implements TraceConsumer {
  readonly events = ALL_TRACE_EVENTS;
  private readonly limit: number;
  private readonly sections = new Map<string, string[]>();
  private readonly hidden = new Map<string, number>();
  private readonly order: string[] = [];

  constructor(private readonly opts: TimelineOptions) {
    this.limit = opts.maxLinesPerCpu ?? 100;
    for (let c = 0; c < opts.cpus; c++) this.order.push(`vCPU ${c}`);
    this.order.push('host async page-in workers', 'VM-wide');
  }

  onRecord(rec: AnyTraceRecord): void {
    const text = describe(rec, this.opts);
    if (text === undefined) return;
    const key = rec.src === 'worker' ? 'host async page-in workers' : rec.cpu >= 0 ? `vCPU ${rec.cpu}` : 'VM-wide';
    if (!this.order.includes(key)) this.order.push(key);
    const lines = this.sections.get(key) ?? [];
    if (lines.length >= this.limit) {
      this.hidden.set(key, (this.hidden.get(key) ?? 0) + 1);
      return;
    }
    lines.push(`  ${formatTime(rec.t, 13)}  ${SRC_TAG[rec.src] ?? rec.src}  ${rec.src === 'worker' && rec.cpu >= 0 ? `[vCPU ${rec.cpu}] ` : ''}${text}`);
    this.sections.set(key, lines);
  }

  /** The sections as lines. */
  lines(): string[] {
    const out: string[] = [];
    for (const key of this.order) {
      const lines = this.sections.get(key);
      if (lines === undefined) continue;
      out.push(`── ${key} ${'─'.repeat(Math.max(4, 70 - key.length))}`);
      out.push(...lines);
      const more = this.hidden.get(key);
      if (more !== undefined) out.push(`  … ${more} more line${more === 1 ? '' : 's'} (use --verbose for all of them, or --trace FILE for the full trace)`);
    }
    return out;
  }
}

/** Renders records as per-vCPU sections (plus the worker section and VM-wide events). */
export function formatTimeline(records: readonly TraceRecord[], opts: TimelineOptions): string[] {
  const builder = new TimelineBuilder(opts);
  const router = new TraceRouter([builder]);
  for (const rec of records) router.onRecord(rec);
  return builder.lines();
}
