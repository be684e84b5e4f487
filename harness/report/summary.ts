/**
 * The run summary: the protocol's numbers, aggregated from trace records as they stream by.
 * Async #PFs injected, page-ready delivered, wake-alls, artificial halts, repeated faults,
 * synchronous faults, dummy nodes, ACKs, and how long each task waited for its pages.
 */
import { WAKE_ALL } from '../checkers/types';
import { eventSet, type EventsIn, type TraceConsumer, type TraceEventName, type TraceRecordOf } from '../trace/consumer';

export interface TaskWaits {
  readonly task: string;
  readonly waits: number;
  readonly totalNs: number;
  readonly maxNs: number;
}

export interface Summary {
  /** Virtual time the run ended (ns). */
  readonly endT: number;
  readonly records: number;
  readonly notPresent: number;
  readonly asyncPfInjected: number;
  readonly notPresentHalted: number;
  readonly pageReadyDelivered: number;
  readonly pageReadySuppressed: number;
  readonly wakeAlls: number;
  readonly artificialHalts: number;
  readonly repeatedFaults: number;
  readonly syncFaults: number;
  readonly syncFaultReasons: Readonly<Record<string, number>>;
  readonly dummyNodes: number;
  readonly dummiesConsumed: number;
  readonly acks: number;
  readonly pagesEvicted: number;
  readonly pagesFaultedIn: number;
  readonly guestBugs: number;
  readonly warnings: number;
  readonly hungTasks: number;
  readonly panics: number;
  readonly tasksStarted: number;
  readonly tasksExited: number;
  readonly waits: readonly TaskWaits[];
}

/** The events whose fields the summary reads; every other figure is a count the trace bus keeps. */
const SUMMARY_EVENTS = eventSet(['kvm_async_pf_not_present', 'kvm_async_pf_ready', 'kvm_async_pf_sync', 'kvm_async_pf_task_wake', 'kvm_async_pf_task_woken'] as const);

/** Per-event counts of a run (the trace bus: `countOf`, `recordCount`). */
export interface EventCounts {
  countOf(event: TraceEventName): number;
  readonly recordCount: number;
}

/**
 * Aggregates a summary: the records of the few events whose fields it reads (which way a
 * not-present or page-ready went, why a fault was synchronous, dummy nodes, waits) as they stream
 * by, the plain counts from the trace bus's per-event counters when the summary is built, so the
 * records of every other event need not be built for it.
 */
export class SummaryBuilder implements TraceConsumer<EventsIn<typeof SUMMARY_EVENTS>> {
  readonly events = SUMMARY_EVENTS;
  private notPresentHalted = 0;
  private asyncPfInjected = 0;
  private pageReadyDelivered = 0;
  private pageReadySuppressed = 0;
  private wakeAlls = 0;
  private dummyNodes = 0;
  private readonly syncWhy = new Map<string, number>();
  private readonly waits = new Map<string, { waits: number; totalNs: number; maxNs: number }>();

  onRecord(rec: TraceRecordOf<EventsIn<typeof SUMMARY_EVENTS>>): void {
    switch (rec.event) {
      case 'kvm_async_pf_not_present':
        if (!rec.injected) this.notPresentHalted++;
        else this.asyncPfInjected++;
        break;
      case 'kvm_async_pf_ready':
        if (rec.token === WAKE_ALL) {
          if (rec.notified) this.wakeAlls++;
        } else if (!rec.notified) this.pageReadySuppressed++;
        else this.pageReadyDelivered++;
        break;
      case 'kvm_async_pf_sync':
        this.syncWhy.set(rec.why, (this.syncWhy.get(rec.why) ?? 0) + 1);
        break;
      case 'kvm_async_pf_task_wake':
        if (rec.dummy) this.dummyNodes++;
        break;
      case 'kvm_async_pf_task_woken': {
        const ns = rec.waited_ns;
        const w = this.waits.get(rec.task) ?? { waits: 0, totalNs: 0, maxNs: 0 };
        w.waits++;
        w.totalNs += ns;
        w.maxNs = Math.max(w.maxNs, ns);
        this.waits.set(rec.task, w);
        break;
      }
    }
  }

