import { gfnOf, gpa, PAGE_SIZE, type Gfn, type Gpa, type Gva } from '../../shared-abi/addr';
import type { LeMemory } from '../../shared-abi/layout';
import { GuestMemory, GuestMemoryError, SimError } from '../../sim';
import { pooledBuffers } from '../../sim/memory';
import { caught } from '../support/caught';

const MiB = 1 << 20;

describe('GuestMemory basics', () => {
  test('size, pages, zeroed, shared buffer', () => {
    const m = new GuestMemory(4 * MiB);
    expect(m.size).toBe(4 * MiB);
    expect(m.pages).toBe(1024);
    expect(m.readU64(0)).toBe(0n);
    expect(m.readU32(4 * MiB - 4)).toBe(0);
    expect(m.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(m.buffer.byteLength).toBe(4 * MiB);
  });

  test('size must be a positive multiple of 4096', () => {
    for (const bad of [0, -4096, 4095, 4097, 1.5 * 4096, NaN]) expect(() => new GuestMemory(bad)).toThrow(SimError);
    expect(() => new GuestMemory(100)).toThrow(/multiple of 4096/);
  });

  test('is structurally an LeMemory and takes branded addresses', () => {
    const m = new GuestMemory(PAGE_SIZE);
    const le: LeMemory = m;
    const a: Gpa = gpa(0x10);
    le.writeU32(a, 0xdeadbeef);
    expect(m.readU32(a)).toBe(0xdeadbeef);
    const f: Gfn = gfnOf(a);
    expect(m.pageChecksum(f)).toBe(m.pageChecksum(0));
  });
});

describe('GuestMemory byte order and widths', () => {
  test('little-endian on every width', () => {
    const m = new GuestMemory(PAGE_SIZE);
    m.writeU32(0, 0x11223344);
    expect([...m.readBytes(0, 4)]).toEqual([0x44, 0x33, 0x22, 0x11]);
    expect(m.readU16(0)).toBe(0x3344);
    expect(m.readU16(2)).toBe(0x1122);
    expect(m.readU8(3)).toBe(0x11);

    m.writeU64(8, 0x0102030405060708n);
    expect([...m.readBytes(8, 8)]).toEqual([8, 7, 6, 5, 4, 3, 2, 1]);
    expect(m.readU32(8)).toBe(0x05060708);
    expect(m.readU32(12)).toBe(0x01020304);

    m.writeU16(20, 0xabcd);
    expect([...m.readBytes(20, 2)]).toEqual([0xcd, 0xab]);
    m.writeBytes(32, Uint8Array.of(0xef, 0xbe, 0xad, 0xde));
    expect(m.readU32(32)).toBe(0xdeadbeef);
  });

  test('reads are unsigned; int32 and negative inputs store their two’s complement', () => {
    const m = new GuestMemory(PAGE_SIZE);
    m.writeU32(0, -1);
    expect(m.readU32(0)).toBe(0xffffffff);
    m.writeU32(4, 0x80000000 | 1); // an int32 from a bit operation
    expect(m.readU32(4)).toBe(0x80000001);
    m.writeU16(8, -2);
    expect(m.readU16(8)).toBe(0xfffe);
    m.writeU8(10, -1);
    expect(m.readU8(10)).toBe(255);
    m.writeU64(16, -1n);
    expect(m.readU64(16)).toBe(2n ** 64n - 1n);
  });

  test('values that do not fit are rejected', () => {
    const m = new GuestMemory(PAGE_SIZE);
    expect(() => m.writeU8(0, 256)).toThrow(/8 bits/);
    expect(() => m.writeU8(0, -129)).toThrow(SimError);
    expect(() => m.writeU16(0, 0x10000)).toThrow(/16 bits/);
    expect(() => m.writeU32(0, 2 ** 32)).toThrow(/32 bits/);
    expect(() => m.writeU32(0, 1.5)).toThrow(SimError);
    expect(() => m.writeU32(0, NaN)).toThrow(SimError);
    expect(() => m.writeU64(0, 2n ** 64n)).toThrow(/64 bits/);
    expect(() => m.writeU64(0, -(2n ** 63n) - 1n)).toThrow(SimError);
    expect(m.readU64(0)).toBe(0n);
  });

  test('misaligned accesses are allowed', () => {
    const m = new GuestMemory(PAGE_SIZE);
    m.writeU32(1, 0xa1b2c3d4);
    expect(m.readU32(1)).toBe(0xa1b2c3d4);
    expect(m.readU8(1)).toBe(0xd4);
    m.writeU64(PAGE_SIZE - 9, 0x1122334455667788n);
    expect(m.readU64(PAGE_SIZE - 9)).toBe(0x1122334455667788n);
    m.writeU16(PAGE_SIZE - 2, 0xbeef);
    expect(m.readU16(PAGE_SIZE - 2)).toBe(0xbeef);
  });
});

describe('GuestMemory bounds', () => {
  const size = 16 * PAGE_SIZE; // 0x10000

  test('an access crossing the end throws GuestMemoryError with the hex address', () => {
    const m = new GuestMemory(size);
    const e = caught(() => m.readU32(size - 3));
    expect(e).toBeInstanceOf(GuestMemoryError);
    expect(e).toBeInstanceOf(SimError);
    const g = e as GuestMemoryError;
    expect(g.kind).toBe('guest-memory');
    expect(g.gpa).toBe(size - 3);
    expect(g.size).toBe(4);
    expect(g.memorySize).toBe(size);
    expect(g.op).toBe('readU32');
    expect(g.message).toContain('0xfffd');
    expect(g.message).toContain('0x10000 bytes');
    expect(g.message).toMatch(/readU32 of 4 bytes/);
  });

  test.each([
    ['readU8', (m: GuestMemory) => m.readU8(size)],
    ['readU8 -1', (m: GuestMemory) => m.readU8(-1)],
    ['readU16', (m: GuestMemory) => m.readU16(size - 1)],
    ['readU64', (m: GuestMemory) => m.readU64(size - 7)],
    ['writeU8', (m: GuestMemory) => m.writeU8(size, 0)],
    ['writeU16', (m: GuestMemory) => m.writeU16(size - 1, 0)],
    ['writeU32', (m: GuestMemory) => m.writeU32(size - 2, 0)],
    ['writeU64', (m: GuestMemory) => m.writeU64(size - 4, 0n)],
    ['fractional address', (m: GuestMemory) => m.readU32(1.5)],
    ['NaN address', (m: GuestMemory) => m.readU32(NaN)],
    ['huge address', (m: GuestMemory) => m.readU32(2 ** 52)],
    ['readBytes', (m: GuestMemory) => m.readBytes(size - 4, 5)],
    ['readBytes negative length', (m: GuestMemory) => m.readBytes(0, -1)],
    ['writeBytes', (m: GuestMemory) => m.writeBytes(size - 1, new Uint8Array(2))],
    ['fillPage', (m: GuestMemory) => m.fillPage(16, 0)],
    ['copyPageOut', (m: GuestMemory) => m.copyPageOut(-1)],
    ['copyPageIn', (m: GuestMemory) => m.copyPageIn(99, new Uint8Array(PAGE_SIZE))],
    ['pageChecksum', (m: GuestMemory) => m.pageChecksum(1.5)],
  ])('%s out of range throws GuestMemoryError', (_name, fn) => {
    const m = new GuestMemory(size);
    expect(() => fn(m)).toThrow(GuestMemoryError);
  });

  test('last valid bytes are fine, and nothing was written by a failed access', () => {
    const m = new GuestMemory(size);
    m.writeU8(size - 1, 7);
    m.writeU32(size - 4, 0x07000000 | 0x010203);
    expect(m.readU8(size - 1)).toBe(7);
    expect(m.readBytes(size, 0).length).toBe(0);
    expect(() => m.writeU32(size - 3, 0xffffffff)).toThrow(GuestMemoryError);
    expect(m.readU32(size - 4)).toBe(0x07010203);
  });

  test('page errors report the page address', () => {
    const m = new GuestMemory(size);
    const e = caught(() => m.fillPage(0x20, 1)) as GuestMemoryError;
    expect(e.gpa).toBe(0x20000);
    expect(e.size).toBe(PAGE_SIZE);
    expect(e.message).toContain('0x20000');
  });

  test('contains()', () => {
    const m = new GuestMemory(size);
    expect(m.contains(0, size)).toBe(true);
    expect(m.contains(size - 4, 4)).toBe(true);
    expect(m.contains(size - 3, 4)).toBe(false);
    expect(m.contains(size, 0)).toBe(true);
    expect(m.contains(-1, 1)).toBe(false);
    expect(m.contains(0, -1)).toBe(false);
    expect(m.contains(0.5, 1)).toBe(false);
  });
});

describe('GuestMemory pages', () => {
  test('copy out / copy in round trip, and copies are independent', () => {
    const m = new GuestMemory(8 * PAGE_SIZE);
    const page = new Uint8Array(PAGE_SIZE);
    for (let i = 0; i < PAGE_SIZE; i++) page[i] = (i * 7 + 3) & 0xff;
    m.copyPageIn(3, page);
    const out = m.copyPageOut(3);
    expect(out).toEqual(page);
    expect(out.buffer).not.toBe(m.buffer);
    out[0] = 0xee;
    expect(m.readU8(3 * PAGE_SIZE)).toBe(3);
    page[1] = 0xee;
    expect(m.readU8(3 * PAGE_SIZE + 1)).toBe(10);
    // neighbours untouched
    expect(m.readU8(3 * PAGE_SIZE - 1)).toBe(0);
    expect(m.readU8(4 * PAGE_SIZE)).toBe(0);
  });

  test('readBytes returns a copy', () => {
    const m = new GuestMemory(PAGE_SIZE);
    m.writeU8(5, 9);
    const b = m.readBytes(4, 4);
    b[1] = 1;
    expect(m.readU8(5)).toBe(9);
  });

  test('copyPageIn insists on exactly one page', () => {
    const m = new GuestMemory(PAGE_SIZE);
    expect(() => m.copyPageIn(0, new Uint8Array(100))).toThrow(/4096 bytes/);
  });

  test('fillPage fills exactly one page', () => {
    const m = new GuestMemory(4 * PAGE_SIZE);
    m.fillPage(1, 0xab);
    expect(m.readU8(PAGE_SIZE - 1)).toBe(0);
    expect(m.readU8(PAGE_SIZE)).toBe(0xab);
    expect(m.readU32(2 * PAGE_SIZE - 4)).toBe(0xabababab);
    expect(m.readU8(2 * PAGE_SIZE)).toBe(0);
    expect(() => m.fillPage(1, 256)).toThrow(SimError);
  });

  test('pageChecksum is MurmurHash3_x86_32 (seed 0) of the page', () => {
    // Reference values from the C implementation (smhasher MurmurHash3.cpp).
    const m = new GuestMemory(4 * PAGE_SIZE);
    expect(m.pageChecksum(0)).toBe(2194262994);
    m.fillPage(1, 0xab);
    expect(m.pageChecksum(1)).toBe(2813747139);
    const page = new Uint8Array(PAGE_SIZE);
    for (let i = 0; i < PAGE_SIZE; i++) page[i] = (i * 7 + 3) & 0xff;
    m.copyPageIn(2, page);
    expect(m.pageChecksum(2)).toBe(3448165165);
    m.writeU8(2 * PAGE_SIZE + 4000, page[4000]! ^ 1);
    expect(m.pageChecksum(2)).not.toBe(3448165165);
  });
});

describe('address types', () => {
  test('a Gva does not type-check as a guest-physical address, nor a Gpa as a frame number (checked by tsc)', () => {
    const mem = new GuestMemory(PAGE_SIZE);
    const typeOnly = (v: Gva, p: Gpa): void => {
      // @ts-expect-error a guest-virtual address is not a guest-physical one
      mem.readU32(v);
      // @ts-expect-error a guest-physical address is not a frame number
      mem.pageChecksum(p);
    };
    expect(typeof typeOnly).toBe('function');
    mem.writeU32(gpa(8), 0xdeadbeef);
    expect(mem.readU32(gpa(8))).toBe(0xdeadbeef);
  });
});

describe('GuestMemory.release and the buffer pool', () => {
  const SIZE = 1 * MiB + 3 * 4096; // a size no other test uses, so the pool holds only ours
  const allZero = (m: GuestMemory): boolean => {
    for (let a = 0; a < m.size; a += 4) if (m.readU32(a) !== 0) return false;
    return true;
  };

  it('a memory built after a release starts all zero, whatever was written and how', () => {
    const m = new GuestMemory(SIZE);
    m.writeU8(5, 0xff);
    m.writeU16(4095, 0xffff); // spans two pages
    m.writeU32(8190, -1); // spans two pages
    m.writeU64(3 * 4096 - 4, 0xffff_ffff_ffff_ffffn); // spans two pages
    m.writeBytes(5 * 4096 - 10, new Uint8Array(4096 + 20).fill(7)); // three pages
    m.fillPage(100, 0xaa);
    m.copyPageIn(200, new Uint8Array(4096).fill(3));
    m.writeU32(SIZE - 4, 0x12345678);
    expect(allZero(m)).toBe(false);
    const before = pooledBuffers();
    m.release();
    expect(pooledBuffers()).toBe(before + 1);
    const n = new GuestMemory(SIZE); // takes m's buffer
    expect(pooledBuffers()).toBe(before);
    expect(allZero(n)).toBe(true);
    n.release();
  });

  it('a released memory refuses every access; releasing twice is harmless', () => {
    const m = new GuestMemory(SIZE);
    m.release();
    m.release();
    expect(() => m.readU32(0)).toThrow(GuestMemoryError);
    expect(() => m.writeU8(0, 1)).toThrow(GuestMemoryError);
    expect(() => m.fillPage(0, 0)).toThrow(GuestMemoryError);
    expect(m.contains(0, 1)).toBe(false);
  });

  it('a memory whose buffer was handed out is not pooled (writes through it are not tracked)', () => {
    const m = new GuestMemory(SIZE);
    new Uint8Array(m.buffer)[4096 * 7] = 9;
    const before = pooledBuffers();
    m.release();
    expect(pooledBuffers()).toBe(before);
    const n = new GuestMemory(SIZE);
    expect(n.readU8(4096 * 7)).toBe(0);
    n.release();
  });
});
