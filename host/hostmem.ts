/**
 * Host memory behind the guest's RAM: where each guest page lives on the host, how long bringing
 * it in takes, and the EPT that says which guest frames the hardware can use right now.
 *
 * Model (docs/host.md, "Host memory"):
 * - every guest frame is resident, swapped, remote (post-copy: still on the source host) or
 *   failing (its fault-in returns an error);
 * - the EPT maps a frame iff it is resident (`translate`), so any access to a non-resident frame is
 *   an EPT violation; a frame outside every memslot is not RAM (MMIO);
 * - guest frames reach host pages through the memslots, and host pages live in host frames
 *   (memslots.ts, hostphys.ts): identity (gfn = host page = host frame) until a memslot change,
 *   a page migration or an unplug; the state arrays below are indexed by host page (`hvpn`), and
 *   the public methods that take a `gfn` translate it through the memslots first;
 * - while a frame is not resident its bytes live here and the guest-physical page holds a poison
 *   pattern (0xdb); fault-in puts the bytes back exactly, so contents survive eviction byte for byte;
 * - a fault-in takes a latency drawn from the configured distribution (PRNG stream `host.latency`);
 *   concurrent fault-ins of one frame share a single page-in (like the page lock in the page cache);
 * - `limitPages` bounds the resident *pageable* frames (frames configured non-resident, or evicted
 *   since): each successful fault-in beyond the limit swaps out the least recently faulted-in
 *   pageable frame. Frames configured resident (the guest's kernel image, page tables, APF areas)
 *   stay resident unless a scenario evicts them explicitly; pinned frames are never LRU victims.
 */
import { PAGE_SIZE } from '../shared-abi/addr';
import { SLAT_MMIO, SLAT_VIOLATION, type SecondLevelMmu } from '../sim/cpu/mmu';
import type { Simulation } from '../sim/engine';
import type { GuestMemory } from '../sim/memory';
import type { Prng } from '../sim/prng';
import { Priority, type EventHandle } from '../sim/queue';

import type { HostMemoryConfig, Latency, PageBacking } from './config';
import { HostPhysMemory } from './hostphys';
import { AddressSpace, GUEST_RAM_HVA, type PageStates } from './memslots';

/** Byte written over a guest page while its contents are out on the host. */
export const SWAP_POISON_BYTE = 0xdb;

/** Result of the non-blocking lookup (FOLL_NOWAIT) of a frame's host page. */
export type NoWaitLookup = 'resident' | 'needs_io' | 'error';

/** Why a frame is being brought in (for the trace). */
export type FaultInReason = 'sync' | 'worker' | 'prefetch' | 'host_access';

/** One caller waiting for a page-in; `cancel()` detaches it (the page-in itself continues). */
export interface PageInTicket {
  cancel(): void;
}

const ST_RESIDENT = 0;
const ST_SWAPPED = 1;
const ST_REMOTE = 2;
const ST_FAILING = 3;
const STATE_NAMES: readonly PageBacking[] = ['resident', 'swapped', 'remote', 'failing'];
const stateOf = (b: PageBacking): number => STATE_NAMES.indexOf(b);
/** Page buffers kept for reuse after a fault-in (4 KiB each: at most 1 MiB). */
const MAX_FREE_BUFS = 256;

/** A page's contents while it is out of RAM, and their checksum when known. */
interface SwappedPage {
  readonly bytes: Uint8Array;
  readonly checksum: number | undefined;
}

interface Waiter {
  readonly cb: (ok: boolean) => void;
  active: boolean;
}

interface InFlight {
  readonly gfn: number;
  readonly from: number;
  readonly waiters: Waiter[];
  readonly handle: EventHandle;
}

export interface HostMemoryStats {
  faultIns: number;
  failedFaultIns: number;
  evictions: number;
  lruEvictions: number;
  hostAccessFaultIns: number;
}

const DEFAULT_SWAP: Latency = { kind: 'fixed', ns: 100_000 };
const DEFAULT_REMOTE: Latency = { kind: 'fixed', ns: 1_000_000 };
const DEFAULT_FAIL: Latency = { kind: 'fixed', ns: 100_000 };

/** Host virtual address of guest frame 0 (QEMU-style mmap'ed RAM), for `kvm_async_pf_completed.address`. */
export { GUEST_RAM_HVA };
/** Nominal host frame number of guest frame 0, for the old `kvm_async_pf_completed.pfn` field. */
export const GUEST_RAM_HOST_PFN = 0x10_0000;

