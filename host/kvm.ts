/**
 * The VM and vCPU objects (virt/kvm/kvm_main.c + arch/x86/kvm/x86.c state) and the userspace
 * controls a VMM has over them ("ioctls"): create vCPUs, run, inject NMI/SMI/INIT/RESET, get/set
 * MSRs, destroy, and host memory pressure (evictions).
 */
import { PAGE_SIZE } from '../shared-abi/addr';
import { combineExceptions, VEC_DF } from '../sim/cpu/exceptions';
import { Vcpu } from '../sim/cpu/vcpu';
import type { Simulation } from '../sim/engine';
import type { Prng } from '../sim/prng';
import type { GuestMemory } from '../sim/memory';
import type { EventHandle } from '../sim/queue';
import { forwardEmit, sourceTrace, type FieldlessEventName, type TraceEventFrom, type TraceFields, type TraceFieldsOf } from '../sim/trace';
import { AsyncPf } from './async_pf';
import { hostDesign, type HostDesign } from './designs';
import type { HostToggles, VmConfig } from './config';
import { GfnCache } from './gfn_cache';
import { HostMemory, type PageInTicket } from './hostmem';
import type { MigrateResult } from './memslots';
import { Lapic, type DeliveryMode, type IpiShorthand, type LapicOwner } from './lapic';
import { machineCheck, type SyncWhy } from './mmu';
import { resolveHostProfile, type ResolvedHostProfile } from './profiles';
import { newApfState, type ApfState, vmmPageReady, x86AsyncPfArch } from './x86/apf';
import { gfnHomeSlot, gfnHomeSlotPre47, ApfGfnHash } from './x86/gfn_hash';
import { msrRead, msrWrite } from './x86/msr';
import { migrateNested, type NestedMigrationConfig } from './nested/migrate';
import type { DemandPager } from './nested/postcopy';
import { preemptBusy, scheduleRun, shutdown } from './x86/run';

/** Requests the model uses (KVM_REQ_APF_HALT, KVM_REQ_APF_READY, KVM_REQ_GET_NESTED_STATE_PAGES). */
export type KvmRequest = 'apf_halt' | 'apf_ready' | 'get_nested_state_pages';

/** What the vCPU thread is doing. */
export type VcpuThread = 'idle' | 'scheduled' | 'busy' | 'blocked' | 'stalled' | 'smm' | 'stopped';

/** An exception queued for injection at the next entry (`vcpu->arch.exception`). */
export interface PendingException {
  readonly vector: number;
  readonly errorCode?: number;
  /** CR2 (the payload of a #PF): the token for an async #PF. */
  readonly cr2?: number;
  /** Marked `async_page_fault`. */
  readonly async?: boolean;
  /** Guest mode: to be reflected to L1 as a #PF VM-exit, with the token as payload or via nested_apf_token. */
  readonly nested?: 'payload' | 'nested_apf_token';
}

export interface KvmVcpuStats {
  /** "Not present" #PFs queued (async PFs injected). */
  asyncPfInjected: number;
  /** Artificial halts begun (KVM_REQ_APF_HALT consumed). */
  apfHalts: number;
  /** Page-ready notifications sent (token written + interrupt, or #PF reason 2). */
  pageReadyDelivered: number;
  repeatedFaults: number;
  /** Faults resolved synchronously (including prefetch). */
  syncFaults: number;
  eptViolations: number;
  exits: number;
  instructions: number;
  acks: number;
  pfFixed: number;
  dfCancellations: number;
  machineChecks: number;
  exceptionsInjected: number;
  interruptsInjected: number;
  nestedVmexits: number;
  blocks: number;
  hlts: number;
  preemptions: number;
  smis: number;
  resets: number;
}

const newStats = (): KvmVcpuStats => ({
  asyncPfInjected: 0,
  apfHalts: 0,
  pageReadyDelivered: 0,
  repeatedFaults: 0,
  syncFaults: 0,
  eptViolations: 0,
  exits: 0,
  instructions: 0,
  acks: 0,
  pfFixed: 0,
  dfCancellations: 0,
  machineChecks: 0,
  exceptionsInjected: 0,
  interruptsInjected: 0,
  nestedVmexits: 0,
  blocks: 0,
  hlts: 0,
  preemptions: 0,
  smis: 0,
  resets: 0,
});

