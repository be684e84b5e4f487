/**
 * The VM's guest-physical address space as KVM sees it: memslots (guest frame ranges mapped onto
 * the VMM's memory, `KVM_SET_USER_MEMORY_REGION`), the host pages behind them, and the changes a
 * VMM and the host kernel make to both while the guest runs.
 *
 * - A **memslot** maps guest frames `gfn .. gfn+npages-1` onto host virtual pages `hvpn ..`
 *   (host virtual address `GUEST_RAM_HVA + hvpn * PAGE_SIZE`: the VMM's mmap of guest RAM).
 *   Frames outside every memslot are not RAM (an access is MMIO).
 * - A **host virtual page** (hvpn) lives in a host frame (`hfnOf`) while it is mapped. Page
 *   migration moves it to another frame (same hva, same gfn, contents copied); unplugging memory
 *   unmaps it and frees its frame.
 * - The memslots **generation** changes with every memslot change (delete, move, resize, re-add),
 *   which is how `gfn_to_hva_cache` users notice that their cached translation may be stale; page
 *   migration and unmapping leave the generation alone and reach caches through the MMU notifier
 *   (`invalidate_range_start`), here `GfnCacheLike.invalidate`.
 *
 * At VM creation the VMM maps one RAM block of `ramFrames` pages at hvpn 0, backed by host frames
 * 0.. (so hvpn = hfn), and one memslot covers it from gfn 0 (so gfn = hvpn = hfn): the identity
 * that every VM without memslot changes keeps for its whole life. `HostMemoryConfig.memslots`
 * splits the block into several slots (still identity).
 *
 * Trace: nothing while the layout is the default identity; from the first change on (or from the
 * start with an explicit layout), `host_ram_alloc`, `host_ram_free`, `kvm_set_memory_region` and
 * `host_page_migrate` records, and the caches add their own (see gfn_cache.ts). The layout as it
 * stood before the first change is emitted first (`change: 'existing'`), so a trace reader can
 * rebuild every translation from the records alone.
 */
import { PAGE_SIZE } from '../shared-abi/addr';
import type { Simulation } from '../sim/engine';
import type { HostPhysMemory } from './hostphys';

/** Host virtual address of host virtual page 0 (QEMU-style mmap'ed guest RAM). */
export const GUEST_RAM_HVA = 0x7f00_0000_0000;

/** A memslot: guest frames `gfn .. gfn+npages-1` backed by host virtual pages `hvpn ..`. */
export interface Memslot {
  readonly id: number;
  readonly gfn: number;
  readonly npages: number;
  readonly hvpn: number;
}

/** One memslot of an explicit layout (`HostMemoryConfig.memslots`): a range of guest RAM. */
export interface MemslotConfig {
  readonly gfn: number;
  readonly count: number;
}

export type MemslotChange = 'create' | 'delete' | 'move' | 'resize' | 'existing';

/** Why the MMU notifier invalidates a host range: the page moves to another frame, or is unmapped. */
export type InvalidateWhy = 'migrate' | 'unmap';

/** A cache of a guest translation that the MMU notifier reaches (gfn_cache.ts). */
export interface GfnCacheLike {
  invalidate(hvpn: number, count: number, why: InvalidateWhy): void;
}

/** What the address space needs from the per-page backing states (HostMemory). */
export interface PageStates {
  isResident(hvpn: number): boolean;
  /** The VMM gave page `from` a new home `to` (memory re-added with new backing): `to` takes over its state. */
  transfer(from: number, to: number): void;
  /** The VMM unmapped the page: forget its state and contents; page-ins in flight fail. */
  drop(hvpn: number): void;
  /** New, zeroed memory the VMM just mapped at `hvpn` (resident). */
  fresh(hvpn: number): void;
}

/** A memslot request the host refuses (KVM_SET_USER_MEMORY_REGION's -EINVAL / -EEXIST, or no memory left). */
export class MemslotError extends RangeError {
  override name = 'MemslotError';
}

export type MigrateResult = 'migrated' | 'pinned' | 'not_resident' | 'no_free_frame';

/** Highest guest frame number + 1 (MAXPHYADDR 52). */
const GFN_LIMIT = 2 ** 40;

interface DeletedSlot {
  readonly slot: Memslot;
  /** Its memory was unplugged (freed): it can only come back with new backing. */
  readonly unplugged: boolean;
}

