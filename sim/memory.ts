/**
 * Guest-physical memory: one flat `SharedArrayBuffer` (shareable with worker threads later),
 * little-endian like x86. Every access is bounds-checked; an access that would touch a byte
 * outside memory throws `GuestMemoryError` with the address. Misaligned multi-byte accesses are
 * allowed (x86 allows them) as long as they end inside memory.
 *
 * Addresses are plain `number` parameters, so a branded `Gpa` (or `gpaOfGfn(f)`) passes as is and
 * the class implements shared-abi's `LeMemory`, the shape its layout accessors take.
 */
import { PAGE_SIZE, type FrameNo, type PhysAddr } from '../shared-abi/addr';
import type { LeMemory } from '../shared-abi/layout';
import { GuestMemoryError, SimError } from './errors';

// Globals used on hot paths, bound once: inside a vm context (Jest) each global lookup goes
// through an interceptor and costs ~100 ns (docs/performance.md).
const { imul, floor } = Math;
const { isSafeInteger } = Number;

/** The platform stores typed-array words little-endian (x86, arm64): whole-page loops may use an Int32Array view. */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** One ready-made page per fill byte, made on first use. */
const filledPages: Array<Uint8Array | undefined> = [];
function filledPage(byte: number): Uint8Array {
  let p = filledPages[byte];
  if (p === undefined) {
    p = new Uint8Array(PAGE_SIZE).fill(byte);
    filledPages[byte] = p;
  }
  return p;
}

/**
 * Buffers of released memories (`GuestMemory.release`), zeroed, by size: a new GuestMemory of
 * that size takes one instead of allocating. A fresh SharedArrayBuffer is cheap to allocate but
 * each page the simulation touches is faulted in and zeroed by the OS; and V8 does not count a
 * SharedArrayBuffer as external memory, so garbage collection does not hurry to free one: a
 * process that builds machine after machine (the fuzzer) grows by the touched pages of each.
 * At most POOL_MAX buffers are kept.
 */
const pool = new Map<number, SharedArrayBuffer[]>();
let pooled = 0;
const POOL_MAX = 4;

/** Buffers in the pool now (tests). */
export function pooledBuffers(): number {
  return pooled;
}

const TWO63 = 1n << 63n;
const TWO64 = 1n << 64n;

function outOfRange(mem: GuestMemory, op: string, gpa: number, len: number): never {
  throw new GuestMemoryError(gpa, len, mem.size, op);
}

function badValue(op: string, v: number | bigint, bits: number): never {
  throw new SimError('value', `${op}: value ${v} does not fit in ${bits} bits (expected an integer in [-2^${bits - 1}, 2^${bits}))`);
}

/** Flat little-endian guest-physical memory with bounds-checked accessors. */
export class GuestMemory implements LeMemory {
  private readonly sab: SharedArrayBuffer;
  private readonly dv: DataView;
  private readonly u8: Uint8Array;
  private readonly i32: Int32Array;
  // Size and the highest valid start address of a 2-, 4- and 8-byte access (all 0 / -1 once released).
  private bytes: number;
  private last2: number;
  private last4: number;
  private last8: number;
  /** One byte per page: written since the memory was made (what `release` must zero). */
  private readonly dirty: Uint8Array;
  /** `buffer` was handed out: writes may have bypassed `dirty`, so the buffer is not pooled. */
  private exported = false;

  /** `sizeBytes` must be a positive multiple of PAGE_SIZE (4096). Memory starts zeroed. */
  constructor(sizeBytes: number) {
    if (!isSafeInteger(sizeBytes) || sizeBytes <= 0 || sizeBytes % PAGE_SIZE !== 0) {
      throw new SimError('guest-memory', `guest memory size must be a positive multiple of ${PAGE_SIZE} bytes, got ${sizeBytes}`);
    }
    this.bytes = sizeBytes;
    const reuse = pool.get(sizeBytes)?.pop();
    if (reuse !== undefined) pooled--;
    this.sab = reuse ?? new SharedArrayBuffer(sizeBytes);
    this.dirty = new Uint8Array(sizeBytes / PAGE_SIZE);
    this.dv = new DataView(this.sab);
    this.u8 = new Uint8Array(this.sab);
    this.i32 = new Int32Array(this.sab);
    this.last2 = sizeBytes - 2;
    this.last4 = sizeBytes - 4;
    this.last8 = sizeBytes - 8;
  }

  /** Size in bytes. */
  get size(): number {
    return this.bytes;
  }

