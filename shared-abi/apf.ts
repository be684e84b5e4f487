/**
 * Async-PF protocol values: reasons/flags, the token format and its allocation rule, the
 * per-vCPU limits and hash sizes (spec §1.5, §1.6, §3.1a, §4.1), and kernel version strings.
 */

import { hash32 } from './hash';

// ---------------------------------------------------------------------------------------------
// Reasons / flags (written at offset 0 of the shared area)
// ---------------------------------------------------------------------------------------------

/** spec §1.5: KVM_PV_REASON_PAGE_NOT_PRESENT, written by every host at offset 0. */
export const KVM_PV_REASON_PAGE_NOT_PRESENT = 1;
/** spec §1.5: KVM_PV_REASON_PAGE_READY, written at offset 0 only by hosts ≤ v5.7. */
export const KVM_PV_REASON_PAGE_READY = 2;

/** spec §1.5: the reason values by name (0 = nothing pending, the guest's reset value). */
export const KVM_PV_REASON = { NONE: 0, PAGE_NOT_PRESENT: 1, PAGE_READY: 2 } as const;

/** spec §1.5: a value of the offset-0 `reason`/`flags` field. */
export type KvmPvReason = (typeof KVM_PV_REASON)[keyof typeof KVM_PV_REASON];

// ---------------------------------------------------------------------------------------------
// Tokens
// ---------------------------------------------------------------------------------------------

/** spec §1.6: the per-vCPU id sits above bit 12 of a token. */
export const APF_TOKEN_ID_SHIFT = 12;
/**
 * spec §1.6: the low 12 bits of a token hold the vCPU id. The host ORs the whole vcpu_id in, with
 * no mask (checked in every era's kvm_arch_setup_async_pf / alloc_apf_token), so the bits of a
 * vCPU id of 4096 or more land in the counter field: `tokenIdAliases`.
 */
export const APF_TOKEN_VCPU_MASK = 0xfff;
/** spec §1.6: ids are u32 counters; only the low 20 bits survive in a token. */
export const APF_ID_PERIOD = 2 ** 20;
/** spec §1.6: the broadcast "wake all" token (~0 as u32). */
export const KVM_APF_WAKE_ALL_TOKEN = 0xffffffff;

function assertU32(n: number, what: string): void {
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new RangeError(`${what}: not a u32: ${n}`);
}

/** spec §1.6: token = (id << 12) OR vcpuId in u32 arithmetic (OR, not add; the vCPU id is not masked). */
export function makeToken(id: number, vcpuId: number): number {
  assertU32(id, 'apf id');
  assertU32(vcpuId, 'vcpu id');
  return ((id << APF_TOKEN_ID_SHIFT) | vcpuId) >>> 0;
}

/** spec §1.6: the id part of a token (its bits 31:12). */
export const tokenId = (token: number): number => token >>> APF_TOKEN_ID_SHIFT;
/** spec §1.6: the vCPU part of a token (its bits 11:0); ambiguous for vCPU ids of 4096 and more (`tokenIdAliases`). */
export const tokenVcpu = (token: number): number => (token & APF_TOKEN_VCPU_MASK) >>> 0;

/** spec §1.6: token allocation rule; `avoidZero` is the Feb 2022 (~v5.17/5.18) "never token id 0" rule. */
export interface ApfIdRule {
  avoidZero: boolean;
}

/**
 * spec §1.6: the id that goes into the token allocated from counter value `id`. With avoidZero,
 * an id whose low 20 bits are 0 (`(id << 12) == 0` in u32) is replaced by 1.
 */
export function apfIdToUse(id: number, rule: ApfIdRule): number {
  assertU32(id, 'apf id');
  return rule.avoidZero && (id << APF_TOKEN_ID_SHIFT) >>> 0 === 0 ? 1 : id;
}

/**
 * spec §1.6: the counter value stored after one allocation from counter `id` (post-increment in
 * u32). Pre-2022 (avoidZero false) this is plain `id + 1` mod 2^32.
 */
export const nextApfId = (id: number, rule: ApfIdRule): number => (apfIdToUse(id, rule) + 1) >>> 0;

/** spec §1.6: one token allocation: the token handed out and the counter value afterwards. */
export interface ApfTokenAlloc {
  token: number;
  nextId: number;
}

/** spec §1.6: allocate a token from counter `id` for `vcpuId` (alloc_apf_token semantics). */
export function allocApfToken(id: number, vcpuId: number, rule: ApfIdRule): ApfTokenAlloc {
  const use = apfIdToUse(id, rule);
  return { token: makeToken(use, vcpuId), nextId: (use + 1) >>> 0 };
}