export class HostMemory implements SecondLevelMmu, PageStates {
  /** Number of guest frames (the RAM the VM was created with). */
  readonly frames: number;
  /** Host-physical memory: the guest RAM block and spare frames (what the vCPUs access). */
  readonly phys: HostPhysMemory;
  /** Memslots, host pages and their frames. */
  readonly space: AddressSpace;
  readonly stats: HostMemoryStats = { faultIns: 0, failedFaultIns: 0, evictions: 0, lruEvictions: 0, hostAccessFaultIns: 0 };
  private readonly state: Uint8Array;
  /** 1: subject to `limitPages`. */
  private readonly pageable: Uint8Array;
  /** 1: a failing frame whose fault-in already reported its error (the non-blocking lookup now fails at once). */
  private readonly knownBad: Uint8Array;
  /** 1: the frame's backing comes from an explicit `pages` range (not from `defaultBacking`). */
  private readonly explicit: Uint8Array;
  private readonly stored = new Map<number, SwappedPage>();
  /** Page buffers whose contents were restored, reused by the next evictions (bounded). */
  private readonly freeBufs: Uint8Array[] = [];
  private readonly inflight = new Map<number, InFlight>();
  /** Resident pageable frames in fault-in / host-access order (oldest first); pinned ones are never victims. */
  private readonly lru = new Map<number, true>();
  private readonly pins = new Map<number, number>();
  private readonly rng: Prng;
  private started = false;
  /** Guest frames with the PRIVATE memory attribute (per gfn, as KVM_SET_MEMORY_ATTRIBUTES sets them, whatever the memslots). */
  private readonly privateGfns = new Set<number>();

  constructor(
    private readonly sim: Simulation,
    private readonly mem: GuestMemory,
    private readonly config: HostMemoryConfig = {},
  ) {
    this.frames = mem.size / PAGE_SIZE;
    this.phys = new HostPhysMemory(mem, config.spareFrames);
    this.space = new AddressSpace(sim, this.phys, config.memslots);
    this.space.attachPages(this);
    const pages = this.phys.frames;
    this.state = new Uint8Array(pages);
    this.pageable = new Uint8Array(pages);
    this.knownBad = new Uint8Array(pages);
    this.explicit = new Uint8Array(pages);
    this.rng = sim.prng.stream('host.latency');
    const def = stateOf(config.defaultBacking ?? 'resident');
    if (def < 0) throw new RangeError(`unknown page backing '${String(config.defaultBacking)}'`);
    this.state.fill(def);
    for (const r of config.pages ?? []) {
      const st = stateOf(r.backing);
      if (st < 0) throw new RangeError(`unknown page backing '${String(r.backing)}'`);
      const count = r.count ?? 1;
      if (!Number.isSafeInteger(r.gfn) || !Number.isSafeInteger(count) || r.gfn < 0 || count < 0 || r.gfn + count > this.frames) {
        throw new RangeError(`host memory: page range gfn 0x${r.gfn.toString(16)} x ${count} lies outside guest memory (${this.frames} frames)`);
      }
      this.state.fill(st, r.gfn, r.gfn + count);
      this.explicit.fill(1, r.gfn, r.gfn + count);
      if (r.private === true) for (let g = r.gfn; g < r.gfn + count; g++) this.privateGfns.add(g);
    }
    for (let g = 0; g < this.frames; g++) if (this.state[g] !== ST_RESIDENT) this.pageable[g] = 1;
    const limit = config.limitPages;
    if (limit !== undefined && (!Number.isSafeInteger(limit) || limit < 1)) throw new RangeError(`host memory: limitPages must be a positive integer, got ${limit}`);
  }

  /**
   * Before `start()`: make frames resident and pinned (the guest's page tables, found by the VM at
   * start). With `defaultOnly`, frames whose backing an explicit `pages` range sets are left alone:
   * a scenario that asks for a frame to be out gets it out.
   */
  keepResident(gfns: Iterable<number>, defaultOnly: boolean): void {
    for (const gfn of gfns) {
      if (!Number.isSafeInteger(gfn) || gfn < 0) continue;
      const g = this.space.hvpnOf(gfn);
      if (g < 0) continue;
      if (defaultOnly && this.explicit[g] === 1) continue;
      if (!this.started) {
        this.state[g] = ST_RESIDENT;
        this.pageable[g] = 0;
      }
      this.pinPage(g);
    }
  }

