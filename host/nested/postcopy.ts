/**
 * Post-copy demand paging on the migration destination, the part that matters for nested state:
 * who brings in a page that is still on the source when a thread needs it now.
 *
 * Two mechanisms (docs/nested.md; Jim Mattson's description of GCE's post-copy on the KVM list,
 * "Why do we need KVM_REQ_GET_NESTED_STATE_PAGES after all", Jan 2022):
 *
 * - `vcpu_exit`: a vCPU in KVM_RUN exits to userspace and asks the source for the page itself
 *   (on its own thread, in parallel with other vCPUs), then re-enters;
 * - `listener`: the thread blocks in the kernel and its request is queued to one listener thread
 *   (QEMU's userfaultfd fault thread), which asks the source for one page at a time and wakes the
 *   thread when the page is in.
 *
 * With `listener`, memory is registered with userfaultfd: every thread that touches a missing page
 * blocks, whether the listener runs yet or not. With `vcpu_exit`, KVM itself knows which pages are
 * missing; a thread that is not in KVM_RUN (the VMM thread doing KVM_SET_NESTED_STATE) cannot exit,
 * so it can only wait on a listener if the VMM also has one for in-kernel accesses (GCE's "demand
 * paging listener"; `listener` not `never`); a VMM without one gets -EFAULT [inference: how a
 * KVM-side missing-page bitmap answers an access outside KVM_RUN is not described in the thread].
 *
 * The page itself comes from host/hostmem.ts (`remote` backing, its remote latency); a page the
 * source cannot send is `failing` and its fetch reports an error.
 */
import type { Waiter } from '../../sim/engine';
import type { Kvm, KvmVcpu } from '../kvm';
import { setNestedPageFetcher, type NestedPageFetcher } from './vmx';

/** How a vCPU in KVM_RUN gets a remote page. */
export type FetchVia = 'vcpu_exit' | 'listener';
/** When the VMM starts its userfaultfd listener thread, relative to restoring the nested state. */
export type ListenerStart = 'before_set_nested_state' | 'after_set_nested_state' | 'never';

export interface DemandPagerConfig {
  readonly fetch: FetchVia;
  readonly listener: ListenerStart;
}

/** Where the thread that needs the page is. */
export type RequestFrom = 'kvm_run' | 'set_nested_state';

interface Request {
  readonly gfn: number;
  readonly what: string;
  readonly cpu: number;
  readonly from: RequestFrom;
  readonly via: FetchVia;
  readonly t: number;
  readonly done: (ok: boolean) => void;
}

export class DemandPager implements NestedPageFetcher {
  /** Frames still on the source (marked by the migration; a frame stays here until it is in). */
  readonly remote = new Set<number>();
  listenerRunning = false;
  /** Requests queued to the listener that it has not finished. */
  private readonly queue: Request[] = [];
  private serving = false;
  /** Every request not yet answered (for the deadlock report). */
  private readonly open = new Set<Request>();
  private readonly names = new Map<number, string>();
  private readonly waiter: Waiter;

  constructor(
    readonly kvm: Kvm,
    readonly config: DemandPagerConfig,
  ) {
    setNestedPageFetcher(kvm, this);
    this.waiter = {
      name: 'post-copy demand paging',
      waiting: () => this.open.size > 0 && !this.kvm.destroyed,
      describe: () => [...this.open].map((r) => this.describe(r)).join('; '),
    };
    kvm.sim.registerWaiter(this.waiter);
  }

  /** Whether accesses outside KVM_RUN wait for a page on the listener (rather than failing). */
  get registered(): boolean {
    return this.config.fetch === 'listener' || this.config.listener !== 'never';
  }

  /** The frames are not on this host yet; `names` label them in traces and reports. */
  addRemote(gfns: readonly number[], names: ReadonlyMap<number, string>): void {
    for (const g of gfns) {
      this.remote.add(g);
      const n = names.get(g);
      if (n !== undefined) this.names.set(g, n);
    }
  }

