/**
 * The guest's first-level MMU: x86-64 4-level paging walked in guest-physical memory, with a
 * per-vCPU TLB. Page-table entries are 8 bytes; the model honours P, RW and US (with CR0.WP=1
 * semantics: supervisor writes to read-only pages fault too) and ignores large pages, A/D bits
 * and NX.
 *
 * Every page-table read is itself a guest-physical access and goes through the second-level
 * MMU (EPT/NPT), so a page-table page that the host has not mapped causes an EPT violation
 * during the walk, as on hardware; the entry is then read from the host frame the second-level
 * MMU names (identity unless the host migrated the page or remapped memslots). The TLB caches
 * guest-physical addresses only, so the second-level translation is looked up on every access.
 */
import { PAGE_SIZE, type Gpa, type Gva } from '../../shared-abi/addr';
import { PFEC_PRESENT, PFEC_USER, PFEC_WRITE, PTE_P, PTE_RW, PTE_US } from '../../shared-abi/arch';

// Bound once: Jest runs modules in a vm context where global lookups are slow (docs/performance.md).
const { floor } = Math;

/** The slice of physical memory the walker reads (host-physical addresses: see `SecondLevelMmu`). */
export interface PhysReader {
  readonly size: number;
  readU32(hpa: number): number;
}

/** `SecondLevelMmu.translate`: the frame is guest RAM but not mapped for this access (an EPT violation). */
export const SLAT_VIOLATION = -1;
/** `SecondLevelMmu.translate`: the frame is not guest RAM at all (no memslot): an MMIO access. */
export const SLAT_MMIO = -2;

/**
 * The hypervisor's second-level translation (EPT/NPT), as the hardware sees it. The CPU accesses
 * physical memory at `hfn * PAGE_SIZE + offset` for a guest-physical address in frame `gfn`.
 */
export interface SecondLevelMmu {
  /**
   * The host frame backing guest frame `gfn` for this kind of access, or SLAT_VIOLATION (not
   * mapped: EPT violation) or SLAT_MMIO (not RAM). Called on every guest memory access and
   * page-table read: keep it allocation-free.
   */
  translate(gfn: number, write: boolean): number;
}

/** The trivial translation: `frames` frames of RAM, each backed by the host frame of the same number. */
export function identitySlat(frames: number): SecondLevelMmu {
  return { translate: (gfn) => (gfn >= 0 && gfn < frames ? gfn : SLAT_MMIO) };
}

/** Outcome codes of a translation (no allocation on the hot path). */
export const XLATE_OK = 0;
/** Guest page fault: `faultErrorCode` holds the #PF error code. */
export const XLATE_PF = 1;
/** A page-table page is not mapped by the host: EPT violation at `faultGpa`. */
export const XLATE_EPT_WALK = 2;
/** A page-table entry lies outside guest RAM (no memslot): an MMIO access at `faultGpa`. */
export const XLATE_BAD_TABLE = 3;
export type XlateCode = typeof XLATE_OK | typeof XLATE_PF | typeof XLATE_EPT_WALK | typeof XLATE_BAD_TABLE;

const TLB_P = 1;
const TLB_RW = 2;
const TLB_US = 4;
/** 2 ** (39, 30, 21, 12): the divisor that gives each level's table index of an address. */
const LEVEL_DIV = [2 ** 39, 2 ** 30, 2 ** 21, 2 ** 12] as const;

export class GuestMmu {
  /** Virtual page number -> (page frame number * 8 | permission bits). */
  private readonly tlb = new Map<number, number>();
  /** Results of the last translate() call. */
  gpa = 0 as Gpa;
  faultErrorCode = 0;
  faultGpa = 0 as Gpa;
  /** Number of TLB misses (page walks) so far. */
  walks = 0;

  constructor(
    private readonly mem: PhysReader,
    private readonly slat: SecondLevelMmu,
  ) {}

  flush(): void {
    this.tlb.clear();
  }

  invalidate(va: Gva): void {
    this.tlb.delete(floor(va / PAGE_SIZE));
  }

  /**
   * Translate `va` for an access. With paging off the address is physical. On XLATE_OK the
   * physical address is in `this.gpa`; otherwise see the code's comment.
   */
  translate(va: Gva, write: boolean, user: boolean, paging: boolean, cr3: number): XlateCode {
    if (!paging) {
      this.gpa = va as number as Gpa;
      return XLATE_OK;
    }
    const vpn = floor(va / PAGE_SIZE);
    const off = va - vpn * PAGE_SIZE;
    let ent = this.tlb.get(vpn);
    if (ent === undefined) {
      const code = this.walk(va, cr3);
      if (code !== XLATE_OK) {
        if (code === XLATE_PF) this.faultErrorCode = (write ? PFEC_WRITE : 0) | (user ? PFEC_USER : 0);
        return code;
      }
      ent = this.walkResult;
      this.tlb.set(vpn, ent);
    }
    const perms = ent & 7;
    if ((user && !(perms & TLB_US)) || (write && !(perms & TLB_RW))) {
      this.faultErrorCode = PFEC_PRESENT | (write ? PFEC_WRITE : 0) | (user ? PFEC_USER : 0);
      return XLATE_PF;
    }
    this.gpa = ((ent - perms) / 8 * PAGE_SIZE + off) as Gpa;
    return XLATE_OK;
  }

  private walkResult = 0;

  private walk(va: Gva, cr3: number): XlateCode {
    this.walks++;
    let table = cr3 - (cr3 % PAGE_SIZE);
    let rw = TLB_RW;
    let us = TLB_US;
    for (let level = 0; level < 4; level++) {
      const idx = floor(va / LEVEL_DIV[level]!) % 512;
      const entryGpa = table + idx * 8;
      const gfn = floor(entryGpa / PAGE_SIZE);
      const hfn = this.slat.translate(gfn, false);
      if (hfn < 0) {
        this.faultGpa = entryGpa as Gpa;
        return hfn === SLAT_MMIO ? XLATE_BAD_TABLE : XLATE_EPT_WALK;
      }
      const entryHpa = entryGpa + (hfn - gfn) * PAGE_SIZE;
      const lo = this.mem.readU32(entryHpa);
      if (!(lo & PTE_P)) return XLATE_PF;
      const hi = this.mem.readU32(entryHpa + 4);
      if (!(lo & PTE_RW)) rw = 0;
      if (!(lo & PTE_US)) us = 0;
      table = (hi & 0xfffff) * 2 ** 32 + ((lo >>> 12) << 12 >>> 0);
    }
    this.walkResult = (table / PAGE_SIZE) * 8 + TLB_P + rw + us;
    return XLATE_OK;
  }
}