  /**
   * Takes the initial contents of every non-resident frame out of guest memory (the image the
   * harness wrote before the run) and schedules the configured evictions. Called by `Kvm.start()`.
   */
  start(): void {
    if (this.started) return;
    this.started = true;
    for (let g = 0; g < this.frames; g++) {
      const st = this.state[g]!;
      if (st === ST_RESIDENT) continue;
      if (st !== ST_FAILING) this.stored.set(g, { bytes: this.mem.copyPageOut(g), checksum: undefined });
      this.mem.fillPage(g, SWAP_POISON_BYTE);
    }
    for (const ev of this.config.evictions ?? []) {
      const gfns = [...ev.gfns];
      this.sim.scheduleAt(Math.max(this.sim.now, ev.t), Priority.Host, () => this.evict(gfns, 'scheduled'), 'host.evict', 'host');
    }
    this.space.start();
  }

  /**
   * EPT: the host frame behind guest frame `gfn` if its host page is resident, else SLAT_VIOLATION;
   * SLAT_MMIO when no memslot covers it. The CPU's hot path: no allocation.
   */
  translate(gfn: number, _write: boolean): number {
    const p = this.space.hvpnOf(gfn);
    if (p < 0) return SLAT_MMIO;
    return this.state[p] === ST_RESIDENT ? this.space.hfnOf[p]! : SLAT_VIOLATION;
  }

  /** Guest frame `gfn` is private (guest_memfd) memory: kvm_mem_is_private. */
  isPrivate(gfn: number): boolean {
    return this.privateGfns.size > 0 && this.privateGfns.has(gfn);
  }

  /** Whether any frame is private. */
  get hasPrivate(): boolean {
    return this.privateGfns.size > 0;
  }

  /** Whether the EPT maps guest frame `gfn` now. */
  isMapped(gfn: number, write: boolean): boolean {
    return this.translate(gfn, write) >= 0;
  }

  /** Where frame `gfn` lives now. */
  backingOf(gfn: number): PageBacking {
    return STATE_NAMES[this.state[this.space.hvpnOf(gfn)] ?? ST_RESIDENT]!;
  }

  /** The backing of host page `g` is failing (its fault-in reports an error). Unmapped memory is not: whoever still holds a translation of it writes through. */
  isFailingPage(g: number): boolean {
    return this.state[g] === ST_FAILING && this.space.isMapped(g);
  }

  /** Resident frames (diagnostics). */
  residentCount(): number {
    let n = 0;
    for (let g = 0; g < this.space.pageCount; g++) if (this.state[g] === ST_RESIDENT && this.space.isMapped(g)) n++;
    return n;
  }

  /** Whether a page-in of `gfn` is in progress. */
  pageInInFlight(gfn: number): boolean {
    return this.inflight.has(this.space.hvpnOf(gfn));
  }

  /** The non-blocking first try of the fault path (spec §3.5 step 2). */
  lookupNoWait(gfn: number): NoWaitLookup {
    const g = this.space.hvpnOf(gfn);
    const st = this.state[g];
    if (st === undefined) return 'error';
    if (st === ST_RESIDENT) return 'resident';
    if (st === ST_FAILING && this.knownBad[g] === 1) return 'error';
    return 'needs_io';
  }

  /** Host virtual address of a guest frame (through its memslot; -1 when none covers it). */
  hva(gfn: number): number {
    const p = this.space.hvpnOf(gfn);
    return p < 0 ? -1 : GUEST_RAM_HVA + p * PAGE_SIZE;
  }

  /**
   * Brings frame `gfn` in; `cb(ok)` runs when it is resident (true) or the fault-in failed
   * (false). A resident frame still completes asynchronously, after zero time.
   */
  pageIn(gfn: number, reason: FaultInReason, src: 'host' | 'worker', cpu: number, cb: (ok: boolean) => void): PageInTicket {
    const waiter: Waiter = { cb, active: true };
    const ticket: PageInTicket = { cancel: () => void (waiter.active = false) };
    const g = this.space.hvpnOf(gfn);
    const cur = this.inflight.get(g);
    if (cur !== undefined) {
      cur.waiters.push(waiter);
      return ticket;
    }
    const from = this.state[g] ?? ST_RESIDENT;
    const delay = from === ST_RESIDENT ? 0 : this.latencyFor(from);
    const waiters: Waiter[] = [waiter];
    const handle = this.sim.schedule(delay, Priority.Worker, () => this.finishPageIn(g, gfn, reason, src, cpu), `host.page_in ${gfn.toString(16)}`, 'host');
    this.inflight.set(g, { gfn, from, waiters, handle });
    return ticket;
  }