/**
 * Whether a vCPU id reaches into the counter field of its tokens (bits 12 and up): then the token
 * of counter value `c` is `(c | (vcpuId >> 12)) << 12 | (vcpuId & 0xfff)`, so consecutive counter
 * values can give the same token on one vCPU, and the tokens of two vCPUs whose ids differ by a
 * multiple of 4096 overlap.
 */
export const tokenIdAliases = (vcpuId: number): boolean => vcpuId >>> APF_TOKEN_ID_SHIFT !== 0;

// ---------------------------------------------------------------------------------------------
// vCPU ids
// ---------------------------------------------------------------------------------------------

/**
 * How many vCPU ids x86 KVM accepts (KVM_CREATE_VCPU takes ids 0..n-1) in each host era. The check
 * in kvm_vm_ioctl_create_vcpu compares the id with:
 * - `v3.0`: KVM_MAX_VCPUS, 64 on x86 in v3.0 (raised to 254 in v3.1);
 * - `v4.19`: KVM_MAX_VCPU_ID, 1023 on x86 (a count despite its name; v4.8 to v5.15);
 * - `v6.6`: KVM_MAX_VCPU_IDS = KVM_MAX_VCPUS (1024) x KVM_VCPU_ID_RATIO (4), renamed and raised in
 *   v5.16: x86 vCPU ids are x2APIC ids, which carry topology gaps;
 * - `maxsmp`: the same product with CONFIG_KVM_MAX_NR_VCPUS = 4096 (Kconfig knob added after v6.6,
 *   4096 the default on MAXSMP builds, 1024 otherwise): ids up to 16383, the only configuration in
 *   which ids of 4096 and more (`tokenIdAliases`) exist.
 */
export const KVM_MAX_VCPU_IDS = { 'v3.0': 64, 'v4.19': 1023, 'v6.6': 4096, maxsmp: 16384 } as const;

// ---------------------------------------------------------------------------------------------
// Limits and hashes
// ---------------------------------------------------------------------------------------------

/** spec §1.6: maximum outstanding async faults per vCPU on x86. */
export const ASYNC_PF_PER_VCPU = 64;

/** spec §1.6/§3.1a: the host's per-vCPU gfn hash uses 6 bits of hash_32. */
export const APF_GFN_HASH_BITS = 6;
/** spec §1.6/§3.1a: number of gfn hash slots (2^6). */
export const APF_GFN_HASH_SLOTS = 64;
/** spec §3.1a: an empty gfn slot holds all-ones (u64 ~0). */
export const APF_GFN_EMPTY = 0xffff_ffff_ffff_ffffn;

/** spec §3.1a: home slot of a gfn: hash_32 of its low 32 bits, 6 bits. */
export const apfGfnHashSlot = (gfn: number): number => hash32(gfn >>> 0, APF_GFN_HASH_BITS);
/** spec §3.1a: the next probe slot after `slot` (linear, wraps at 64). */
export const apfGfnNextSlot = (slot: number): number => (slot + 1) & (APF_GFN_HASH_SLOTS - 1);

/** spec §1.6/§4.1: KVM_TASK_SLEEP_HASHBITS, the guest sleeper hash width. */
export const KVM_TASK_SLEEP_HASHBITS = 8;
/** spec §1.6/§4.1: number of guest sleeper buckets (2^8). */
export const KVM_TASK_SLEEP_HASHSIZE = 256;
/** spec §1.6/§4.1: the guest sleeper bucket of a token: hash_32(token, 8). */
export const sleeperBucket = (token: number): number => hash32(token, KVM_TASK_SLEEP_HASHBITS);

// ---------------------------------------------------------------------------------------------
// Kernel versions
// ---------------------------------------------------------------------------------------------

/** spec §0: a kernel version as [major, minor, patch]. */
export type KernelVersion = readonly [number, number, number];

/** spec §0: parse 'v5.8', '2.6.38', '6.7-rc1', '5.15.0-91-generic' (suffixes ignored, patch defaults to 0). */
export function parseKernelVersion(version: string): KernelVersion {
  const m = /^v?(\d+)\.(\d+)(?:\.(\d+))?(?:$|[-+~_ ])/.exec(version.trim());
  if (!m) throw new RangeError(`not a kernel version: '${version}'`);
  return [Number(m[1]), Number(m[2]), Number(m[3] ?? 0)];
}

/** spec §0: compare two kernel versions (negative, 0, positive). */
export function compareKernelVersions(a: KernelVersion, b: KernelVersion): number {
  return a[0] - b[0] || a[1] - b[1] || a[2] - b[2];
}

/** spec §0: whether `version` is at least `min` (both strings). */
export const kernelAtLeast = (version: string, min: string): boolean =>
  compareKernelVersions(parseKernelVersion(version), parseKernelVersion(min)) >= 0;