/** Default time in SMM per KVM_SMI. */
export const DEFAULT_SMM_NS = 20_000;
/** Default VM-exit round-trip cost. */
export const DEFAULT_EXIT_COST_NS = 1_000;

/** One vCPU: the hardware (`cpu`), its LAPIC and the host's per-vCPU async-PF state. */
/** One live vCPU's async-PF bookkeeping (`Kvm.asyncPfSnapshot`). */
export interface AsyncPfSnapshot {
  readonly cpu: number;
  readonly queued: number;
  readonly queueLength: number;
  readonly doneWakeAlls: number;
  readonly hashSize: number;
  /** Tokens of the work items (not wake-alls) on the queue or the done list. */
  readonly heldTokens: readonly number[];
}

export class KvmVcpu {
  readonly cpu: Vcpu;
  readonly lapic: Lapic | null;
  /** `vcpu->arch.apf`; `data` is the cached translation of the registered area (gfn_cache.ts). */
  readonly apf: ApfState & { readonly hash: ApfGfnHash; readonly data: GfnCache };
  readonly asyncPf: AsyncPf;
  readonly stats: KvmVcpuStats = newStats();
  /** mp_state: RUNNABLE, or HALTED after a HLT exit. */
  mpState: 'runnable' | 'halted' = 'runnable';
  thread: VcpuThread = 'idle';
  /** Why the vCPU stopped (`thread === 'stopped'`). */
  stoppedBy: string | null = null;
  readonly requests = new Set<KvmRequest>();
  apfHaltCause: { gfn: number; why: 'undeliverable' | 'repeated' } | null = null;
  /** A kick/exit/wake-up happened: the next boundary is a full entry. */
  entryNeeded = true;
  pendingException: PendingException | null = null;
  tripleFaultPending = false;
  nmiPending = 0;
  /** KVM_SMI pending: time to spend in SMM. */
  smiPending: number | null = null;
  resetPending: 'init' | 'reset' | null = null;
  /** Other KVM PV MSRs (stored only). */
  readonly otherMsrs = new Map<number, bigint>();
  /** Lifecycle: 'alive', or torn down (its queue cleared, running page-ins waited for). */
  life: 'alive' | 'flushed' = 'alive';
  /** @internal run-loop bookkeeping */
  event: EventHandle | null = null;
  /** @internal start of the compute instruction in flight */
  busyStart = 0;
  /** @internal synchronous fault-ins the vCPU thread is waiting for */
  stalls = 0;
  private readonly stallTickets: PageInTicket[] = [];

  constructor(
    readonly kvm: Kvm,
    readonly id: number,
  ) {
    this.cpu = new Vcpu({ id, memory: kvm.hostMem.phys, slat: kvm.hostMem, clock: kvm.sim.clock, trace: kvm.sim.trace });
    this.lapic = kvm.config.lapic === 'userspace' ? null : new Lapic(this.lapicOwner());
    this.apf = {
      ...newApfState(),
      hash: new ApfGfnHash(kvm.profile.hashPre47 ? gfnHomeSlotPre47 : gfnHomeSlot),
      data: new GfnCache({ hostMem: kvm.hostMem, toggles: kvm.toggles, trace: sourceTrace(kvm.sim.trace, 'host', () => this.id) }),
    };
    this.asyncPf = new AsyncPf({
      sim: kvm.sim,
      hostMem: kvm.hostMem,
      vcpuId: id,
      arch: x86AsyncPfArch(this),
      completedHasPfn: kvm.profile.completedHasPfn,
      workerStartNs: kvm.workerStartNs,
      clearWait: (phase) => (phase === 'begin' ? this.beginWait() : this.endWait()),
      allocFails: (kind) => kvm.allocFails(kind),
      wakeUp: () => this.wakeUp('async_pf_completed'),
      lifecycle: () => this.life,
    });
  }

  private lapicOwner(): LapicOwner {
    return {
      vcpuId: this.id,
      sim: this.kvm.sim,
      kick: () => this.kick(),
      nmi: () => this.queueNmi(),
      init: () => this.requestReset('init'),
      enabled: () => {
        // 2f15d027c05f: enabling the LAPIC re-checks the done list.
        if (this.kvm.toggles.lapic_enabled_check) this.makeRequest('apf_ready');
      },
      ipi: (sh, dest, mode, vector) => this.kvm.routeIpi(this, sh, dest, mode, vector),
    };
  }

