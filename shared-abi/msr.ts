/**
 * MSR indices and the encodings of the three async-PF MSRs (spec §1.1–§1.3).
 *
 * MSR values are 64-bit, so every MSR value in this project is a `bigint` in [0, 2^64).
 * MSR indices are 32-bit and are plain `number`s.
 */

import { compareKernelVersions, parseKernelVersion } from './apf';

// ---------------------------------------------------------------------------------------------
// Indices
// ---------------------------------------------------------------------------------------------

/** spec §1.1: KVM paravirtual MSR indices (range 0x4b564dxx); neighbours of the APF MSRs included for context. */
export const KVM_MSR = {
  WALL_CLOCK_NEW: 0x4b564d00,
  SYSTEM_TIME_NEW: 0x4b564d01,
  ASYNC_PF_EN: 0x4b564d02,
  STEAL_TIME: 0x4b564d03,
  PV_EOI_EN: 0x4b564d04,
  POLL_CONTROL: 0x4b564d05,
  ASYNC_PF_INT: 0x4b564d06,
  ASYNC_PF_ACK: 0x4b564d07,
  MIGRATION_CONTROL: 0x4b564d08,
} as const;

/** spec §1.1: MSR_KVM_ASYNC_PF_EN (since v2.6.38). */
export const MSR_KVM_ASYNC_PF_EN = KVM_MSR.ASYNC_PF_EN;
/** spec §1.1: MSR_KVM_ASYNC_PF_INT (v5.8+ hosts). */
export const MSR_KVM_ASYNC_PF_INT = KVM_MSR.ASYNC_PF_INT;
/** spec §1.1: MSR_KVM_ASYNC_PF_ACK (v5.8+ hosts). */
export const MSR_KVM_ASYNC_PF_ACK = KVM_MSR.ASYNC_PF_ACK;

/**
 * Architectural x86 MSRs the simulation uses (LAPIC base, TSC deadline, x2APIC registers).
 * Not part of the APF spec: these are Intel SDM facts (x2APIC MSR = 0x800 + (xAPIC offset >> 4)).
 */
export const X86_MSR = {
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
} as const;

/** Architectural x86 (not in the spec): highest x2APIC MSR index of the 0x800–0x8ff range. */
export const X2APIC_MSR_LAST = 0x8ff;

/** Architectural x86 (not in the spec): whether an MSR index falls in the x2APIC range 0x800–0x8ff. */
export const isX2apicMsr = (index: number): boolean => index >= X86_MSR.X2APIC_BASE && index <= X2APIC_MSR_LAST;

// ---------------------------------------------------------------------------------------------
// 64-bit helpers
// ---------------------------------------------------------------------------------------------

/** spec §1.2: all-ones 64-bit value (MSR values are u64). */
export const U64_MASK = 0xffff_ffff_ffff_ffffn;

/** spec §1.2: whether a bigint is a valid 64-bit MSR value. */
export const isU64 = (v: bigint): boolean => v >= 0n && v <= U64_MASK;

function assertU64(v: bigint, what: string): void {
  if (!isU64(v)) throw new RangeError(`${what}: not a 64-bit MSR value: ${v}`);
}

// ---------------------------------------------------------------------------------------------
// MSR_KVM_ASYNC_PF_EN
// ---------------------------------------------------------------------------------------------

/** spec §1.2: bit 0, APF enabled for this vCPU. */
export const KVM_ASYNC_PF_ENABLED = 1n << 0n;
/** spec §1.2: bit 1, "not present" may be injected while the guest runs at CPL 0. */
export const KVM_ASYNC_PF_SEND_ALWAYS = 1n << 1n;
/** spec §1.2: bit 2, L1 accepts APF as a #PF VM-exit while running L2 (v4.13+). */
export const KVM_ASYNC_PF_DELIVERY_AS_PF_VMEXIT = 1n << 2n;
/** spec §1.2: bit 3, "page ready" delivered as an interrupt (v5.8+ hosts). */
export const KVM_ASYNC_PF_DELIVERY_AS_INT = 1n << 3n;

