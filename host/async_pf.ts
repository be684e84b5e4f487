/**
 * The architecture-neutral half of async page faults (virt/kvm/async_pf.c): the per-vCPU list of
 * outstanding work items, the worker that faults the page in, the `done` list, the dequeue loop,
 * the wake-all item and queue clearing. Everything x86 goes through `AsyncPfArch` (the
 * `kvm_arch_*` hooks, implemented in x86/apf.ts).
 *
 * Spec §3.6 (setup), §3.7 (completion), §3.9 (wake-all), §3.10 (cleanup).
 */
import { hex } from '../shared-abi/addr';
import { ASYNC_PF_PER_VCPU, KVM_APF_WAKE_ALL_TOKEN } from '../shared-abi/apf';
import type { Simulation } from '../sim/engine';
import { Priority, type EventHandle } from '../sim/queue';
import { GUEST_RAM_HOST_PFN, type HostMemory, type PageInTicket } from './hostmem';

/** x86 part of a work item (`struct kvm_arch_async_pf`). */
export interface ArchAsyncPf {
  readonly token: number;
  readonly gfn: number;
  readonly errorCode: number;
  /** The MMU was a direct (TDP) MMU when the fault happened. */
  readonly directMap: boolean;
  /** Guest page-table root for shadow paging; -1 (INVALID_GPA) when direct. */
  readonly cr3: number;
}

/** `struct kvm_async_pf`. */
export interface AsyncPfWork {
  /** Creation order on this vCPU (diagnostics). */
  readonly seq: number;
  readonly cr2OrGpa: number;
  /** Host virtual address the worker faults in. */
  readonly addr: number;
  readonly arch: ArchAsyncPf;
  readonly wakeupAll: boolean;
  notpresentInjected: boolean;
  /** Whether the worker's fault-in succeeded (false for a failing page). */
  ok: boolean;
  /** `flushing`: taken off the lists by a clear that waits for its running worker. */
  state: 'queued' | 'done' | 'freed' | 'flushing';
  /** The worker's page-in, while it runs. */
  ticket: PageInTicket | null;
  /** The worker has not started yet (the workqueue has not run it): its start event. */
  pending: EventHandle | null;
}

/** The x86 hooks of the generic code (spec §3.6.1, §3.7.2–§3.7.4, §3.7.0 step 6). */
export interface AsyncPfArch {
  /** kvm_arch_async_page_not_present: returns whether "not present" was injected. */
  notPresent(work: AsyncPfWork): boolean;
  /** kvm_arch_async_page_ready: the prefault. */
  ready(work: AsyncPfWork): void;
  /** kvm_arch_async_page_present: notify the guest. */
  present(work: AsyncPfWork): void;
  /** kvm_arch_async_page_present_queued: APF_READY + kick (v5.8+ only). */
  presentQueued(): void;
  /** kvm_arch_can_dequeue_async_page_present (older: can_inject). */
  canDequeue(): boolean;
  /** v5.8+: the worker calls presentQueued on the empty→non-empty transition. */
  readonly hasPresentQueued: boolean;
}

/** What the generic code needs from its vCPU. */
export interface AsyncPfHost {
  readonly sim: Simulation;
  readonly hostMem: HostMemory;
  readonly vcpuId: number;
  readonly arch: AsyncPfArch;
  /** The old `kvm_async_pf_completed` class with `pfn`. */
  readonly completedHasPfn: boolean;
  /** Time from queueing the work to its worker starting the fault-in, ns (0: at once). */
  readonly workerStartNs: number;
  /**
   * The caller of a clear waits for running workers (cancel_work_sync): `begin` when it starts
   * waiting, `end` when the last one has finished. The vCPU cannot run in between.
   */
  clearWait(phase: 'begin' | 'end'): void;
  /** An allocation from async_pf_cache fails (test hook / configured probability). */
  allocFails(kind: 'fault' | 'wakeup_all'): boolean;
  /** __kvm_vcpu_wake_up: wake the vCPU thread if it is blocked. */
  wakeUp(): void;
  /** The vCPU (or VM) this work belongs to: 'alive', or 'flushed' (torn down, its queue cleared). */
  lifecycle(): 'alive' | 'flushed';
}

export type SetupResult = 'queued' | 'queue_full' | 'alloc_fail';

/** Who cleared the queue (the `reason` of `kvm_async_pf_clear_queue`). */
export type ClearReason = 'disable' | 'reset' | 'cr0_pg' | 'destroy' | 'migrate';

export interface AsyncPfCounters {
  setups: number;
  completions: number;
  dequeued: number;
  wakeAllsQueued: number;
  cleared: number;
  /** Work items a clear cancelled before their worker started (their page never fetched). */
  cancelledBeforeStart: number;
  /** Work items a clear had to wait for (their worker was paging in). */
  clearWaits: number;
}