  /** Emit a host trace record for this vCPU. */
  trace<E extends TraceEventFrom<'host'>>(event: E, fields: TraceFieldsOf<E>): void;
  trace<E extends TraceEventFrom<'host'> & FieldlessEventName>(event: E): void;
  trace(event: TraceEventFrom<'host'>, fields?: TraceFields): void {
    forwardEmit(this.kvm.sim.trace, 'host', this.id, event, fields);
  }

  /** kvm_is_exception_pending. */
  exceptionPending(): boolean {
    return this.pendingException !== null || this.tripleFaultPending;
  }

  /**
   * kvm_queue_exception via kvm_multiple_exception: a second exception on top of a pending one
   * becomes #DF (contributory+contributory, #PF+#PF/contributory), a triple fault on top of #DF,
   * and otherwise replaces the pending one.
   */
  queueException(ex: PendingException): void {
    if (this.tripleFaultPending) return;
    const prev = this.pendingException;
    if (prev === null) {
      this.pendingException = ex;
    } else {
      const c = combineExceptions(prev.vector, ex.vector);
      this.trace('kvm_multiple_exception', { prev: prev.vector, vector: ex.vector, result: c });
      if (c === 'triple_fault') {
        this.pendingException = null;
        this.tripleFaultPending = true;
      } else if (c === 'double_fault') {
        this.pendingException = { vector: VEC_DF, errorCode: 0 };
      } else {
        this.pendingException = ex;
      }
    }
    this.entryNeeded = true;
  }

  /** kvm_make_request. */
  makeRequest(req: KvmRequest, cause?: { gfn: number; why: 'undeliverable' | 'repeated' }): void {
    this.requests.add(req);
    if (req === 'apf_halt') this.apfHaltCause = cause ?? this.apfHaltCause;
  }

  /** kvm_vcpu_kick: leave guest mode now (preempt a compute instruction) and wake if blocked. */
  kick(): void {
    if (this.life !== 'alive') return;
    this.entryNeeded = true;
    if (this.thread === 'busy') preemptBusy(this);
    else if (this.thread === 'blocked') this.wakeUp('kick');
  }

  /**
   * Hold the vCPU thread outside the guest until a matching `unstall`: while it waits for a page it
   * needs (in the kernel, or in userspace after an exit), or while the VMM has it paused for a
   * migration's switch-over. The same counter as the synchronous fault-in uses, so the two compose.
   */
  stall(): void {
    this.stalls++;
    // A compute instruction in flight ends now, as on a kick (the thread leaves the guest).
    if (this.thread === 'busy') preemptBusy(this);
    if (this.thread === 'scheduled') {
      if (this.event !== null) this.event.cancel();
      this.event = null;
      this.thread = 'stalled';
    }
    this.entryNeeded = true;
  }

  /** Undo one `stall`; the last one lets the thread run again (a blocked, e.g. halted, thread stays blocked). */
  unstall(): void {
    if (this.stalls > 0) this.stalls--;
    if (this.stalls > 0 || this.life !== 'alive') return;
    // 'scheduled' without an event: woken while stalled, the entry found it stalled and stopped.
    if (this.thread === 'stalled' || (this.thread === 'scheduled' && this.event === null)) {
      this.entryNeeded = true;
      scheduleRun(this, 0);
    }
  }

  /** kvm_vcpu_wake_up: only acts on a blocked vCPU. */
  wakeUp(why: 'kick' | 'async_pf_completed'): void {
    if (this.life !== 'alive' || this.thread !== 'blocked') return;
    this.trace('kvm_vcpu_wakeup', { why });
    this.entryNeeded = true;
    scheduleRun(this, 0);
  }

  queueNmi(): void {
    // process_nmi: at most two NMIs can be pending.
    this.nmiPending = Math.min(2, this.nmiPending + 1);
    this.kick();
  }

  requestReset(kind: 'init' | 'reset'): void {
    if (this.life !== 'alive') return;
    this.resetPending = kind === 'reset' || this.resetPending === 'reset' ? 'reset' : 'init';
    if (this.thread === 'stopped' && this.kvm.started) {
      this.stoppedBy = null;
      scheduleRun(this, 0);
      return;
    }
    this.kick();
  }