/** spec §1.2: low bits that are not part of the area's address (the host uses `data & ~0x3f`). */
export const ASYNC_PF_EN_LOW_BITS = 0x3fn;
/** spec §1.2: bits 63:6, the guest-physical address of the shared area (64-byte aligned). */
export const ASYNC_PF_EN_GPA_MASK = U64_MASK & ~ASYNC_PF_EN_LOW_BITS;
/** spec §1.2: bits 4–5, reserved in every host era. */
export const ASYNC_PF_EN_ALWAYS_RESERVED = 0x30n;

/** spec §1.2: host eras that differ in the EN reserved-bit check, named by their first version. */
export type HostEra = 'v2.6.38' | 'v4.13' | 'v5.8';

/** spec §1.2: all host eras, oldest first. */
export const HOST_ERAS = ['v2.6.38', 'v4.13', 'v5.8'] as const satisfies readonly HostEra[];

/**
 * spec §1.2: EN reserved-bit mask the host checks (set bit → #GP), per era:
 * v2.6.38–v4.12 bits 2:5, v4.13–v5.7 bits 3:5, v5.8+ bits 4:5.
 */
export const ASYNC_PF_EN_RESERVED_MASK: Readonly<Record<HostEra, bigint>> = {
  'v2.6.38': 0x3cn,
  'v4.13': 0x38n,
  'v5.8': 0x30n,
};

/** spec §1.2: the EN reserved-bit mask for a host era. */
export const reservedMaskFor = (era: HostEra): bigint => ASYNC_PF_EN_RESERVED_MASK[era];

/**
 * spec §1.2: host era of a kernel version string ('v4.19', '5.8.0-rc1', ...). Boundaries are the
 * spec's table (v4.13 nested delivery, v5.8 interrupt delivery); APF does not exist before v2.6.38.
 */
export function hostEraFor(version: string): HostEra {
  const v = parseKernelVersion(version);
  if (compareKernelVersions(v, [2, 6, 38]) < 0) throw new RangeError(`async PF does not exist before v2.6.38: ${version}`);
  if (compareKernelVersions(v, [4, 13, 0]) < 0) return 'v2.6.38';
  if (compareKernelVersions(v, [5, 8, 0]) < 0) return 'v4.13';
  return 'v5.8';
}

/** spec §1.2: decoded MSR_KVM_ASYNC_PF_EN value. */
export interface AsyncPfEn {
  enabled: boolean;
  sendAlways: boolean;
  deliveryAsPfVmexit: boolean;
  deliveryAsInt: boolean;
  /** The bits of the value that the era's mask marks reserved (0n for a valid write). */
  reservedBits: bigint;
  /** `data & ~0x3f` as a number; exact below 2^53 (a larger address is beyond any guest's memory anyway). */
  gpa: number;
}

/**
 * spec §1.2: decode an EN value. The four booleans are the raw bits whatever the era; `era`
 * (default v5.8) only decides which bits are reported in `reservedBits`.
 */
export function decodeAsyncPfEn(v: bigint, era: HostEra = 'v5.8'): AsyncPfEn {
  assertU64(v, 'MSR_KVM_ASYNC_PF_EN');
  return {
    enabled: (v & KVM_ASYNC_PF_ENABLED) !== 0n,
    sendAlways: (v & KVM_ASYNC_PF_SEND_ALWAYS) !== 0n,
    deliveryAsPfVmexit: (v & KVM_ASYNC_PF_DELIVERY_AS_PF_VMEXIT) !== 0n,
    deliveryAsInt: (v & KVM_ASYNC_PF_DELIVERY_AS_INT) !== 0n,
    reservedBits: v & reservedMaskFor(era),
    gpa: Number(v & ASYNC_PF_EN_GPA_MASK),
  };
}

/** spec §1.2: fields for `encodeAsyncPfEn`; omitted flags are false, omitted `reservedBits` is 0n. */
export interface AsyncPfEnInput {
  enabled: boolean;
  sendAlways?: boolean;
  deliveryAsPfVmexit?: boolean;
  deliveryAsInt?: boolean;
  /** Bits among 2:5 to set on purpose (to model a guest writing reserved bits). */
  reservedBits?: bigint;
  /** Guest-physical address of the area; must be a 64-byte aligned safe integer. */
  gpa: number;
}