export class AddressSpace {
  readonly ramFrames: number;
  /** The memslots generation: changes with every memslot change. */
  generation = 0;
  /** Translation records are on the trace (an explicit layout, or any change so far). */
  traced: boolean;
  /** Host frame of each host virtual page (-1: none). */
  readonly hfnOf: Int32Array;
  private readonly mapped: Uint8Array;
  private readonly slots = new Map<number, Memslot>();
  private readonly deleted = new Map<number, DeletedSlot>();
  /** gfn -> hvpn for gfns below `ramFrames` (-1: not RAM); slots reaching above are in `high`. */
  private readonly gfnMap: Int32Array;
  private high: Memslot[] = [];
  /** RAM blocks the VMM mapped: [hvpn, hvpn+count). */
  private readonly blocks: Array<{ readonly hvpn: number; readonly count: number }> = [];
  private nextHvpn: number;
  private readonly longterm = new Map<number, number>();
  /** Migrations blocked by a long-term pin, done when the pin goes (hvpn). */
  private readonly deferred = new Set<number>();
  /** Unmapped pages whose frame a long-term pin keeps allocated (hvpn -> hfn). */
  private readonly orphans = new Map<number, number>();
  private readonly caches = new Set<GfnCacheLike>();
  private pages: PageStates | null = null;

  constructor(
    private readonly sim: Simulation,
    readonly phys: HostPhysMemory,
    layout: readonly MemslotConfig[] | undefined,
  ) {
    const frames = phys.ramFrames;
    this.ramFrames = frames;
    const capacity = phys.frames;
    this.hfnOf = new Int32Array(capacity).fill(-1);
    this.mapped = new Uint8Array(capacity);
    for (let p = 0; p < frames; p++) this.hfnOf[p] = p;
    this.mapped.fill(1, 0, frames);
    this.blocks.push({ hvpn: 0, count: frames });
    this.nextHvpn = frames;
    this.gfnMap = new Int32Array(frames).fill(-1);
    const ranges = layout ?? [{ gfn: 0, count: frames }];
    ranges.forEach((r, id) => {
      if (!Number.isSafeInteger(r.gfn) || !Number.isSafeInteger(r.count) || r.gfn < 0 || r.count < 1 || r.gfn + r.count > frames) {
        throw new RangeError(`memslot ${id}: gfn 0x${r.gfn.toString(16)} x ${r.count} must lie inside guest RAM (${frames} frames)`);
      }
      const clash = this.overlapping(r.gfn, r.count, -1);
      if (clash !== undefined) throw new RangeError(`memslot ${id}: gfn 0x${r.gfn.toString(16)} x ${r.count} overlaps memslot ${clash.id}`);
      this.slots.set(id, { id, gfn: r.gfn, npages: r.count, hvpn: r.gfn });
      this.rebuild();
    });
    this.traced = layout !== undefined;
  }

  /** @internal HostMemory hands over its per-page states. */
  attachPages(pages: PageStates): void {
    this.pages = pages;
  }

  /** Called by `Kvm.start()` through HostMemory: an explicit layout goes on the trace. */
  start(): void {
    if (this.traced) this.emitLayout('create');
  }

  // --- lookups (the EPT's hot path) ----------------------------------------------------------------

  /** The host virtual page behind guest frame `gfn`, or -1 when no memslot covers it. */
  hvpnOf(gfn: number): number {
    if (gfn >= 0 && gfn < this.ramFrames) return this.gfnMap[gfn]!;
    const high = this.high;
    for (let i = 0; i < high.length; i++) {
      const s = high[i]!;
      if (gfn >= s.gfn && gfn < s.gfn + s.npages) return s.hvpn + (gfn - s.gfn);
    }
    return -1;
  }

  /** The memslot covering `gfn`. */
  slotOf(gfn: number): Memslot | undefined {
    for (const s of this.slots.values()) if (gfn >= s.gfn && gfn < s.gfn + s.npages) return s;
    return undefined;
  }

  /** The guest frame host virtual page `hvpn` is mapped at now, or -1. */
  gfnOf(hvpn: number): number {
    for (const s of this.slots.values()) if (hvpn >= s.hvpn && hvpn < s.hvpn + s.npages) return s.gfn + (hvpn - s.hvpn);
    return -1;
  }

