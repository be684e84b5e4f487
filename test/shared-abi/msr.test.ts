import fc from 'fast-check';
import {
  ASYNC_PF_ACK_READ_VALUE,
  ASYNC_PF_EN_ALWAYS_RESERVED,
  ASYNC_PF_EN_GPA_MASK,
  ASYNC_PF_EN_LOW_BITS,
  ASYNC_PF_EN_RESERVED_MASK,
  ASYNC_PF_INT_RESERVED_MASK,
  HOST_ERAS,
  KVM_ASYNC_PF_ACK_BIT,
  KVM_ASYNC_PF_DELIVERY_AS_INT,
  KVM_ASYNC_PF_DELIVERY_AS_PF_VMEXIT,
  KVM_ASYNC_PF_ENABLED,
  KVM_ASYNC_PF_SEND_ALWAYS,
  KVM_ASYNC_PF_VEC_MASK,
  KVM_MSR,
  MSR_KVM_ASYNC_PF_ACK,
  MSR_KVM_ASYNC_PF_EN,
  MSR_KVM_ASYNC_PF_INT,
  U64_MASK,
  X2APIC_MSR_LAST,
  X86_MSR,
  decodeAsyncPfAck,
  decodeAsyncPfEn,
  decodeAsyncPfInt,
  encodeAsyncPfEn,
  encodeAsyncPfInt,
  hostEraFor,
  isU64,
  isX2apicMsr,
  reservedMaskFor,
} from '../../shared-abi/msr';

describe('MSR indices (spec §1.1)', () => {
  test('async PF MSRs', () => {
    expect(MSR_KVM_ASYNC_PF_EN).toBe(0x4b564d02);
    expect(MSR_KVM_ASYNC_PF_INT).toBe(0x4b564d06);
    expect(MSR_KVM_ASYNC_PF_ACK).toBe(0x4b564d07);
  });
  test('KVM MSR table, neighbours included', () => {
    expect(KVM_MSR).toEqual({
      WALL_CLOCK_NEW: 0x4b564d00,
      SYSTEM_TIME_NEW: 0x4b564d01,
      ASYNC_PF_EN: 0x4b564d02,
      STEAL_TIME: 0x4b564d03,
      PV_EOI_EN: 0x4b564d04,
      POLL_CONTROL: 0x4b564d05,
      ASYNC_PF_INT: 0x4b564d06,
      ASYNC_PF_ACK: 0x4b564d07,
      MIGRATION_CONTROL: 0x4b564d08,
    });
  });
  test('architectural x86 MSRs', () => {
    expect(X86_MSR).toEqual({
      IA32_APIC_BASE: 0x1b,
      IA32_TSC_DEADLINE: 0x6e0,
      X2APIC_BASE: 0x800,
      X2APIC_TPR: 0x808,
      X2APIC_EOI: 0x80b,
      X2APIC_SPIV: 0x80f,
      X2APIC_ISR0: 0x810,
      X2APIC_IRR0: 0x820,
      X2APIC_ICR: 0x830,
      X2APIC_LVT_TIMER: 0x832,
    });
    expect(X2APIC_MSR_LAST).toBe(0x8ff);
    expect(isX2apicMsr(0x800)).toBe(true);
    expect(isX2apicMsr(0x8ff)).toBe(true);
    expect(isX2apicMsr(0x7ff)).toBe(false);
    expect(isX2apicMsr(0x900)).toBe(false);
    expect(isX2apicMsr(MSR_KVM_ASYNC_PF_EN)).toBe(false);
  });
});