  /** The summary of a run that ended at `endT`, with the bus's counts of that run. */
  build(endT: number, counts: EventCounts): Summary {
    const c = (e: TraceEventName): number => counts.countOf(e);
    const syncFaultReasons: Record<string, number> = {};
    for (const [k, v] of [...this.syncWhy].sort((a, b) => a[0].localeCompare(b[0]))) syncFaultReasons[k] = v;
    return {
      records: counts.recordCount,
      notPresent: c('kvm_async_pf_not_present'),
      asyncPfInjected: this.asyncPfInjected,
      notPresentHalted: this.notPresentHalted,
      pageReadyDelivered: this.pageReadyDelivered,
      pageReadySuppressed: this.pageReadySuppressed,
      wakeAlls: this.wakeAlls,
      artificialHalts: c('kvm_async_pf_halt'),
      repeatedFaults: c('kvm_async_pf_repeated_fault') + c('kvm_async_pf_doublefault'),
      syncFaults: c('kvm_async_pf_sync'),
      dummyNodes: this.dummyNodes,
      dummiesConsumed: c('kvm_async_pf_dummy_consumed'),
      acks: c('kvm_async_pf_ack'),
      pagesEvicted: c('host_page_evict'),
      pagesFaultedIn: c('host_page_fault_in'),
      guestBugs: c('bug'),
      warnings: c('warn'),
      hungTasks: c('hung_task'),
      panics: c('panic'),
      tasksStarted: c('task_new'),
      tasksExited: c('task_exit'),
      endT,
      syncFaultReasons,
      waits: [...this.waits].map(([task, w]) => ({ task, ...w })),
    };
  }
}

/** The summary as text lines for the terminal. */
export function formatSummary(s: Summary, fmtDuration: (ns: number) => string): string[] {
  const lines: string[] = [];
  const row = (label: string, value: string | number, note = ''): void => {
    lines.push(`  ${label.padEnd(34)} ${String(value).padStart(6)}${note === '' ? '' : '  ' + note}`);
  };
  row('async #PFs injected (not present)', s.asyncPfInjected, s.notPresentHalted > 0 ? `(+${s.notPresentHalted} not injected: vCPU halted instead)` : '');
  row('page-ready delivered', s.pageReadyDelivered, s.pageReadySuppressed > 0 ? `(+${s.pageReadySuppressed} completed without notifying the guest)` : '');
  row('wake-alls', s.wakeAlls);
  row('artificial halts', s.artificialHalts);
  row('repeated faults', s.repeatedFaults);
  const why = Object.entries(s.syncFaultReasons).map(([k, v]) => `${k}: ${v}`).join(', ');
  row('synchronous faults', s.syncFaults, why === '' ? '' : `(${why})`);
  row('dummy nodes (wake before wait)', s.dummyNodes, s.dummiesConsumed > 0 ? `(${s.dummiesConsumed} consumed)` : '');
  row('page-ready ACKs', s.acks);
  row('pages evicted / faulted in', `${s.pagesEvicted}/${s.pagesFaultedIn}`);
  if (s.guestBugs + s.warnings + s.hungTasks + s.panics > 0) row('guest BUGs / WARNs / hung / panics', `${s.guestBugs}/${s.warnings}/${s.hungTasks}/${s.panics}`);
  row('tasks started / exited', `${s.tasksStarted}/${s.tasksExited}`);
  if (s.waits.length > 0) {
    lines.push('  per-task waits for pages:');
    for (const w of s.waits) {
      lines.push(`    ${w.task.padEnd(20)} ${String(w.waits).padStart(3)} wait${w.waits === 1 ? ' ' : 's'}  total ${fmtDuration(w.totalNs).padStart(9)}  max ${fmtDuration(w.maxNs).padStart(9)}`);
    }
  }
  return lines;
}