  /** Size in 4 KiB pages. */
  get pages(): number {
    return this.bytes / PAGE_SIZE;
  }

  /** The backing buffer, for handing to a worker thread. Accesses through it are not checked. */
  get buffer(): SharedArrayBuffer {
    this.exported = true;
    return this.sab;
  }

  /**
   * Ends this memory's life: its pages written so far are zeroed and its buffer goes to a small
   * pool that the next GuestMemory of the same size takes (same contents as a fresh one: all
   * zero). Every access after this throws GuestMemoryError. Optional: an unreleased memory is
   * garbage collected as usual. Releasing twice does nothing.
   */
  release(): void {
    if (this.bytes === 0) return;
    const size = this.bytes;
    this.bytes = 0;
    this.last2 = this.last4 = this.last8 = -1;
    if (this.exported || pooled >= POOL_MAX) return;
    const zero = filledPage(0);
    const d = this.dirty;
    for (let p = 0; p < d.length; p++) if (d[p] !== 0) this.u8.set(zero, p * PAGE_SIZE);
    let list = pool.get(size);
    if (list === undefined) {
      list = [];
      pool.set(size, list);
    }
    list.push(this.sab);
    pooled++;
  }

  /** True when the `len` bytes at `gpa` are all inside memory (integers, `len` >= 0). */
  contains(gpa: PhysAddr, len: number): boolean {
    return isSafeInteger(gpa) && isSafeInteger(len) && gpa >= 0 && len >= 0 && gpa + len <= this.bytes;
  }

  readU8(gpa: PhysAddr): number {
    if (!(gpa >= 0 && gpa < this.bytes) || floor(gpa) !== gpa) outOfRange(this, 'readU8', gpa, 1);
    return this.u8[gpa]!;
  }

  readU16(gpa: PhysAddr): number {
    if (!(gpa >= 0 && gpa <= this.last2) || floor(gpa) !== gpa) outOfRange(this, 'readU16', gpa, 2);
    return this.dv.getUint16(gpa, true);
  }

  readU32(gpa: PhysAddr): number {
    if (!(gpa >= 0 && gpa <= this.last4) || floor(gpa) !== gpa) outOfRange(this, 'readU32', gpa, 4);
    return this.dv.getUint32(gpa, true);
  }

  readU64(gpa: PhysAddr): bigint {
    if (!(gpa >= 0 && gpa <= this.last8) || floor(gpa) !== gpa) outOfRange(this, 'readU64', gpa, 8);
    return this.dv.getBigUint64(gpa, true);
  }

  /** Writes a byte; `v` may be in [-128, 255] (stored modulo 2^8). */
  writeU8(gpa: PhysAddr, v: number): void {
    if (!(gpa >= 0 && gpa < this.bytes) || floor(gpa) !== gpa) outOfRange(this, 'writeU8', gpa, 1);
    if ((v & 0xff) !== v && (v << 24) >> 24 !== v) badValue('writeU8', v, 8);
    this.u8[gpa] = v;
    this.dirty[floor(gpa / PAGE_SIZE)] = 1;
  }

  /** Writes 16 bits little-endian; `v` may be in [-2^15, 2^16). */
  writeU16(gpa: PhysAddr, v: number): void {
    if (!(gpa >= 0 && gpa <= this.last2) || floor(gpa) !== gpa) outOfRange(this, 'writeU16', gpa, 2);
    if ((v & 0xffff) !== v && (v << 16) >> 16 !== v) badValue('writeU16', v, 16);
    this.dv.setUint16(gpa, v, true);
    this.touched(gpa, 2);
  }

  /** Writes 32 bits little-endian; `v` may be in [-2^31, 2^32), so int32 results of bit operations are fine. */
  writeU32(gpa: PhysAddr, v: number): void {
    if (!(gpa >= 0 && gpa <= this.last4) || floor(gpa) !== gpa) outOfRange(this, 'writeU32', gpa, 4);
    if (v >>> 0 !== v && (v | 0) !== v) badValue('writeU32', v, 32);
    this.dv.setUint32(gpa, v, true);
    this.touched(gpa, 4);
  }

  /** Writes 64 bits little-endian; `v` may be in [-2^63, 2^64). */
  writeU64(gpa: PhysAddr, v: bigint): void {
    if (!(gpa >= 0 && gpa <= this.last8) || floor(gpa) !== gpa) outOfRange(this, 'writeU64', gpa, 8);
    if (v < -TWO63 || v >= TWO64) badValue('writeU64', v, 64);
    this.dv.setBigUint64(gpa, v, true);
    this.touched(gpa, 8);
  }