/** `vcpu->async_pf`: the generic per-vCPU state and operations. */
export class AsyncPf {
  /** Every outstanding non-wake-all item, oldest first (`queue`). */
  readonly queue: AsyncPfWork[] = [];
  /** Completed items, FIFO (`done`). */
  readonly done: AsyncPfWork[] = [];
  /** Items counted against ASYNC_PF_PER_VCPU (queue + wake-all items on done). */
  queued = 0;
  readonly counters: AsyncPfCounters = { setups: 0, completions: 0, dequeued: 0, wakeAllsQueued: 0, cleared: 0, cancelledBeforeStart: 0, clearWaits: 0 };
  private seq = 0;
  /** The clear in progress that waits for running workers: how many are left, and since when. */
  private flushingWork: AsyncPfWork[] = [];
  private flush: { reason: ClearReason; left: number; since: number; doneWasEmpty: boolean } | null = null;

  constructor(private readonly host: AsyncPfHost) {}

  /** kvm_setup_async_pf (spec §3.6): queue a work item and start its worker. */
  setup(cr2OrGpa: number, arch: ArchAsyncPf): SetupResult {
    if (this.queued >= ASYNC_PF_PER_VCPU) return 'queue_full';
    // Step 2 (hva error) cannot happen: every guest frame has a host address in this model.
    if (this.host.allocFails('fault')) return 'alloc_fail';
    const work: AsyncPfWork = {
      seq: ++this.seq,
      cr2OrGpa,
      addr: this.host.hostMem.hva(arch.gfn),
      arch,
      wakeupAll: false,
      notpresentInjected: false,
      ok: false,
      state: 'queued',
      ticket: null,
      pending: null,
    };
    this.queue.push(work);
    this.queued++;
    this.counters.setups++;
    work.notpresentInjected = this.host.arch.notPresent(work);
    // schedule_work: the worker runs when the workqueue gets to it (at once unless configured).
    const delay = this.host.workerStartNs;
    if (delay > 0) {
      work.pending = this.host.sim.schedule(delay, Priority.Worker, () => this.startWorker(work), `vcpu${this.host.vcpuId}.async_pf_execute`, 'host');
    } else {
      this.startWorker(work);
    }
    return 'queued';
  }

  /** The worker begins: async_pf_execute faults the page in. */
  private startWorker(work: AsyncPfWork): void {
    work.pending = null;
    work.ticket = this.host.hostMem.pageIn(work.arch.gfn, 'worker', 'worker', this.host.vcpuId, (ok) => this.execute(work, ok));
  }

  /** async_pf_execute, after the fault-in (spec §3.7.0). */
  private execute(work: AsyncPfWork, ok: boolean): void {
    work.ticket = null;
    if (work.state === 'flushing') {
      this.finishFlushed(work, ok);
      return;
    }
    const life = this.host.lifecycle();
    if (life === 'flushed') return;
    if (work.state !== 'queued') return;
    work.ok = ok;
    const first = this.done.length === 0;
    this.done.push(work);
    work.state = 'done';
    this.counters.completions++;
    if (this.host.arch.hasPresentQueued && first) this.host.arch.presentQueued();
    this.host.sim.trace.emit('worker', this.host.vcpuId, 'kvm_async_pf_completed', this.completedFields(work, ok));
    this.host.wakeUp();
  }

  /** The tracepoint's fields: old profiles have `pfn` between `address` and `gva` (the order is hashed). */
  private completedFields(work: AsyncPfWork, ok: boolean): { address: number; pfn?: number; gva: number; ok: boolean } {
    return this.host.completedHasPfn
      ? { address: work.addr, pfn: ok ? GUEST_RAM_HOST_PFN + work.arch.gfn : 0, gva: work.cr2OrGpa, ok }
      : { address: work.addr, gva: work.cr2OrGpa, ok };
  }

  /**
   * A worker a clear is waiting for has finished its page-in. It runs to its end as usual (the
   * page is now in host memory, the item goes on `done`, APF_READY and a wake-up), and the clear,
   * which has been waiting in cancel_work_sync, then frees it. When it was the last one the
   * clear returns and its caller carries on.
   */
  private finishFlushed(work: AsyncPfWork, ok: boolean): void {
    const f = this.flush;
    work.ok = ok;
    work.state = 'freed';
    this.counters.completions++;
    // The worker's own tail: on an empty `done` it raises APF_READY (v5.8+); then the wake-up.
    const first = f !== null && f.doneWasEmpty;
    if (f !== null) f.doneWasEmpty = false;
    if (this.host.arch.hasPresentQueued && first) this.host.arch.presentQueued();
    this.host.sim.trace.emit('worker', this.host.vcpuId, 'kvm_async_pf_completed', this.completedFields(work, ok));
    this.host.wakeUp();
    if (f === null) return;
    f.left--;
    if (f.left > 0) return;
    this.flush = null;
    this.host.sim.trace.emit('host', this.host.vcpuId, 'kvm_async_pf_clear_queue_done', { reason: f.reason, waited_ns: this.host.sim.now - f.since });
    this.host.clearWait('end');
  }

  /** kvm_check_async_pf_completion: the dequeue loop (spec §3.7.1). */
  checkCompletion(): number {
    let n = 0;
    while (this.done.length > 0 && this.host.arch.canDequeue()) {
      const work = this.done.shift()!;
      this.host.arch.ready(work);
      this.host.arch.present(work);
      if (!work.wakeupAll) {
        const i = this.queue.indexOf(work);
        if (i >= 0) this.queue.splice(i, 1);
      }
      this.queued--;
      work.state = 'freed';
      this.counters.dequeued++;
      n++;
    }
    return n;
  }