  /**
   * A host-side access to guest memory (KVM's copy_to_user/copy_from_user into the APF area):
   * a non-resident frame is faulted in on the spot, without modelled latency. False when the
   * frame cannot be brought in (failing), i.e. the access returns -EFAULT.
   */
  hostAccess(gfn: number, cpu: number): boolean {
    return this.hostAccessPage(this.space.hvpnOf(gfn), cpu);
  }

  /**
   * `hostAccess` for a host page the caller already holds a translation of (a cache). A page the
   * VMM no longer maps is not faulted in: whatever the caller holds is what it writes through.
   */
  hostAccessPage(g: number, cpu: number): boolean {
    const st = this.state[g];
    if (st === undefined) return false;
    if (!this.space.isMapped(g)) return true;
    if (st === ST_RESIDENT) {
      this.touch(g);
      return true;
    }
    if (st === ST_FAILING) {
      this.knownBad[g] = 1;
      return false;
    }
    this.stats.hostAccessFaultIns++;
    this.restore(g, st, 'host_access', 'host', cpu, this.space.gfnOf(g));
    return true;
  }

  /**
   * Swaps frames out now (explicit evictions ignore pins). Non-resident frames are left alone.
   * `to` is where the contents go: swap (default); `remote` for a post-copy migration, whose
   * destination does not have the page yet (`why: 'postcopy'`); `failing` when the source cannot
   * send it (its fault-in reports an error).
   */
  evict(gfns: readonly number[], why: 'explicit' | 'scheduled' | 'lru' | 'postcopy' = 'explicit', to: 'swapped' | 'remote' | 'failing' = 'swapped'): void {
    const st = stateOf(to);
    for (const gfn of gfns) {
      if (!Number.isSafeInteger(gfn) || gfn < 0) continue;
      const g = this.space.hvpnOf(gfn);
      if (g >= 0) this.evictPage(g, gfn, why, st);
    }
  }

  private evictPage(g: number, gfn: number, why: 'explicit' | 'scheduled' | 'lru' | 'postcopy', st: number): void {
    if (this.state[g] !== ST_RESIDENT || !this.space.isMapped(g)) return;
    const hfn = this.space.hfnOf[g]!;
    const checksum = this.phys.pageChecksum(hfn);
    this.stored.set(g, { bytes: this.phys.copyPageOut(hfn, this.freeBufs.pop()), checksum });
    this.phys.fillPage(hfn, SWAP_POISON_BYTE);
    this.state[g] = st;
    this.pageable[g] = 1;
    this.lru.delete(g);
    this.stats.evictions++;
    if (why === 'lru') this.stats.lruEvictions++;
    this.sim.trace.emit('host', -1, 'host_page_evict', { gfn, checksum, why });
  }

  /**
   * Drops every page-in in progress without completing it (the VM's address space is gone), but
   * those of the frames in `keep` (a teardown is waiting for them to end).
   */
  cancelAll(keep: ReadonlySet<number> = new Set()): void {
    for (const [g, f] of this.inflight) {
      if (keep.has(f.gfn)) continue;
      f.handle.cancel();
      this.inflight.delete(g);
    }
  }

  /** Keeps a frame out of LRU eviction (reference counted). It still counts against `limitPages`. */
  pin(gfn: number): void {
    if (gfn < 0) return;
    this.pinPage(this.space.hvpnOf(gfn));
  }

  unpin(gfn: number): void {
    if (gfn < 0) return;
    this.unpinPage(this.space.hvpnOf(gfn));
  }

  isPinned(gfn: number): boolean {
    return this.pins.has(this.space.hvpnOf(gfn));
  }

  /** `pin` for a host page. */
  pinPage(g: number): void {
    if (g < 0 || g >= this.state.length) return;
    this.pins.set(g, (this.pins.get(g) ?? 0) + 1);
  }

  unpinPage(g: number): void {
    const n = this.pins.get(g);
    if (n === undefined) return;
    if (n > 1) this.pins.set(g, n - 1);
    else this.pins.delete(g);
  }

  // --- PageStates (memslots.ts): the VMM remapping its memory ----------------------------------

  isResident(g: number): boolean {
    return this.state[g] === ST_RESIDENT;
  }

  transfer(from: number, to: number): void {
    this.state[to] = this.state[from]!;
    this.pageable[to] = this.pageable[from]!;
    this.knownBad[to] = this.knownBad[from]!;
    this.explicit[to] = this.explicit[from]!;
    const page = this.stored.get(from);
    if (page !== undefined) this.stored.set(to, page);
    this.stored.delete(from);
    if (this.lru.delete(from)) this.lru.set(to, true);
    const pins = this.pins.get(from);
    if (pins !== undefined) this.pins.set(to, pins);
    this.pins.delete(from);
  }

