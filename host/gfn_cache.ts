/**
 * The host's cached translation of a guest area: `vcpu->arch.apf.data`, KVM's `gfn_to_hva_cache`,
 * here also caching the host frame the way a `gfn_to_pfn_cache` does (the host writes the frame
 * directly, so a page migration matters to it; see docs/caches.md for why the model caches the
 * frame).
 *
 * Life cycle (docs/caches.md):
 * - **init** on the MSR_KVM_ASYNC_PF_EN write (spec §3.2 step 8; `kvm_gfn_to_hva_cache_init`):
 *   records the memslots generation first, then the memslot, host page and frame of the GPA; a GPA
 *   outside every memslot fails (the EN write fails);
 * - **check and refresh on use** (`kvm_write_guest_offset_cached`, `kvm_gpc_check` +
 *   `kvm_gpc_refresh`): before every access, a generation that changed (a memslot was deleted,
 *   moved, resized or re-added) or an MMU-notifier invalidation (the page migrated or was
 *   unmapped) makes the cache look the GPA up again; a GPA that no longer resolves fails the access
 *   (-EFAULT) until the next memslot change;
 * - **invalidate** from the MMU notifier (`gfn_to_pfn_cache_invalidate_start`) when its host page
 *   migrates or is unmapped.
 *
 * Variants (host toggles): `gfn_cache_refresh` off is a cache that is never invalidated nor
 * refreshed (every access goes through the translation taken at init); `gfn_cache_unpinned` off makes
 * the cache hold a long-term pin on its page, so the page cannot migrate while cached.
 *
 * The cache also holds the page against LRU eviction while registered (as the APF area always
 * was in this model). The area never crosses a page (64-byte aligned, at most 8 bytes).
 */
import { PAGE_SIZE } from '../shared-abi/addr';
import type { SourceTrace } from '../sim/trace';
import type { HostToggles } from './config';
import type { HostMemory } from './hostmem';
import type { AddressSpace, GfnCacheLike, InvalidateWhy } from './memslots';

/** What a cache needs from its VM and vCPU. */
export interface GfnCacheHost {
  readonly hostMem: HostMemory;
  readonly toggles: HostToggles;
  /** A host trace record for the vCPU the cache belongs to. */
  readonly trace: SourceTrace<'host'>;
}

export class GfnCache implements GfnCacheLike {
  /** The area as registered (-1: never initialised). */
  gpa = -1;
  len = 0;
  /** Memslots generation the translation was taken at. */
  generation = 0;
  /** Memslot id, host virtual page and host frame of the translation (-1: the GPA did not resolve). */
  slot = -1;
  hvpn = -1;
  hfn = -1;
  /** False after an MMU-notifier invalidation, until the next refresh. */
  valid = false;
  /** Initialised (the area is registered) and not released. */
  active = false;
  private lruPinned = -1;
  private longtermPinned = -1;

  constructor(private readonly host: GfnCacheHost) {}

  private get space(): AddressSpace {
    return this.host.hostMem.space;
  }

  /** kvm_gfn_to_hva_cache_init for `len` bytes at `gpa` (the EN write). False: the GPA is not in a memslot. */
  init(gpa: number, len: number): boolean {
    this.release();
    this.gpa = gpa;
    this.len = len;
    const ok = this.resolve();
    if (this.space.traced) this.host.trace('kvm_gfn_cache_init', { gpa, len, gen: this.generation, slot: this.slot, hva: this.hvaField(), hfn: this.hfn, ok });
    if (!ok) return false;
    this.active = true;
    this.space.registerCache(this);
    return true;
  }

  /**
   * The host frame to access now, after the check-and-refresh of every cached access; -1 when
   * the access fails (-EFAULT). Without `gfn_cache_refresh` the translation taken at init, always.
   */
  frame(): number {
    if (!this.active) return -1;
    if (!this.host.toggles.gfn_cache_refresh) return this.hfn;
    const stale = this.generation !== this.space.generation;
    if (stale || !this.valid) {
      const ok = this.resolve();
      if (this.space.traced) {
        this.host.trace('kvm_gfn_cache_refresh', { gpa: this.gpa, gen: this.generation, slot: this.slot, hva: this.hvaField(), hfn: this.hfn, ok, why: stale ? 'generation' : 'invalidated' });
      }
    }
    return this.hfn;
  }

  /** MMU notifier (invalidate_range_start): host pages [hvpn, hvpn+count) migrate or are unmapped. */
  invalidate(hvpn: number, count: number, why: InvalidateWhy): void {
    if (!this.active || !this.valid || this.hvpn < hvpn || this.hvpn >= hvpn + count) return;
    if (!this.host.toggles.gfn_cache_refresh) return;
    this.valid = false;
    if (this.space.traced) this.host.trace('kvm_gfn_cache_invalidate', { gpa: this.gpa, hva: this.hvaField(), why });
  }

  /** Drops the translation and its pins (a new EN write, vCPU teardown). */
  release(): void {
    if (this.active) this.space.unregisterCache(this);
    this.active = false;
    this.valid = false;
    this.setPins(-1);
  }

  /** Looks the GPA up in the current memslots; the generation is taken first, as KVM does. */
  private resolve(): boolean {
    const space = this.space;
    this.generation = space.generation;
    this.valid = true;
    const first = Math.floor(this.gpa / PAGE_SIZE);
    const last = Math.floor((this.gpa + Math.max(1, this.len) - 1) / PAGE_SIZE);
    const p = this.gpa < 0 ? -1 : space.hvpnOf(first);
    // No memslot, or a memslot over memory the VMM unmapped (another slot's unplug): -EFAULT.
    if (p < 0 || !space.isMapped(p) || (last !== first && space.hvpnOf(last) < 0)) {
      this.slot = -1;
      this.hvpn = -1;
      this.hfn = -1;
      this.setPins(-1);
      return false;
    }
    this.slot = space.slotOf(first)?.id ?? -1;
    this.hvpn = p;
    this.hfn = space.hfnOf[p]!;
    this.setPins(p);
    return true;
  }

  private setPins(p: number): void {
    if (this.lruPinned !== p) {
      if (this.lruPinned >= 0) this.host.hostMem.unpinPage(this.lruPinned);
      if (p >= 0) this.host.hostMem.pinPage(p);
      this.lruPinned = p;
    }
    const lt = this.host.toggles.gfn_cache_unpinned ? -1 : p;
    if (this.longtermPinned !== lt) {
      const old = this.longtermPinned;
      this.longtermPinned = lt;
      if (lt >= 0) this.space.pinLongterm(lt);
      if (old >= 0) this.space.unpinLongterm(old);
    }
  }

  private hvaField(): number {
    return this.hvpn < 0 ? -1 : this.space.hva(this.hvpn) + (this.gpa % PAGE_SIZE);
  }
}
