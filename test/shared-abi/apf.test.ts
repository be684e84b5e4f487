import fc from 'fast-check';
import {
  APF_GFN_EMPTY,
  APF_GFN_HASH_BITS,
  APF_GFN_HASH_SLOTS,
  APF_ID_PERIOD,
  APF_TOKEN_ID_SHIFT,
  APF_TOKEN_VCPU_MASK,
  ASYNC_PF_PER_VCPU,
  KVM_APF_WAKE_ALL_TOKEN,
  KVM_PV_REASON,
  KVM_PV_REASON_PAGE_NOT_PRESENT,
  KVM_PV_REASON_PAGE_READY,
  KVM_TASK_SLEEP_HASHBITS,
  KVM_TASK_SLEEP_HASHSIZE,
  allocApfToken,
  apfGfnHashSlot,
  apfGfnNextSlot,
  apfIdToUse,
  compareKernelVersions,
  kernelAtLeast,
  makeToken,
  nextApfId,
  parseKernelVersion,
  sleeperBucket,
  tokenId,
  tokenVcpu,
} from '../../shared-abi/apf';

const OLD = { avoidZero: false } as const;
const NEW = { avoidZero: true } as const;

describe('reasons (spec §1.5)', () => {
  test('values', () => {
    expect(KVM_PV_REASON_PAGE_NOT_PRESENT).toBe(1);
    expect(KVM_PV_REASON_PAGE_READY).toBe(2);
    expect(KVM_PV_REASON).toEqual({ NONE: 0, PAGE_NOT_PRESENT: 1, PAGE_READY: 2 });
  });
});

describe('limits and hash sizes (spec §1.6, §3.1a, §4.1)', () => {
  test('values', () => {
    expect(KVM_APF_WAKE_ALL_TOKEN).toBe(0xffffffff);
    expect(ASYNC_PF_PER_VCPU).toBe(64);
    expect(APF_GFN_HASH_BITS).toBe(6);
    expect(APF_GFN_HASH_SLOTS).toBe(64);
    expect(APF_GFN_EMPTY).toBe(0xffffffffffffffffn);
    expect(KVM_TASK_SLEEP_HASHBITS).toBe(8);
    expect(KVM_TASK_SLEEP_HASHSIZE).toBe(256);
    expect(APF_TOKEN_ID_SHIFT).toBe(12);
    expect(APF_TOKEN_VCPU_MASK).toBe(0xfff);
    expect(APF_ID_PERIOD).toBe(0x100000);
  });
  test('gfn hash slot uses the low 32 bits of the gfn, 6 bits', () => {
    expect(apfGfnHashSlot(0)).toBe(0);
    expect(apfGfnHashSlot(1)).toBe(24);
    expect(apfGfnHashSlot(0x1000)).toBe(34);
    // 0x7f0000001 truncates to 0xf0000001
    expect(apfGfnHashSlot(0x7f0000001)).toBe(60);
    expect(apfGfnHashSlot(0x7f0000001)).toBe(apfGfnHashSlot(0xf0000001));
    expect(apfGfnNextSlot(5)).toBe(6);
    expect(apfGfnNextSlot(63)).toBe(0);
  });
  test('sleeper bucket is hash_32(token, 8)', () => {
    expect(sleeperBucket(0x1000)).toBe(136);
    expect(sleeperBucket(0x1001)).toBe(234);
    expect(sleeperBucket(0xffffffff)).toBe(158);
  });
});