  /**
   * A synchronous fault-in: the vCPU thread waits for the page (no injection, no instructions),
   * then re-executes. `reportError`: a failed fault-in injects #MC (a prefetch ignores it).
   */
  syncFault(gfn: number, cr2OrGpa: number, why: SyncWhy, reportError: boolean): void {
    this.stalls++;
    if (this.thread === 'scheduled') this.thread = 'stalled';
    const ticket = this.kvm.hostMem.pageIn(gfn, why === 'prefetch' ? 'prefetch' : 'sync', 'host', this.id, (ok) => {
      const i = this.stallTickets.indexOf(ticket);
      if (i >= 0) this.stallTickets.splice(i, 1);
      this.stats.syncFaults++;
      this.trace('kvm_async_pf_sync', { gfn, gva: cr2OrGpa, why, ok });
      if (!ok && reportError) machineCheck(this, gfn, gfn * PAGE_SIZE);
      this.stalls--;
      if (this.stalls === 0 && this.thread === 'stalled') {
        this.entryNeeded = true;
        scheduleRun(this, 0);
      }
    });
    this.stallTickets.push(ticket);
  }

  /**
   * The vCPU thread is inside a host call that waits (a queue clear in cancel_work_sync): it runs
   * no guest code until `endWait`. Whatever called it (the WRMSR, INIT/RESET, the CR0 write, RSM,
   * a vCPU ioctl from userspace, which holds the vCPU mutex) returns only then.
   */
  private beginWait(): void {
    this.stalls++;
    if (this.thread === 'scheduled') this.thread = 'stalled';
  }

  private endWait(): void {
    this.stalls--;
    if (this.stalls === 0 && this.thread === 'stalled' && this.life === 'alive') {
      this.entryNeeded = true;
      scheduleRun(this, 0);
    }
  }

  /** A host bug the guest triggered (the model's oops): trace it and stop the vCPU. */
  hostOops(message: string): void {
    this.trace('kvm_host_oops', { message });
    shutdown(this, 'host_oops');
  }

  /** @internal teardown: stop the thread and the LAPIC timer, drop synchronous waits. */
  teardown(life: 'flushed'): void {
    this.life = life;
    if (this.event !== null) this.event.cancel();
    this.event = null;
    this.thread = 'stopped';
    this.stoppedBy = 'destroyed';
    for (const t of this.stallTickets) t.cancel();
    this.stallTickets.length = 0;
    if (this.lapic !== null) this.lapic.stopTimer();
    this.apf.data.release();
  }

  /** Guest-visible summary for reports. */
  describe(): string {
    return `vcpu${this.id}: thread=${this.thread} mp=${this.mpState} apf.halted=${this.apf.halted} queued=${this.asyncPf.queued} done=${this.asyncPf.done.length}`;
  }
}

/**
 * Frames of the 4-level page-table tree rooted at `cr3` (the tables, not the pages they map), read
 * the way sim/cpu's walker reads them: 8-byte entries, bit 0 present, every level a table.
 */
export function pageTableFrames(mem: GuestMemory, cr3: number): Set<number> {
  const out = new Set<number>();
  const visit = (table: number, level: number): void => {
    const gfn = Math.floor(table / PAGE_SIZE);
    if (table < 0 || table + PAGE_SIZE > mem.size || out.has(gfn)) return;
    out.add(gfn);
    if (level === 3) return;
    for (let i = 0; i < 512; i++) {
      const lo = mem.readU32(table + i * 8);
      if ((lo & 1) === 0) continue;
      const hi = mem.readU32(table + i * 8 + 4);
      visit((hi & 0xfffff) * 2 ** 32 + ((lo >>> 12) << 12 >>> 0), level + 1);
    }
  };
  visit(cr3 - (cr3 % PAGE_SIZE), 0);
  return out;
}

/** Aggregated counters of a VM. */
export type KvmStats = KvmVcpuStats & { wakeAlls: number; asyncPfCompleted: number };

/** A VM: configuration, profile, host memory, vCPUs. */
export class Kvm {
  readonly profile: ResolvedHostProfile;
  readonly toggles: HostToggles;
  /** The async-PF design's host half (host/designs), chosen once here. */
  readonly design: HostDesign;
  readonly hostMem: HostMemory;
  readonly exitCostNs: number;
  /** Workqueue delay before an async-PF worker starts its fault-in (`VmConfig.workerStartNs`). */
  readonly workerStartNs: number;
  /** Schedule perturbation: the largest extra delay of a run-loop iteration (0: off), and its PRNG stream. */
  readonly stepJitterNs: number;
  readonly jitterRng: Prng | null;
  /** KVM_CAP_ENFORCE_PV_FEATURE_CPUID is on and this host has it. */
  readonly pvCpuidEnforced: boolean;
  /** EAX of CPUID 0x40000001 as the guest sees it. */
  readonly cpuidKvmFeatures: number;
  started = false;
  destroyed = false;
  private readonly vcpuMap = new Map<number, KvmVcpu>();
  private failFaultAllocs = 0;
  private failWakeAllAllocs = 0;