/** spec §1.2: encode an EN value (gpa in bits 63:6, flags in bits 3:0). */
export function encodeAsyncPfEn(f: AsyncPfEnInput): bigint {
  if (!Number.isSafeInteger(f.gpa) || f.gpa < 0 || f.gpa % 64 !== 0) {
    throw new RangeError(`MSR_KVM_ASYNC_PF_EN: area address must be a 64-byte aligned guest-physical address: ${f.gpa}`);
  }
  const reserved = f.reservedBits ?? 0n;
  if ((reserved & ~ASYNC_PF_EN_RESERVED_MASK['v2.6.38']) !== 0n) {
    throw new RangeError(`MSR_KVM_ASYNC_PF_EN: reservedBits must lie within bits 2:5: 0x${reserved.toString(16)}`);
  }
  let v = BigInt(f.gpa) | reserved;
  if (f.enabled) v |= KVM_ASYNC_PF_ENABLED;
  if (f.sendAlways === true) v |= KVM_ASYNC_PF_SEND_ALWAYS;
  if (f.deliveryAsPfVmexit === true) v |= KVM_ASYNC_PF_DELIVERY_AS_PF_VMEXIT;
  if (f.deliveryAsInt === true) v |= KVM_ASYNC_PF_DELIVERY_AS_INT;
  assertU64(v, 'MSR_KVM_ASYNC_PF_EN');
  return v;
}

// ---------------------------------------------------------------------------------------------
// MSR_KVM_ASYNC_PF_INT and MSR_KVM_ASYNC_PF_ACK
// ---------------------------------------------------------------------------------------------

/** spec §1.3: KVM_ASYNC_PF_VEC_MASK, bits 7:0 of MSR_KVM_ASYNC_PF_INT. */
export const KVM_ASYNC_PF_VEC_MASK = 0xffn;
/** spec §1.3: bits 63:8 of MSR_KVM_ASYNC_PF_INT are reserved (set → #GP). */
export const ASYNC_PF_INT_RESERVED_MASK = U64_MASK & ~KVM_ASYNC_PF_VEC_MASK;

/** spec §1.3: decoded MSR_KVM_ASYNC_PF_INT value (the host accepts any vector 0–255). */
export interface AsyncPfInt {
  vector: number;
  reservedBits: bigint;
}

/** spec §1.3: decode an INT value into its vector and reserved bits 63:8. */
export function decodeAsyncPfInt(v: bigint): AsyncPfInt {
  assertU64(v, 'MSR_KVM_ASYNC_PF_INT');
  return { vector: Number(v & KVM_ASYNC_PF_VEC_MASK), reservedBits: v & ASYNC_PF_INT_RESERVED_MASK };
}

/** spec §1.3: encode an INT value for a vector 0–255. */
export function encodeAsyncPfInt(vector: number): bigint {
  if (!Number.isInteger(vector) || vector < 0 || vector > 0xff) throw new RangeError(`MSR_KVM_ASYNC_PF_INT: not a vector: ${vector}`);
  return BigInt(vector);
}

/** spec §1.3: the only meaningful bit of MSR_KVM_ASYNC_PF_ACK (other bits are ignored, not reserved). */
export const KVM_ASYNC_PF_ACK_BIT = 1n;
/** spec §1.3: reading MSR_KVM_ASYNC_PF_ACK returns 0. */
export const ASYNC_PF_ACK_READ_VALUE = 0n;

/** spec §1.3: decoded MSR_KVM_ASYNC_PF_ACK write. */
export interface AsyncPfAck {
  ack: boolean;
}

/** spec §1.3: decode an ACK write; only bit 0 counts. */
export function decodeAsyncPfAck(v: bigint): AsyncPfAck {
  assertU64(v, 'MSR_KVM_ASYNC_PF_ACK');
  return { ack: (v & KVM_ASYNC_PF_ACK_BIT) !== 0n };
}