describe('tokens (spec §1.6)', () => {
  test('makeToken is (id << 12) | vcpu in u32', () => {
    expect(makeToken(1, 0)).toBe(0x1000);
    expect(makeToken(1, 3)).toBe(0x1003);
    expect(makeToken(0xfffff, 0xfff)).toBe(0xffffffff);
    expect(makeToken(0x100000, 5)).toBe(5); // id bits above 19 fall off
    expect(makeToken(0xffffffff, 0)).toBe(0xfffff000);
    expect(makeToken(0x80000, 1)).toBe(0x80000001);
  });
  test('OR, not add: a vCPU id above 4095 overlaps the id field', () => {
    expect(makeToken(1, 0x1000)).toBe(0x1000);
    expect(makeToken(1, 0x1001)).toBe(0x1001);
    expect(makeToken(1, 0x1001)).not.toBe(0x1000 + 0x1001);
  });
  test('decoders', () => {
    expect(tokenId(0x12345678)).toBe(0x12345);
    expect(tokenVcpu(0x12345678)).toBe(0x678);
    expect(tokenId(0xffffffff)).toBe(0xfffff);
    expect(tokenVcpu(0xffffffff)).toBe(0xfff);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xfffff }), fc.integer({ min: 0, max: 0xfff }), (id, vcpu) => {
        const t = makeToken(id, vcpu);
        expect(tokenId(t)).toBe(id);
        expect(tokenVcpu(t)).toBe(vcpu);
      }),
    );
  });
  test('makeToken rejects non-u32 input', () => {
    expect(() => makeToken(-1, 0)).toThrow(RangeError);
    expect(() => makeToken(2 ** 32, 0)).toThrow(RangeError);
    expect(() => makeToken(1, 0.5)).toThrow(RangeError);
  });
  test('pre-2022: the first token of vCPU 0 is 0', () => {
    expect(allocApfToken(0, 0, OLD)).toEqual({ token: 0, nextId: 1 });
    expect(apfIdToUse(0, OLD)).toBe(0);
    expect(nextApfId(0, OLD)).toBe(1);
  });
  test('post-2022: id 0 is skipped, the first token of vCPU 0 is 0x1000', () => {
    expect(allocApfToken(0, 0, NEW)).toEqual({ token: 0x1000, nextId: 2 });
    expect(apfIdToUse(0, NEW)).toBe(1);
    expect(nextApfId(0, NEW)).toBe(2);
    expect(allocApfToken(1, 0, NEW)).toEqual({ token: 0x1000, nextId: 2 });
    expect(allocApfToken(2, 7, NEW)).toEqual({ token: 0x2007, nextId: 3 });
  });
  test('wrap-around at 2^20: skipped only with avoidZero', () => {
    expect(allocApfToken(0xfffff, 2, NEW)).toEqual({ token: 0xfffff002, nextId: 0x100000 });
    expect(allocApfToken(0x100000, 2, NEW)).toEqual({ token: 0x1002, nextId: 2 });
    expect(allocApfToken(0xfffff, 2, OLD)).toEqual({ token: 0xfffff002, nextId: 0x100000 });
    expect(allocApfToken(0x100000, 2, OLD)).toEqual({ token: 0x002, nextId: 0x100001 });
    expect(allocApfToken(0x100000, 0, OLD).token).toBe(0);
    for (const k of [1, 2, 7, 0xfff]) {
      expect(apfIdToUse(k * APF_ID_PERIOD, NEW)).toBe(1);
      expect(apfIdToUse(k * APF_ID_PERIOD, OLD)).toBe(k * APF_ID_PERIOD);
    }
    expect(apfIdToUse(0x100001, NEW)).toBe(0x100001);
  });
  test('u32 wrap of the counter', () => {
    expect(nextApfId(0xffffffff, OLD)).toBe(0);
    expect(nextApfId(0xffffffff, NEW)).toBe(0);
    expect(allocApfToken(0xffffffff, 1, OLD)).toEqual({ token: 0xfffff001, nextId: 0 });
    // the counter wrapped to 0; the next allocation uses 1 with avoidZero, 0 without
    expect(allocApfToken(0, 1, NEW).token).toBe(0x1001);
    expect(allocApfToken(0, 1, OLD).token).toBe(0x0001);
  });
  test('with avoidZero, a run of 2^20 + 5 allocations never yields an id of 0 and wraps to 1', () => {
    let id = 0;
    const seen: number[] = [];
    let zeroIds = 0;
    for (let i = 0; i < APF_ID_PERIOD + 5; i++) {
      const { token, nextId } = allocApfToken(id, 0, NEW);
      if (tokenId(token) === 0) zeroIds++;
      if (i < 3 || i >= APF_ID_PERIOD - 3) seen.push(tokenId(token));
      id = nextId;
    }
    expect(zeroIds).toBe(0);
    // ids 1..0xfffff, then 1 again (0x100000 is skipped)
    expect(seen).toEqual([1, 2, 3, 0xffffe, 0xfffff, 1, 2, 3, 4, 5, 6]);
  });
  test('apfIdToUse rejects non-u32 counters', () => {
    expect(() => apfIdToUse(-1, NEW)).toThrow(RangeError);
    expect(() => nextApfId(2 ** 32, OLD)).toThrow(RangeError);
  });
});

describe('kernel versions', () => {
  test.each([
    ['v5.8', [5, 8, 0]],
    ['2.6.38', [2, 6, 38]],
    ['6.7-rc1', [6, 7, 0]],
    ['5.15.0-91-generic', [5, 15, 0]],
    [' v4.19.316 ', [4, 19, 316]],
  ] as const)('parse %s', (s, v) => {
    expect(parseKernelVersion(s)).toEqual(v);
  });
  test('rejects junk', () => {
    expect(() => parseKernelVersion('5')).toThrow(RangeError);
    expect(() => parseKernelVersion('v5.x')).toThrow(RangeError);
    expect(() => parseKernelVersion('5.8x')).toThrow(RangeError);
  });
  test('compare', () => {
    expect(compareKernelVersions([2, 6, 38], [3, 0, 0])).toBeLessThan(0);
    expect(compareKernelVersions([5, 10, 0], [5, 8, 0])).toBeGreaterThan(0);
    expect(compareKernelVersions([5, 8, 0], [5, 8, 0])).toBe(0);
    expect(kernelAtLeast('5.10', '5.8')).toBe(true);
    expect(kernelAtLeast('5.7.19', 'v5.8')).toBe(false);
  });
});