  covers(gfn: number): boolean {
    return this.remote.has(gfn);
  }

  nameOf(gfn: number, fallback: string): string {
    return this.names.get(gfn) ?? fallback;
  }

  startListener(): void {
    if (this.listenerRunning) return;
    this.listenerRunning = true;
    this.kvm.sim.trace.emit('host', -1, 'postcopy_listener_start', { queued: this.queue.length });
    this.serveNext();
  }

  /** A vCPU in KVM_RUN needs `gfn` (the caller has stalled it and resumes it in `done`). */
  fetchForRun(v: KvmVcpu, gfn: number, what: string, done: (ok: boolean) => void): void {
    this.request({ gfn, what: this.nameOf(gfn, what), cpu: v.id, from: 'kvm_run', via: this.config.fetch, t: this.kvm.sim.now, done });
  }

  /**
   * The VMM thread needs `gfn` inside an ioctl on vCPU `cpu` (KVM_SET_NESTED_STATE). False when it
   * cannot wait for it (no userfaultfd registration): the ioctl fails with -EFAULT.
   */
  fetchForIoctl(cpu: number, gfn: number, what: string, done: (ok: boolean) => void): boolean {
    if (!this.registered) return false;
    this.request({ gfn, what: this.nameOf(gfn, what), cpu, from: 'set_nested_state', via: 'listener', t: this.kvm.sim.now, done });
    return true;
  }

  private request(r: Request): void {
    this.open.add(r);
    this.kvm.sim.trace.emit('host', r.cpu, 'postcopy_page_request', { gfn: r.gfn, page: r.what, via: r.via, from: r.from, listener: this.listenerRunning });
    if (r.via === 'vcpu_exit') {
      // The vCPU thread asks the source itself (KVM_EXIT_MEMORY_FAULT-style), in parallel with others.
      this.fetch(r, () => undefined);
      return;
    }
    this.queue.push(r);
    this.serveNext();
  }

  /** The listener serves its queue one page at a time. */
  private serveNext(): void {
    if (!this.listenerRunning || this.serving) return;
    const r = this.queue.shift();
    if (r === undefined) return;
    this.serving = true;
    this.fetch(r, () => {
      this.serving = false;
      this.serveNext();
    });
  }

  private fetch(r: Request, then: () => void): void {
    this.kvm.hostMem.pageIn(r.gfn, 'sync', 'host', r.cpu, (ok) => {
      if (ok) this.remote.delete(r.gfn);
      this.open.delete(r);
      this.kvm.sim.trace.emit('host', r.cpu, 'postcopy_page_served', { gfn: r.gfn, page: r.what, via: r.via, ok, waited_ns: this.kvm.sim.now - r.t });
      r.done(ok);
      then();
    });
  }

  private describe(r: Request): string {
    const who = r.from === 'set_nested_state' ? `the VMM's KVM_SET_NESTED_STATE for vCPU ${r.cpu}` : `vCPU ${r.cpu} (KVM_RUN)`;
    const where = `gfn 0x${r.gfn.toString(16)} (${r.what})`;
    if (r.via === 'vcpu_exit') return `${who} waits for ${where}, requested from the source after a vCPU exit`;
    const why = this.listenerRunning
      ? 'queued to the userfaultfd listener'
      : this.config.listener === 'never'
        ? 'queued to the userfaultfd listener, which the VMM never starts'
        : 'queued to the userfaultfd listener, which the VMM only starts after KVM_SET_NESTED_STATE returns';
    return `${who} is blocked in the kernel on ${where}: ${why}`;
  }
}

/** Pause a vCPU for the migration switch-over (the VMM kicks it out of KVM_RUN and does not re-enter). */
export function pauseVcpu(v: KvmVcpu): void {
  v.stall();
}

export function resumeVcpu(v: KvmVcpu): void {
  v.unstall();
}