  constructor(
    readonly sim: Simulation,
    readonly memory: GuestMemory,
    readonly config: VmConfig,
  ) {
    this.profile = resolveHostProfile(config.profile, config.toggles);
    this.toggles = this.profile.toggles;
    this.design = hostDesign(config.design ?? 'current');
    this.hostMem = new HostMemory(sim, memory, config.memory);
    this.exitCostNs = Math.max(0, Math.round(config.exitCostNs ?? DEFAULT_EXIT_COST_NS));
    this.workerStartNs = Math.max(0, Math.round(config.workerStartNs ?? 0));
    this.stepJitterNs = Math.max(0, Math.round(config.stepJitterNs ?? 0));
    // The stream is only created when jitter is on, so runs without it draw exactly as before.
    this.jitterRng = this.stepJitterNs > 0 ? sim.prng.stream('host.jitter') : null;
    this.pvCpuidEnforced = config.enforcePvCpuid === true && this.profile.pvCpuidEnforcement;
    this.cpuidKvmFeatures = (config.kvmFeatures & this.profile.supportedKvmFeatures) >>> 0;
  }

  createVcpu(id: number): KvmVcpu {
    if (!Number.isSafeInteger(id) || id < 0) throw new RangeError(`vCPU id must be a non-negative integer, got ${id}`);
    if (this.vcpuMap.has(id)) throw new RangeError(`vCPU ${id} already exists`);
    if (this.destroyed) throw new Error('VM destroyed');
    const v = new KvmVcpu(this, id);
    if (this.config.apfTokenCounter !== undefined) v.apf.id = this.config.apfTokenCounter;
    this.vcpuMap.set(id, v);
    if (this.started) scheduleRun(v, 0);
    return v;
  }

  vcpu(id: number): KvmVcpu {
    const v = this.vcpuMap.get(id);
    if (v === undefined) throw new RangeError(`no vCPU ${id}`);
    return v;
  }

  /** All vCPUs, by creation order. */
  get vcpus(): readonly KvmVcpu[] {
    return [...this.vcpuMap.values()];
  }

  /**
   * Begin running every vCPU at the current virtual time. The guest's page tables (reachable from
   * each vCPU's CR3 when paging is on) stay resident unless a `pages` range names them.
   */
  start(): void {
    if (this.started || this.destroyed) return;
    this.started = true;
    for (const v of this.vcpuMap.values()) if (v.cpu.paging) this.hostMem.keepResident(pageTableFrames(this.memory, v.cpu.cr3), true);
    this.hostMem.start();
    for (const v of this.vcpuMap.values()) if (v.thread === 'idle') scheduleRun(v, 0);
  }

  // --- userspace controls ----------------------------------------------------------------------

  /** KVM_NMI. */
  injectNmi(id: number): void {
    const v = this.alive(id);
    if (v === undefined) return;
    v.trace('kvm_nmi', {});
    v.queueNmi();
  }

  /**
   * KVM_SIGNAL_MSI to one vCPU: a device (the VMM) raises a fixed-mode interrupt on `vector`.
   * A software-disabled LAPIC drops it, as it drops any fixed interrupt.
   */
  injectIrq(id: number, vector: number): void {
    const v = this.alive(id);
    if (v === undefined || v.lapic === null) return;
    v.lapic.accept('fixed', vector & 0xff);
  }

  /**
   * A page-ready for `token` on vCPU `id`, raised by the VMM: the token written through the
   * vCPU's cached mapping of its APF area, then the page-ready vector. False when the vCPU has no
   * reachable APF area (nothing is written or raised).
   */
  injectPageReady(id: number, token: number): boolean {
    return vmmPageReady(this.vcpu(id), token);
  }

  /** The switch-over of a live migration of a VM running nested guests (host/nested/migrate.ts). */
  migrateNested(cfg: NestedMigrationConfig): DemandPager {
    return migrateNested(this, cfg);
  }

