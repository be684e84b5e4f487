/**
 * The per-vCPU table of outstanding async-PF gfns (`vcpu->arch.apf.gfns[64]`, spec §3.1a):
 * open addressing over 64 slots, home slot hash_32(low 32 bits of gfn, 6), linear probing, and
 * deletion by backward shift so that lookups never need tombstones.
 *
 * An empty slot holds all-ones in the kernel (u64 ~0); here it holds `EMPTY` (-1), which no
 * frame number can equal.
 */
import { APF_GFN_HASH_BITS, APF_GFN_HASH_SLOTS, apfGfnHashSlot, apfGfnNextSlot } from '../../shared-abi/apf';
import { hash32Pre47 } from '../../shared-abi/hash';

const EMPTY = -1;

/** Home slot function: the ≥v4.7 hash_32 or the older multiplier (linux-3.0 profile). */
export type GfnHashFn = (gfn: number) => number;

export const gfnHomeSlot: GfnHashFn = apfGfnHashSlot;
export const gfnHomeSlotPre47: GfnHashFn = (gfn) => hash32Pre47(gfn >>> 0, APF_GFN_HASH_BITS);

export class ApfGfnHash {
  private readonly slots: number[] = new Array<number>(APF_GFN_HASH_SLOTS).fill(EMPTY);
  /** Set when a delete did not find its gfn (the kernel's WARN_ON_ONCE). */
  warned = false;

  constructor(private readonly home: GfnHashFn = gfnHomeSlot) {}

  /** kvm_async_pf_hash_reset: every slot empty. */
  reset(): void {
    this.slots.fill(EMPTY);
  }

  /**
   * kvm_add_async_pf_gfn: first empty slot from the home slot on. The kernel has no full-table
   * check (the 64-item cap keeps a free slot); here a full table returns false instead of looping.
   */
  add(gfn: number): boolean {
    let k = this.home(gfn);
    for (let n = 0; n < APF_GFN_HASH_SLOTS; n++) {
      if (this.slots[k] === EMPTY) {
        this.slots[k] = gfn;
        return true;
      }
      k = apfGfnNextSlot(k);
    }
    return false;
  }

  /** kvm_async_pf_gfn_slot: from the home slot, at most 64 steps past slots holding neither `gfn` nor empty. */
  slotOf(gfn: number): number {
    let k = this.home(gfn);
    for (let n = 0; n < APF_GFN_HASH_SLOTS; n++) {
      const v = this.slots[k];
      if (v === gfn || v === EMPTY) break;
      k = apfGfnNextSlot(k);
    }
    return k;
  }

  /** kvm_find_async_pf_gfn. */
  find(gfn: number): boolean {
    return this.slots[this.slotOf(gfn)] === gfn;
  }

  /**
   * kvm_del_async_pf_gfn: empty the slot, then walk forward to the next empty slot, pulling back
   * every entry whose home slot does not lie cyclically in (hole, position]. False (and `warned`)
   * when `gfn` is not in the table.
   */
  delete(gfn: number): boolean {
    let i = this.slotOf(gfn);
    if (this.slots[i] !== gfn) {
      this.warned = true;
      return false;
    }
    let j = i;
    for (;;) {
      this.slots[i] = EMPTY;
      let k: number;
      for (;;) {
        j = apfGfnNextSlot(j);
        const v = this.slots[j]!;
        if (v === EMPTY) return true;
        k = this.home(v);
        const inRange = i <= j ? i < k && k <= j : i < k || k <= j;
        if (!inRange) break;
      }
      this.slots[i] = this.slots[j]!;
      i = j;
    }
  }

  /** Occupied gfns in slot order. */
  entries(): number[] {
    return this.slots.filter((v) => v !== EMPTY);
  }

  /** The raw slot array (EMPTY = -1), for tests and reports. */
  snapshot(): readonly number[] {
    return [...this.slots];
  }

  get size(): number {
    let n = 0;
    for (const v of this.slots) if (v !== EMPTY) n++;
    return n;
  }
}