describe('MSR_KVM_ASYNC_PF_EN bits and masks (spec §1.2)', () => {
  test('flag bits', () => {
    expect(KVM_ASYNC_PF_ENABLED).toBe(0x1n);
    expect(KVM_ASYNC_PF_SEND_ALWAYS).toBe(0x2n);
    expect(KVM_ASYNC_PF_DELIVERY_AS_PF_VMEXIT).toBe(0x4n);
    expect(KVM_ASYNC_PF_DELIVERY_AS_INT).toBe(0x8n);
  });
  test('address and reserved masks', () => {
    expect(U64_MASK).toBe(0xffffffffffffffffn);
    expect(ASYNC_PF_EN_LOW_BITS).toBe(0x3fn);
    expect(ASYNC_PF_EN_GPA_MASK).toBe(0xffffffffffffffc0n);
    expect(ASYNC_PF_EN_ALWAYS_RESERVED).toBe(0x30n);
    expect(HOST_ERAS).toEqual(['v2.6.38', 'v4.13', 'v5.8']);
    expect(ASYNC_PF_EN_RESERVED_MASK).toEqual({ 'v2.6.38': 0x3cn, 'v4.13': 0x38n, 'v5.8': 0x30n });
    expect(reservedMaskFor('v2.6.38')).toBe(0x3cn);
    expect(reservedMaskFor('v4.13')).toBe(0x38n);
    expect(reservedMaskFor('v5.8')).toBe(0x30n);
  });
  test.each([
    ['2.6.38', 'v2.6.38'],
    ['v3.10', 'v2.6.38'],
    ['4.12.14', 'v2.6.38'],
    ['v4.13', 'v4.13'],
    ['4.19.0-rc1', 'v4.13'],
    ['5.7.19', 'v4.13'],
    ['v5.8', 'v5.8'],
    ['6.15', 'v5.8'],
  ] as const)('hostEraFor(%s) = %s', (v, era) => {
    expect(hostEraFor(v)).toBe(era);
  });
  test('hostEraFor rejects kernels without async PF', () => {
    expect(() => hostEraFor('2.6.37')).toThrow(RangeError);
    expect(() => hostEraFor('banana')).toThrow(RangeError);
  });
  test('decode a typical v5.9+ guest write', () => {
    const v = 0x1_2345_6780n | 0x1n | 0x8n;
    expect(decodeAsyncPfEn(v)).toEqual({
      enabled: true,
      sendAlways: false,
      deliveryAsPfVmexit: false,
      deliveryAsInt: true,
      reservedBits: 0n,
      gpa: 0x1_2345_6780,
    });
  });
  test('decode uses data & ~0x3f for the address', () => {
    expect(decodeAsyncPfEn(0x1000n | 0x3fn).gpa).toBe(0x1000);
    expect(decodeAsyncPfEn(0x7fn).gpa).toBe(0x40);
  });
  test('reserved bits depend on the era', () => {
    expect(decodeAsyncPfEn(0x1000n | 0x4n, 'v2.6.38').reservedBits).toBe(0x4n);
    expect(decodeAsyncPfEn(0x1000n | 0x4n, 'v4.13').reservedBits).toBe(0n);
    expect(decodeAsyncPfEn(0x1000n | 0x8n, 'v4.13').reservedBits).toBe(0x8n);
    expect(decodeAsyncPfEn(0x1000n | 0x8n, 'v5.8').reservedBits).toBe(0n);
    expect(decodeAsyncPfEn(0x1000n | 0x10n).reservedBits).toBe(0x10n);
    expect(decodeAsyncPfEn(0x1000n | 0x3fn, 'v2.6.38').reservedBits).toBe(0x3cn);
    const d = decodeAsyncPfEn(0x1000n | 0xfn, 'v2.6.38');
    expect([d.enabled, d.sendAlways, d.deliveryAsPfVmexit, d.deliveryAsInt]).toEqual([true, true, true, true]);
  });
  test('encode', () => {
    expect(encodeAsyncPfEn({ enabled: true, gpa: 0x1000 })).toBe(0x1001n);
    expect(encodeAsyncPfEn({ enabled: true, sendAlways: true, deliveryAsPfVmexit: true, deliveryAsInt: true, gpa: 0x40 })).toBe(0x4fn);
    expect(encodeAsyncPfEn({ enabled: false, gpa: 0 })).toBe(0n);
    expect(encodeAsyncPfEn({ enabled: true, gpa: 0x2000, reservedBits: 0x30n })).toBe(0x2031n);
  });
  test('encode rejects bad input', () => {
    expect(() => encodeAsyncPfEn({ enabled: true, gpa: 0x1020 })).toThrow(RangeError);
    expect(() => encodeAsyncPfEn({ enabled: true, gpa: -64 })).toThrow(RangeError);
    expect(() => encodeAsyncPfEn({ enabled: true, gpa: 2 ** 53 + 64 })).toThrow(RangeError);
    expect(() => encodeAsyncPfEn({ enabled: true, gpa: 0, reservedBits: 0x40n })).toThrow(RangeError);
    expect(() => encodeAsyncPfEn({ enabled: true, gpa: 0, reservedBits: 0x1n })).toThrow(RangeError);
  });
  test('decode rejects values outside u64', () => {
    expect(() => decodeAsyncPfEn(-1n)).toThrow(RangeError);
    expect(() => decodeAsyncPfEn(1n << 64n)).toThrow(RangeError);
    expect(isU64(U64_MASK)).toBe(true);
    expect(isU64(U64_MASK + 1n)).toBe(false);
  });
  test('round trip: encode(decode(v)) === v for every era (addresses below 2^52)', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 52n) - 1n }), fc.constantFrom(...HOST_ERAS), (v, era) => {
        expect(encodeAsyncPfEn(decodeAsyncPfEn(v, era))).toBe(v);
      }),
    );
  });
  test('round trip: decode(encode(f)) returns the fields', () => {
    fc.assert(
      fc.property(
        fc.record({
          enabled: fc.boolean(),
          sendAlways: fc.boolean(),
          deliveryAsPfVmexit: fc.boolean(),
          deliveryAsInt: fc.boolean(),
          reservedBits: fc.constantFrom(0n, 0x10n, 0x20n, 0x30n),
          gpa: fc.integer({ min: 0, max: 2 ** 46 - 1 }).map((n) => n * 64),
        }),
        (f) => {
          expect(decodeAsyncPfEn(encodeAsyncPfEn(f), 'v5.8')).toEqual(f);
        },
      ),
    );
  });
  test('high address bits decode (bits 63:6)', () => {
    const d = decodeAsyncPfEn(U64_MASK);
    expect(d.reservedBits).toBe(0x30n);
    expect(d.gpa).toBe(Number(0xffffffffffffffc0n));
  });
});