  /**
   * What the async-PF bookkeeping of each live vCPU holds right now, for oracles that check the
   * host's invariants from outside: the `queued` counter, the work items on the queue and on the
   * done list (wake-alls counted apart), the gfns in the hash, and the tokens of the held items.
   */
  asyncPfSnapshot(): AsyncPfSnapshot[] {
    const out: AsyncPfSnapshot[] = [];
    for (const v of this.vcpus) {
      if (v.life !== 'alive') continue;
      const pf = v.asyncPf;
      out.push({
        cpu: v.id,
        queued: pf.queued,
        queueLength: pf.queue.length,
        doneWakeAlls: pf.done.filter((w) => w.wakeupAll).length,
        hashSize: v.apf.hash.size,
        heldTokens: [...pf.queue, ...pf.done].filter((w) => !w.wakeupAll).map((w) => w.arch.token >>> 0),
      });
    }
    return out;
  }

  /** KVM_SMI: SMM for `smmNs` (CR0.PG 1→0 on entry, 0→1 on RSM). */
  injectSmi(id: number, smmNs?: number): void {
    const v = this.alive(id);
    if (v === undefined) return;
    v.trace('kvm_smi', {});
    v.smiPending = Math.max(0, Math.round(smmNs ?? this.config.smmNs ?? DEFAULT_SMM_NS));
    v.kick();
  }

  /** INIT (kvm_vcpu_reset with init_event). */
  vcpuInit(id: number): void {
    this.alive(id)?.requestReset('init');
  }

  /** RESET. */
  vcpuReset(id: number): void {
    this.alive(id)?.requestReset('reset');
  }

  /** Host-initiated MSR write (migration restore). False = refused. */
  setMsr(id: number, msr: number, value: bigint): boolean {
    const v = this.alive(id);
    if (v === undefined) return false;
    const ok = msrWrite(v, msr, value, true);
    v.trace('kvm_set_msr_host', { ecx: msr, data: value, ok });
    return ok;
  }

  /** Host-initiated MSR read; undefined = refused. */
  getMsr(id: number, msr: number): bigint | undefined {
    const v = this.alive(id);
    if (v === undefined) return undefined;
    return msrRead(v, msr, true);
  }

  /** KVM_GET_MSRS from userspace, traced as `kvm_get_msr_host`; undefined = refused. */
  getMsrTraced(id: number, msr: number): bigint | undefined {
    const v = this.alive(id);
    if (v === undefined) return undefined;
    const value = msrRead(v, msr, true);
    v.trace('kvm_get_msr_host', { ecx: msr, data: value ?? 0n, ok: value !== undefined });
    return value;
  }

  /**
   * The destination side of a live migration: the vCPU's APF state as a newly created vCPU has it,
   * before userspace restores the MSRs. Only MSR_KVM_ASYNC_PF_EN and _INT travel with the
   * migration stream; the queue, the gfn hash, the token counter (`apf.id`) and
   * `pageready_pending` start from zero. The source's outstanding work stays on the source.
   */
  freshVcpuForMigration(id: number): void {
    const v = this.alive(id);
    if (v === undefined) return;
    v.asyncPf.clear('migrate');
    v.apf.hash.reset();
    v.apf.msrEnVal = 0n;
    v.apf.msrIntVal = 0n;
    v.apf.vec = 0;
    v.apf.id = 0;
    v.apf.pageReadyPending = false;
    v.apf.halted = false;
    v.apfHaltCause = null;
    v.requests.delete('apf_halt');
    v.requests.delete('apf_ready');
  }

  /**
   * Destroy a vCPU: its queue is cleared (kvm_clear_async_pf_completion_queue, which waits for
   * running page-ins) and it stops. KVM itself destroys vCPUs only with their VM; this is the
   * model's way to tear one down while the others go on.
   */
  destroyVcpu(id: number): void {
    const v = this.alive(id);
    if (v === undefined) return;
    this.teardownVcpu(v);
  }

  /**
   * Destroy the VM and all its vCPUs. Every vCPU's queue clear waits for its running page-ins; the
   * VM's other page-ins (its mm is gone) are dropped.
   */
  destroyVm(): void {
    if (this.destroyed) return;
    let inFlight = 0;
    for (const v of this.vcpuMap.values()) if (v.life === 'alive') inFlight += this.teardownVcpu(v);
    this.destroyed = true;
    const keep = new Set<number>();
    for (const v of this.vcpuMap.values()) for (const g of v.asyncPf.flushingGfns()) keep.add(g);
    this.hostMem.cancelAll(keep);
    this.sim.trace.emit('host', -1, 'kvm_vm_destroy', { in_flight: inFlight });
  }

