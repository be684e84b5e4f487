/**
 * Host-physical memory: the frames the hardware (and the host kernel) access, and the host's frame
 * allocator.
 *
 * Frames `0 .. ramFrames-1` are the guest's RAM as the VMM allocated it at VM creation: the
 * harness's `GuestMemory`, in which the guest's boot loader wrote its image. Host frame `n` of that
 * block backs guest frame `n` until something changes (identity), so a VM whose memory nobody
 * remaps or migrates behaves, and traces, exactly as if the CPU accessed `GuestMemory` at the GPA.
 *
 * Beyond them lie `spareFrames` frames the host can hand out: targets of page migration and the
 * backing of memory the VMM allocates later (a memslot re-added with new pages). They are
 * allocated on first use. Frames freed by the host (the source of a migration, unplugged memory)
 * go back to the pool; the allocator always hands out the lowest free frame, so a freed frame is
 * reused first (which is what makes a write through a stale translation land in someone else's
 * page).
 *
 * Addresses are host-physical: `hfn * PAGE_SIZE + offset`.
 */
import { PAGE_SIZE } from '../shared-abi/addr';
import { GuestMemory } from '../sim/memory';
import type { PhysMemory } from '../sim/cpu/vcpu';

/** Spare host frames a VM gets when the configuration does not say (`HostMemoryConfig.spareFrames`). */
export const DEFAULT_SPARE_FRAMES = 64;

export class HostPhysMemory implements PhysMemory {
  /** Frames of the guest RAM block (host frames 0 .. ramFrames-1). */
  readonly ramFrames: number;
  readonly spareFrames: number;
  /** Bytes addressable: RAM and spare frames. */
  readonly size: number;
  private readonly ramBytes: number;
  private spareMem: GuestMemory | null = null;
  /** 1: the frame is free (spare frames start free; RAM frames start in use). */
  private readonly free: Uint8Array;

  constructor(
    readonly ram: GuestMemory,
    spareFrames: number = DEFAULT_SPARE_FRAMES,
  ) {
    if (!Number.isSafeInteger(spareFrames) || spareFrames < 0) throw new RangeError(`host memory: spareFrames must be a non-negative integer, got ${spareFrames}`);
    this.ramBytes = ram.size;
    this.ramFrames = ram.size / PAGE_SIZE;
    this.spareFrames = spareFrames;
    this.size = this.ramBytes + spareFrames * PAGE_SIZE;
    this.free = new Uint8Array(this.ramFrames + spareFrames);
    this.free.fill(1, this.ramFrames);
  }

  /** Total host frames (RAM and spare). */
  get frames(): number {
    return this.ramFrames + this.spareFrames;
  }

  // --- the frame allocator ----------------------------------------------------------------------

  /** The lowest free frame, now in use; -1 when none is left. */
  allocFrame(): number {
    const i = this.free.indexOf(1);
    if (i < 0) return -1;
    this.free[i] = 0;
    return i;
  }

  /** Returns a frame to the pool (its contents stay as they are, like freed RAM). */
  freeFrame(hfn: number): void {
    if (hfn >= 0 && hfn < this.free.length) this.free[hfn] = 1;
  }

  isFree(hfn: number): boolean {
    return this.free[hfn] === 1;
  }

  // --- whole frames -----------------------------------------------------------------------------

  /** A copy of frame `hfn`, into `into` (4096 bytes) when given. */
  copyPageOut(hfn: number, into?: Uint8Array): Uint8Array {
    return hfn < this.ramFrames ? this.ram.copyPageOut(hfn, into) : this.spare().copyPageOut(hfn - this.ramFrames, into);
  }

  copyPageIn(hfn: number, bytes: Uint8Array): void {
    if (hfn < this.ramFrames) this.ram.copyPageIn(hfn, bytes);
    else this.spare().copyPageIn(hfn - this.ramFrames, bytes);
  }

  fillPage(hfn: number, byte: number): void {
    if (hfn < this.ramFrames) this.ram.fillPage(hfn, byte);
    else this.spare().fillPage(hfn - this.ramFrames, byte);
  }

  pageChecksum(hfn: number): number {
    return hfn < this.ramFrames ? this.ram.pageChecksum(hfn) : this.spare().pageChecksum(hfn - this.ramFrames);
  }

  /** Copies frame `from` into frame `to` (page migration). */
  copyFrame(from: number, to: number): void {
    this.copyPageIn(to, this.copyPageOut(from));
  }

  // --- the CPU's accessors (PhysMemory), by host-physical address --------------------------------

  readU8(hpa: number): number {
    return hpa < this.ramBytes ? this.ram.readU8(hpa) : this.spare().readU8(hpa - this.ramBytes);
  }

  readU16(hpa: number): number {
    return hpa < this.ramBytes ? this.ram.readU16(hpa) : this.spare().readU16(hpa - this.ramBytes);
  }

  readU32(hpa: number): number {
    return hpa < this.ramBytes ? this.ram.readU32(hpa) : this.spare().readU32(hpa - this.ramBytes);
  }

  readU64(hpa: number): bigint {
    return hpa < this.ramBytes ? this.ram.readU64(hpa) : this.spare().readU64(hpa - this.ramBytes);
  }

  writeU8(hpa: number, v: number): void {
    if (hpa < this.ramBytes) this.ram.writeU8(hpa, v);
    else this.spare().writeU8(hpa - this.ramBytes, v);
  }

  writeU16(hpa: number, v: number): void {
    if (hpa < this.ramBytes) this.ram.writeU16(hpa, v);
    else this.spare().writeU16(hpa - this.ramBytes, v);
  }

  writeU32(hpa: number, v: number): void {
    if (hpa < this.ramBytes) this.ram.writeU32(hpa, v);
    else this.spare().writeU32(hpa - this.ramBytes, v);
  }

  writeU64(hpa: number, v: bigint): void {
    if (hpa < this.ramBytes) this.ram.writeU64(hpa, v);
    else this.spare().writeU64(hpa - this.ramBytes, v);
  }

  private spare(): GuestMemory {
    if (this.spareMem === null) {
      if (this.spareFrames === 0) throw new RangeError('host memory: access beyond the guest RAM block, and the VM has no spare host frames');
      this.spareMem = new GuestMemory(this.spareFrames * PAGE_SIZE);
    }
    return this.spareMem;
  }
}