  drop(g: number): void {
    // Memory that is gone: another memslot still aliasing it gets -EFAULT (a failing fault-in, #MC).
    this.state[g] = ST_FAILING;
    this.knownBad[g] = 1;
    this.stored.delete(g);
    this.lru.delete(g);
    this.pins.delete(g);
    this.pageable[g] = 0;
  }

  fresh(g: number): void {
    this.state[g] = ST_RESIDENT;
    this.pageable[g] = 0;
    this.knownBad[g] = 0;
    this.explicit[g] = 0;
  }

  /** Draws a latency (ns) from a distribution with the `host.latency` stream. */
  draw(l: Latency): number {
    switch (l.kind) {
      case 'fixed':
        return Math.max(0, Math.round(l.ns));
      case 'uniform':
        return this.rng.int(Math.max(0, Math.round(l.min)), Math.max(0, Math.round(l.max)));
      case 'exponential': {
        const x = Math.round(this.rng.exponential(l.mean));
        return Math.max(0, l.max === undefined ? x : Math.min(l.max, x));
      }
    }
  }

  private latencyFor(st: number): number {
    switch (st) {
      case ST_SWAPPED:
        return this.draw(this.config.swapLatency ?? DEFAULT_SWAP);
      case ST_REMOTE:
        return this.draw(this.config.remoteLatency ?? DEFAULT_REMOTE);
      default:
        return this.draw(this.config.failLatency ?? DEFAULT_FAIL);
    }
  }

  private finishPageIn(g: number, gfn: number, reason: FaultInReason, src: 'host' | 'worker', cpu: number): void {
    const f = this.inflight.get(g);
    if (f === undefined) return;
    this.inflight.delete(g);
    const st = this.state[g];
    let ok: boolean;
    if (st === undefined || !this.space.isMapped(g)) {
      // The VMM unmapped the memory meanwhile (unplugged or replaced): get_user_pages fails.
      ok = false;
    } else if (st === ST_RESIDENT) {
      // Already in (another path brought it in meanwhile, or it was resident to begin with).
      ok = true;
      this.touch(g);
    } else if (st === ST_FAILING) {
      ok = false;
      this.knownBad[g] = 1;
      this.stats.failedFaultIns++;
      this.sim.trace.emit(src, cpu, 'host_page_fault_in', { gfn, checksum: this.phys.pageChecksum(this.space.hfnOf[g]!), ok: false, backing: 'failing', why: reason });
    } else {
      ok = true;
      this.restore(g, st, reason, src, cpu, gfn);
    }
    for (const w of f.waiters) if (w.active) w.cb(ok);
  }

  private restore(g: number, st: number, why: FaultInReason, src: 'host' | 'worker', cpu: number, gfn: number): void {
    const hfn = this.space.hfnOf[g]!;
    const page = this.stored.get(g);
    let checksum: number;
    if (page !== undefined) {
      this.phys.copyPageIn(hfn, page.bytes);
      // The frame now holds exactly the stored bytes, so their checksum (taken at eviction) is the
      // frame's; pages stored at start have none yet.
      checksum = page.checksum ?? this.phys.pageChecksum(hfn);
      if (this.freeBufs.length < MAX_FREE_BUFS) this.freeBufs.push(page.bytes);
    } else {
      this.phys.fillPage(hfn, 0);
      checksum = this.phys.pageChecksum(hfn);
    }
    this.stored.delete(g);
    this.state[g] = ST_RESIDENT;
    this.stats.faultIns++;
    this.sim.trace.emit(src, cpu, 'host_page_fault_in', { gfn, checksum, ok: true, backing: STATE_NAMES[st]!, why });
    this.touch(g);
    this.enforceLimit(g);
  }

  private touch(gfn: number): void {
    if (this.pageable[gfn] !== 1) return;
    this.lru.delete(gfn);
    this.lru.set(gfn, true);
  }

  private enforceLimit(justIn: number): void {
    const limit = this.config.limitPages;
    if (limit === undefined) return;
    while (this.lru.size > limit) {
      let victim: number | undefined;
      for (const g of this.lru.keys()) {
        if (g !== justIn && !this.pins.has(g)) {
          victim = g;
          break;
        }
      }
      if (victim === undefined) return;
      this.evictPage(victim, this.space.gfnOf(victim), 'lru', ST_SWAPPED);
    }
  }
}