  /** The VMM's memory at `hvpn` is mapped (not unplugged or replaced). */
  isMapped(hvpn: number): boolean {
    return this.mapped[hvpn] === 1;
  }

  hva(hvpn: number): number {
    return GUEST_RAM_HVA + hvpn * PAGE_SIZE;
  }

  /** Every live memslot, by id. */
  memslots(): Memslot[] {
    return [...this.slots.values()].sort((a, b) => a.id - b.id);
  }

  /** Host virtual pages ever mapped (the range of hvpn values in use). */
  get pageCount(): number {
    return this.nextHvpn;
  }

  // --- MMU notifier ---------------------------------------------------------------------------------

  registerCache(c: GfnCacheLike): void {
    this.caches.add(c);
  }

  unregisterCache(c: GfnCacheLike): void {
    this.caches.delete(c);
  }

  private invalidateRange(hvpn: number, count: number, why: InvalidateWhy): void {
    for (const c of this.caches) c.invalidate(hvpn, count, why);
  }

  // --- long-term pins (a cache holding the page: it cannot migrate) ----------------------------

  pinLongterm(hvpn: number): void {
    this.longterm.set(hvpn, (this.longterm.get(hvpn) ?? 0) + 1);
  }

  unpinLongterm(hvpn: number): void {
    const n = this.longterm.get(hvpn);
    if (n === undefined) return;
    if (n > 1) {
      this.longterm.set(hvpn, n - 1);
      return;
    }
    this.longterm.delete(hvpn);
    const orphan = this.orphans.get(hvpn);
    if (orphan !== undefined) {
      this.orphans.delete(hvpn);
      this.phys.freeFrame(orphan);
    }
    if (this.deferred.delete(hvpn)) this.migratePage(hvpn, 'unpinned');
  }

  isPinnedLongterm(hvpn: number): boolean {
    return this.longterm.has(hvpn);
  }

  // --- the VMM's memslot changes (KVM_SET_USER_MEMORY_REGION) -----------------------------------

  /** KVM_MR_DELETE: the frames stop being RAM; the VMM keeps the memory (the slot can be re-added). */
  deleteSlot(id: number): void {
    const s = this.live(id);
    this.beginChange();
    this.slots.delete(id);
    this.deleted.set(id, { slot: s, unplugged: false });
    this.commit('delete', s);
  }

  /** KVM_MR_MOVE: the slot's guest frames start at `gfn`; same host memory. */
  moveSlot(id: number, gfn: number): void {
    const s = this.live(id);
    this.checkRange(id, gfn, s.npages);
    this.beginChange();
    const moved = { ...s, gfn };
    this.slots.set(id, moved);
    this.commit('move', moved);
  }

  /** A resize (the VMM deletes and re-creates the slot with another size over the same host memory). */
  resizeSlot(id: number, npages: number): void {
    const s = this.live(id);
    if (!Number.isSafeInteger(npages) || npages < 1) throw new MemslotError(`memslot ${id}: a size of ${npages} pages`);
    this.checkRange(id, s.gfn, npages);
    const block = this.blocks.find((b) => s.hvpn >= b.hvpn && s.hvpn < b.hvpn + b.count);
    if (block === undefined || s.hvpn + npages > block.hvpn + block.count) {
      throw new MemslotError(`memslot ${id}: ${npages} pages would reach beyond the host memory it maps`);
    }
    for (let p = s.hvpn; p < s.hvpn + npages; p++) if (!this.isMapped(p)) throw new MemslotError(`memslot ${id}: host page ${p} is no longer mapped`);
    this.beginChange();
    const resized = { ...s, npages };
    this.slots.set(id, resized);
    this.commit('resize', resized);
  }