  /**
   * kvm_clear_async_pf_completion_queue (spec §3.10): cancel every item, free everything on
   * `done`, `queued := 0`. No guest notification, no gfn-hash update (callers reset the hash).
   *
   * Cancelling is cancel_work_sync: an item whose worker has not started is cancelled and its page
   * is never fetched; an item whose worker is paging in cannot be cancelled, and the caller waits
   * until that page-in has ended (`clearWait`), the page arriving in host memory. The items leave
   * the lists at once, so nothing can dequeue them meanwhile.
   */
  clear(reason: ClearReason): number {
    const dropped: AsyncPfWork[] = [];
    const running: AsyncPfWork[] = [];
    const notStarted: AsyncPfWork[] = [];
    for (const w of this.queue) {
      if (reason === 'migrate') {
        // The destination's vCPU starts with no queue: the source's work stays behind with the
        // source (its page-ins run on there, nobody on this side waits for them).
        w.pending?.cancel();
        w.pending = null;
        w.ticket?.cancel();
        w.ticket = null;
      } else if (w.state === 'queued' && w.pending !== null) {
        w.pending.cancel();
        w.pending = null;
        notStarted.push(w);
      } else if (w.state === 'queued' && w.ticket !== null) {
        running.push(w);
      }
      dropped.push(w);
    }
    const doneWasEmpty = this.done.length === 0;
    for (const w of this.done) if (!dropped.includes(w)) dropped.push(w);
    for (const w of dropped) w.state = 'freed';
    for (const w of running) w.state = 'flushing';
    this.queue.length = 0;
    this.done.length = 0;
    this.queued = 0;
    this.counters.cleared += dropped.length;
    this.host.sim.trace.emit('host', this.host.vcpuId, 'kvm_async_pf_clear_queue', {
      reason,
      dropped: dropped.length,
      tokens: dropped.map((w) => hex(w.arch.token)).join(','),
    });
    for (const w of this.queueOrder(notStarted, running)) {
      const started = w.state === 'flushing';
      if (started) this.counters.clearWaits++;
      else this.counters.cancelledBeforeStart++;
      this.host.sim.trace.emit('host', this.host.vcpuId, 'kvm_async_pf_cancel_work_sync', {
        token: w.arch.token,
        gfn: w.arch.gfn,
        outcome: started ? 'wait' : 'cancelled',
      });
    }
    if (running.length > 0) {
      if (this.flush === null) {
        this.flush = { reason, left: 0, since: this.host.sim.now, doneWasEmpty };
        this.host.clearWait('begin');
      }
      this.flush.left += running.length;
      this.flushingWork = [...this.flushingWork.filter((w) => w.state === 'flushing'), ...running];
    }
    return dropped.length;
  }

  /** Frames whose page-in a clear in progress is waiting for. */
  flushingGfns(): number[] {
    return this.flushingWork.filter((w) => w.state === 'flushing').map((w) => w.arch.gfn);
  }

  /** The outstanding items of a clear in the order cancel_work_sync meets them (oldest first). */
  private queueOrder(a: readonly AsyncPfWork[], b: readonly AsyncPfWork[]): AsyncPfWork[] {
    return [...a, ...b].sort((x, y) => x.seq - y.seq);
  }

  /** The clear in progress is waiting for running workers. */
  get clearWaiting(): boolean {
    return this.flush !== null;
  }

  /** Work items whose worker is running or yet to run (teardown reports them). */
  workersInFlight(): number {
    let n = 0;
    for (const w of this.queue) if (w.ticket !== null || w.pending !== null) n++;
    return n;
  }

  /** kvm_async_pf_wakeup_all (spec §3.9). Returns whether a wake-all item was queued. */
  wakeupAll(): boolean {
    const emit = (queued: boolean, why?: 'done_not_empty' | 'alloc_fail'): void =>
      this.host.sim.trace.emit('host', this.host.vcpuId, 'kvm_async_pf_wakeup_all', why === undefined ? { queued } : { queued, why });
    if (this.done.length > 0) {
      emit(false, 'done_not_empty');
      return false;
    }
    if (this.host.allocFails('wakeup_all')) {
      emit(false, 'alloc_fail');
      return false;
    }
    const work: AsyncPfWork = {
      seq: ++this.seq,
      cr2OrGpa: 0,
      addr: 0,
      arch: { token: KVM_APF_WAKE_ALL_TOKEN, gfn: 0, errorCode: 0, directMap: true, cr3: -1 },
      wakeupAll: true,
      notpresentInjected: false,
      ok: true,
      state: 'done',
      ticket: null,
      pending: null,
    };
    const first = this.done.length === 0;
    this.done.push(work);
    if (this.host.arch.hasPresentQueued && first) this.host.arch.presentQueued();
    this.queued++;
    this.counters.wakeAllsQueued++;
    emit(true);
    return true;
  }
}