describe('MSR_KVM_ASYNC_PF_INT and _ACK (spec §1.3)', () => {
  test('masks', () => {
    expect(KVM_ASYNC_PF_VEC_MASK).toBe(0xffn);
    expect(ASYNC_PF_INT_RESERVED_MASK).toBe(0xffffffffffffff00n);
    expect(KVM_ASYNC_PF_ACK_BIT).toBe(1n);
    expect(ASYNC_PF_ACK_READ_VALUE).toBe(0n);
  });
  test('INT decode/encode', () => {
    expect(decodeAsyncPfInt(0xf3n)).toEqual({ vector: 0xf3, reservedBits: 0n });
    expect(decodeAsyncPfInt(0x1f3n)).toEqual({ vector: 0xf3, reservedBits: 0x100n });
    expect(decodeAsyncPfInt(0xffffffffffffff00n)).toEqual({ vector: 0, reservedBits: 0xffffffffffffff00n });
    expect(encodeAsyncPfInt(0xf3)).toBe(0xf3n);
    expect(encodeAsyncPfInt(0)).toBe(0n);
    expect(encodeAsyncPfInt(255)).toBe(0xffn);
    expect(() => encodeAsyncPfInt(256)).toThrow(RangeError);
    expect(() => encodeAsyncPfInt(-1)).toThrow(RangeError);
    expect(() => encodeAsyncPfInt(1.5)).toThrow(RangeError);
    expect(() => decodeAsyncPfInt(1n << 64n)).toThrow(RangeError);
  });
  test('INT round trip for every vector, with reserved bits', () => {
    for (let vec = 0; vec < 256; vec++) expect(decodeAsyncPfInt(encodeAsyncPfInt(vec))).toEqual({ vector: vec, reservedBits: 0n });
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: U64_MASK }), (v) => {
        const d = decodeAsyncPfInt(v);
        expect(encodeAsyncPfInt(d.vector) | d.reservedBits).toBe(v);
      }),
    );
  });
  test('ACK: only bit 0 counts', () => {
    expect(decodeAsyncPfAck(1n)).toEqual({ ack: true });
    expect(decodeAsyncPfAck(0n)).toEqual({ ack: false });
    expect(decodeAsyncPfAck(2n)).toEqual({ ack: false });
    expect(decodeAsyncPfAck(0xffffffffffffffffn)).toEqual({ ack: true });
    expect(() => decodeAsyncPfAck(-1n)).toThrow(RangeError);
  });
});