  /**
   * KVM_MR_CREATE of a deleted slot at its old guest frames: over the same host memory, or with
   * `newBacking` over memory the VMM allocates anew (contents copied from the old pages, which are
   * then unmapped; zeroed when the old memory was unplugged).
   */
  readdSlot(id: number, newBacking: boolean): void {
    if (this.slots.has(id)) throw new MemslotError(`memslot ${id} exists (delete it first)`);
    const d = this.deleted.get(id);
    if (d === undefined) throw new MemslotError(`memslot ${id} was never deleted`);
    if (d.unplugged && !newBacking) throw new MemslotError(`memslot ${id}: its memory was unplugged; re-add it with new backing`);
    const old = d.slot;
    this.checkRange(id, old.gfn, old.npages);
    let slot = old;
    if (newBacking) {
      if (!d.unplugged) {
        for (let p = old.hvpn; p < old.hvpn + old.npages; p++) if (!this.isMapped(p)) throw new MemslotError(`memslot ${id}: its memory is partly unmapped; nothing to copy from`);
      }
      if (this.nextHvpn + old.npages > this.hfnOf.length) throw new MemslotError(`memslot ${id}: no host address space left for ${old.npages} new pages`);
      const frames: number[] = [];
      for (let i = 0; i < old.npages; i++) {
        const f = this.phys.allocFrame();
        if (f < 0) {
          for (const g of frames) this.phys.freeFrame(g);
          throw new MemslotError(`memslot ${id}: no free host frame for ${old.npages} new pages`);
        }
        frames.push(f);
      }
      this.beginChange();
      const base = this.nextHvpn;
      this.nextHvpn += old.npages;
      this.blocks.push({ hvpn: base, count: old.npages });
      for (let i = 0; i < old.npages; i++) {
        const p = base + i;
        const f = frames[i]!;
        this.hfnOf[p] = f;
        this.mapped[p] = 1;
        const from = old.hvpn + i;
        if (d.unplugged) {
          this.phys.fillPage(f, 0);
          this.pages?.fresh(p);
        } else {
          this.phys.copyFrame(this.hfnOf[from]!, f);
          this.pages?.transfer(from, p);
        }
      }
      this.emitAlloc(base, old.npages);
      slot = { ...old, hvpn: base };
      this.slots.set(id, slot);
      this.deleted.delete(id);
      this.commit('create', slot);
      // The VMM frees the old memory, except pages another live memslot still maps (aliasing
      // slots, e.g. one resized over its neighbour's memory): those stay as they are.
      if (!d.unplugged) this.unmapUnused(old.hvpn, old.npages);
      return;
    }
    this.beginChange();
    this.slots.set(id, slot);
    this.deleted.delete(id);
    this.commit('create', slot);
  }

  /**
   * Memory hot-unplug: the VMM deletes the slot and unmaps its memory (the MMU notifier
   * invalidates the range; the frames go back to the host). The frames stop being RAM.
   */
  unplugSlot(id: number): void {
    const s = this.live(id);
    this.beginChange();
    this.slots.delete(id);
    this.deleted.set(id, { slot: s, unplugged: true });
    this.commit('delete', s);
    this.unmap(s.hvpn, s.npages);
  }

  /**
   * Host page migration (compaction, NUMA balancing, memory offlining): the page behind `gfn`
   * moves to another host frame, contents copied; same gfn, same hva. Refused while a long-term
   * pin holds the page (the migration then happens when the pin goes).
   */
  migrate(gfn: number): MigrateResult {
    const p = this.hvpnOf(gfn);
    if (p < 0) throw new MemslotError(`page migration: gfn 0x${gfn.toString(16)} is not guest RAM`);
    return this.migratePage(p, 'requested');
  }

  private migratePage(p: number, why: 'requested' | 'unpinned'): MigrateResult {
    const gfn = this.gfnOf(p);
    const old = this.hfnOf[p]!;
    const refuse = (r: Exclude<MigrateResult, 'migrated'>): MigrateResult => {
      this.beginChange();
      this.sim.trace.emit('host', -1, 'host_page_migrate', { gfn, hva: this.hva(p), old_hfn: old, new_hfn: -1, ok: false, why: r });
      return r;
    };
    if (!this.isMapped(p)) return refuse('not_resident');
    if (this.longterm.has(p)) {
      this.deferred.add(p);
      return refuse('pinned');
    }
    if (this.pages !== null && !this.pages.isResident(p)) return refuse('not_resident');
    const to = this.phys.allocFrame();
    if (to < 0) return refuse('no_free_frame');
    this.beginChange();
    // invalidate_range_start comes before the page moves: no cache may use the old frame after this.
    this.invalidateRange(p, 1, 'migrate');
    this.phys.copyFrame(old, to);
    this.hfnOf[p] = to;
    this.phys.freeFrame(old);
    this.sim.trace.emit('host', -1, 'host_page_migrate', { gfn, hva: this.hva(p), old_hfn: old, new_hfn: to, ok: true, why });
    return 'migrated';
  }

