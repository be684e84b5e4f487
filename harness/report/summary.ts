/**
 * The run summary: the protocol's numbers, aggregated from trace records as they stream by.
 * Async #PFs injected, page-ready delivered, wake-alls, artificial halts, repeated faults,
 * synchronous faults, dummy nodes, ACKs, and how long each task waited for its pages.
 */
import { WAKE_ALL } from '../checkers/types';
import { ALL_TRACE_EVENTS, type AnyTraceRecord, type TraceConsumer } from '../trace/consumer';

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

/** Aggregates a summary from records (all of them: it counts them and notes the last one's time). */
export class SummaryBuilder implements TraceConsumer {
  readonly events = ALL_TRACE_EVENTS;
  private n = {
    records: 0,
    notPresent: 0,
    asyncPfInjected: 0,
    notPresentHalted: 0,
    pageReadyDelivered: 0,
    pageReadySuppressed: 0,
    wakeAlls: 0,
    artificialHalts: 0,
    repeatedFaults: 0,
    syncFaults: 0,
    dummyNodes: 0,
    dummiesConsumed: 0,
    acks: 0,
    pagesEvicted: 0,
    pagesFaultedIn: 0,
    guestBugs: 0,
    warnings: 0,
    hungTasks: 0,
    panics: 0,
    tasksStarted: 0,
    tasksExited: 0,
  };
  private readonly syncWhy = new Map<string, number>();
  private readonly waits = new Map<string, { waits: number; totalNs: number; maxNs: number }>();
  private endT = 0;

  onRecord(rec: AnyTraceRecord): void {
    const n = this.n;
    n.records++;
    this.endT = rec.t;
    switch (rec.event) {
      case 'kvm_async_pf_not_present':
        n.notPresent++;
        if (!rec.injected) n.notPresentHalted++;
        else n.asyncPfInjected++;
        break;
      case 'kvm_async_pf_ready':
        if (rec.token === WAKE_ALL) {
          if (rec.notified) n.wakeAlls++;
        } else if (!rec.notified) n.pageReadySuppressed++;
        else n.pageReadyDelivered++;
        break;
      case 'kvm_async_pf_halt':
        n.artificialHalts++;
        break;
      case 'kvm_async_pf_repeated_fault':
      case 'kvm_async_pf_doublefault':
        n.repeatedFaults++;
        break;
      case 'kvm_async_pf_sync': {
        n.syncFaults++;
        this.syncWhy.set(rec.why, (this.syncWhy.get(rec.why) ?? 0) + 1);
        break;
      }
      case 'kvm_async_pf_task_wake':
        if (rec.dummy) n.dummyNodes++;
        break;
      case 'kvm_async_pf_dummy_consumed':
        n.dummiesConsumed++;
        break;
      case 'kvm_async_pf_ack':
        n.acks++;
        break;
      case 'host_page_evict':
        n.pagesEvicted++;
        break;
      case 'host_page_fault_in':
        n.pagesFaultedIn++;
        break;
      case 'bug':
        n.guestBugs++;
        break;
      case 'warn':
        n.warnings++;
        break;
      case 'hung_task':
        n.hungTasks++;
        break;
      case 'panic':
        n.panics++;
        break;
      case 'task_new':
        n.tasksStarted++;
        break;
      case 'task_exit':
        n.tasksExited++;
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

  build(endT?: number): Summary {
    const syncFaultReasons: Record<string, number> = {};
    for (const [k, v] of [...this.syncWhy].sort((a, b) => a[0].localeCompare(b[0]))) syncFaultReasons[k] = v;
    return {
      ...this.n,
      endT: endT ?? this.endT,
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