  /** A copy of `len` bytes at `gpa`. */
  readBytes(gpa: PhysAddr, len: number): Uint8Array {
    if (!this.contains(gpa, len)) outOfRange(this, 'readBytes', gpa, len);
    return this.u8.slice(gpa, gpa + len);
  }

  /** Copies `bytes` into memory at `gpa`. */
  writeBytes(gpa: PhysAddr, bytes: Uint8Array): void {
    if (!this.contains(gpa, bytes.length)) outOfRange(this, 'writeBytes', gpa, bytes.length);
    this.u8.set(bytes, gpa);
    if (bytes.length > 0) for (let p = floor(gpa / PAGE_SIZE), last = floor((gpa + bytes.length - 1) / PAGE_SIZE); p <= last; p++) this.dirty[p] = 1;
  }

  /** Sets every byte of page `gfn` to `byte` (0..255). */
  fillPage(gfn: FrameNo, byte: number): void {
    const start = this.pageStart(gfn, 'fillPage');
    if ((byte & 0xff) !== byte) badValue('fillPage', byte, 8);
    // Copying a ready-made page is several times faster than `fill` on a SharedArrayBuffer view
    // (docs/performance.md).
    this.u8.set(filledPage(byte), start);
    this.dirty[gfn] = 1;
  }

  /**
   * A copy of page `gfn` (4096 bytes): into `into` when given (a 4096-byte buffer the caller
   * recycles), else into a new array.
   */
  copyPageOut(gfn: FrameNo, into?: Uint8Array): Uint8Array {
    const start = this.pageStart(gfn, 'copyPageOut');
    if (into === undefined) return this.u8.slice(start, start + PAGE_SIZE);
    if (into.length !== PAGE_SIZE) {
      throw new SimError('value', `copyPageOut(gfn 0x${gfn.toString(16)}): the buffer must be ${PAGE_SIZE} bytes, got ${into.length}`);
    }
    into.set(this.u8.subarray(start, start + PAGE_SIZE));
    return into;
  }

  /** Overwrites page `gfn` with `bytes`, which must be exactly 4096 bytes. */
  copyPageIn(gfn: FrameNo, bytes: Uint8Array): void {
    const start = this.pageStart(gfn, 'copyPageIn');
    if (bytes.length !== PAGE_SIZE) {
      throw new SimError('value', `copyPageIn(gfn 0x${gfn.toString(16)}): expected ${PAGE_SIZE} bytes, got ${bytes.length}`);
    }
    this.u8.set(bytes, start);
    this.dirty[gfn] = 1;
  }

  /**
   * MurmurHash3 (x86, 32-bit, seed 0) of page `gfn`, read as 1024 little-endian words. Not
   * cryptographic; meant for "did this page's content change / arrive intact" checks.
   */
  pageChecksum(gfn: FrameNo): number {
    const start = this.pageStart(gfn, 'pageChecksum');
    const dv = this.dv;
    const w = this.i32;
    let h = 0;
    for (let a = start, end = start + PAGE_SIZE; a < end; a += 4) {
      let k = imul(LITTLE_ENDIAN ? w[a >> 2]! : dv.getInt32(a, true), 0xcc9e2d51);
      k = imul((k << 15) | (k >>> 17), 0x1b873593);
      h ^= k;
      h = (h << 13) | (h >>> 19);
      h = (imul(h, 5) + 0xe6546b64) | 0;
    }
    h ^= PAGE_SIZE;
    h ^= h >>> 16;
    h = imul(h, 0x85ebca6b);
    h ^= h >>> 13;
    h = imul(h, 0xc2b2ae35);
    h ^= h >>> 16;
    return h >>> 0;
  }

  /** Marks the page(s) of a `len`-byte write at `gpa` written (a misaligned write may span two). */
  private touched(gpa: number, len: number): void {
    const d = this.dirty;
    d[floor(gpa / PAGE_SIZE)] = 1;
    d[floor((gpa + len - 1) / PAGE_SIZE)] = 1;
  }

  private pageStart(gfn: FrameNo, op: string): number {
    if (!(gfn >= 0 && gfn < this.bytes / PAGE_SIZE) || floor(gfn) !== gfn) outOfRange(this, op, gfn * PAGE_SIZE, PAGE_SIZE);
    return gfn * PAGE_SIZE;
  }
}