  // --- helpers --------------------------------------------------------------------------------

  private live(id: number): Memslot {
    const s = this.slots.get(id);
    if (s === undefined) throw new MemslotError(`no memslot ${id}${this.deleted.has(id) ? ' (it was deleted)' : ''}`);
    return s;
  }

  private overlapping(gfn: number, npages: number, except: number): Memslot | undefined {
    for (const s of this.slots.values()) if (s.id !== except && gfn < s.gfn + s.npages && s.gfn < gfn + npages) return s;
    return undefined;
  }

  private checkRange(id: number, gfn: number, npages: number): void {
    if (!Number.isSafeInteger(gfn) || gfn < 0 || gfn + npages > GFN_LIMIT) throw new MemslotError(`memslot ${id}: gfn 0x${gfn.toString(16)} is not a guest frame`);
    const clash = this.overlapping(gfn, npages, id);
    if (clash !== undefined) throw new MemslotError(`memslot ${id}: gfn 0x${gfn.toString(16)} x ${npages} overlaps memslot ${clash.id}`);
  }

  /** Unmaps the pages of `hvpn .. hvpn+count-1` that no live memslot maps, run by run. */
  private unmapUnused(hvpn: number, count: number): void {
    let start = -1;
    for (let p = hvpn; p <= hvpn + count; p++) {
      const unused = p < hvpn + count && this.gfnOf(p) < 0;
      if (unused && start < 0) start = p;
      if (!unused && start >= 0) {
        this.unmap(start, p - start);
        start = -1;
      }
    }
  }

  /** Unmaps host virtual pages: MMU-notifier invalidation, then the frames go back (unless pinned). */
  private unmap(hvpn: number, count: number): void {
    this.invalidateRange(hvpn, count, 'unmap');
    for (let p = hvpn; p < hvpn + count; p++) {
      if (!this.isMapped(p)) continue;
      this.mapped[p] = 0;
      this.pages?.drop(p);
      this.deferred.delete(p);
      const f = this.hfnOf[p]!;
      if (this.longterm.has(p)) this.orphans.set(p, f);
      else this.phys.freeFrame(f);
    }
    this.sim.trace.emit('host', -1, 'host_ram_free', { hva: this.hva(hvpn), count });
  }

  /** The first change of a default layout puts the layout as it stood on the trace. */
  private beginChange(): void {
    if (this.traced) return;
    this.traced = true;
    this.emitLayout('existing');
  }

  private commit(change: MemslotChange, s: Memslot): void {
    this.generation++;
    this.rebuild();
    this.sim.trace.emit('host', -1, 'kvm_set_memory_region', { slot: s.id, change, gfn: s.gfn, count: s.npages, hva: this.hva(s.hvpn), gen: this.generation });
  }

  private emitLayout(change: 'create' | 'existing'): void {
    for (const b of this.blocks) this.emitAlloc(b.hvpn, b.count);
    for (const s of this.memslots()) {
      this.sim.trace.emit('host', -1, 'kvm_set_memory_region', { slot: s.id, change, gfn: s.gfn, count: s.npages, hva: this.hva(s.hvpn), gen: this.generation });
    }
  }

  /** `host_ram_alloc` for mapped pages [hvpn, hvpn+count), one record per run of consecutive frames. */
  private emitAlloc(hvpn: number, count: number): void {
    let start = -1;
    for (let p = hvpn; p <= hvpn + count; p++) {
      const inRun = p < hvpn + count && this.isMapped(p) && start >= 0 && this.hfnOf[p] === this.hfnOf[p - 1]! + 1;
      if (inRun) continue;
      if (start >= 0) this.sim.trace.emit('host', -1, 'host_ram_alloc', { hva: this.hva(start), count: p - start, hfn: this.hfnOf[start]! });
      start = p < hvpn + count && this.isMapped(p) ? p : -1;
    }
  }

  private rebuild(): void {
    this.gfnMap.fill(-1);
    const high: Memslot[] = [];
    for (const s of this.slots.values()) {
      const end = Math.min(s.gfn + s.npages, this.ramFrames);
      for (let g = s.gfn; g < end; g++) this.gfnMap[g] = s.hvpn + (g - s.gfn);
      if (s.gfn + s.npages > this.ramFrames) high.push(s);
    }
    this.high = high;
  }
}