  private teardownVcpu(v: KvmVcpu): number {
    const inFlight = v.asyncPf.workersInFlight();
    v.asyncPf.clear('destroy');
    v.teardown('flushed');
    v.trace('kvm_vcpu_destroy', { in_flight: inFlight });
    return inFlight;
  }

  /** Swap pages out now. */
  evict(gfns: readonly number[]): void {
    this.hostMem.evict(gfns, 'explicit');
  }

  // --- the guest address space (memslots.ts, docs/caches.md); `MemslotError` when refused -------

  /** KVM_SET_USER_MEMORY_REGION deleting memslot `slot` (the VMM keeps its memory). */
  deleteMemslot(slot: number): void {
    this.hostMem.space.deleteSlot(slot);
  }

  /** Re-create a deleted memslot at its guest frames, over its old memory or (`newBacking`) new memory with the contents copied. */
  readdMemslot(slot: number, newBacking = false): void {
    this.hostMem.space.readdSlot(slot, newBacking);
  }

  /** KVM_MR_MOVE: memslot `slot` now starts at guest frame `gfn`. */
  moveMemslot(slot: number, gfn: number): void {
    this.hostMem.space.moveSlot(slot, gfn);
  }

  /** Memslot `slot` re-created with `npages` pages over the same host memory. */
  resizeMemslot(slot: number, npages: number): void {
    this.hostMem.space.resizeSlot(slot, npages);
  }

  /** Memory hot-unplug: memslot `slot` is deleted and its memory unmapped and freed. */
  hotUnplug(slot: number): void {
    this.hostMem.space.unplugSlot(slot);
  }

  /** Host page migration of the pages behind `gfns` (same gfn, new host frame). */
  migratePages(gfns: readonly number[]): MigrateResult[] {
    return gfns.map((g) => this.hostMem.space.migrate(g));
  }

  /** Test hook: the next `n` work-item allocations in the fault path fail (→ synchronous fault). */
  failNextAsyncAlloc(n = 1): void {
    this.failFaultAllocs += n;
  }

  /** Test hook: the next `n` wake-all allocations fail (-ENOMEM, ignored by the EN write). */
  failNextWakeupAllAlloc(n = 1): void {
    this.failWakeAllAllocs += n;
  }

  /** @internal */
  allocFails(kind: 'fault' | 'wakeup_all'): boolean {
    if (kind === 'fault' && this.failFaultAllocs > 0) {
      this.failFaultAllocs--;
      return true;
    }
    if (kind === 'wakeup_all' && this.failWakeAllAllocs > 0) {
      this.failWakeAllAllocs--;
      return true;
    }
    const p = this.config.asyncAllocFailure;
    if (p === undefined || p.numerator <= 0) return false;
    return this.sim.prng.stream('host.alloc').bool(p.numerator, p.denominator);
  }

  /** @internal ICR routing: x2APIC destination = vCPU id; 0xffffffff = broadcast. */
  routeIpi(from: KvmVcpu, sh: IpiShorthand, dest: number, mode: DeliveryMode, vector: number): void {
    const targets: KvmVcpu[] = [];
    for (const v of this.vcpuMap.values()) {
      if (v.life !== 'alive') continue;
      const match =
        sh === 'self' ? v === from : sh === 'all' ? true : sh === 'others' ? v !== from : dest === 0xffffffff || v.id === dest;
      if (match) targets.push(v);
    }
    for (const t of targets) if (t.lapic !== null) t.lapic.accept(mode, vector);
  }

  /** Counters summed over vCPUs. */
  stats(): KvmStats {
    const s: KvmStats = { ...newStats(), wakeAlls: 0, asyncPfCompleted: 0 };
    for (const v of this.vcpuMap.values()) {
      for (const k of Object.keys(v.stats) as (keyof KvmVcpuStats)[]) s[k] += v.stats[k];
      s.wakeAlls += v.asyncPf.counters.wakeAllsQueued;
      s.asyncPfCompleted += v.asyncPf.counters.completions;
    }
    return s;
  }

  private alive(id: number): KvmVcpu | undefined {
    if (this.destroyed) return undefined;
    const v = this.vcpuMap.get(id);
    return v !== undefined && v.life === 'alive' ? v : undefined;
  }
}
