/**
 * Address and value types shared by every layer.
 *
 * Guest-physical and guest-virtual addresses are distinct branded numbers so that passing one
 * where the other is expected does not compile. Both are exact JavaScript integers:
 * - a GPA is below 2^52 (MAXPHYADDR 52);
 * - a GVA is a 48-bit linear address stored as its low 48 bits. Kernel-half addresses
 *   (0xffff8000_00000000 and up, sign-extended on real hardware) are stored without the
 *   sign extension, e.g. 0xffff888000000000 is stored as 0x888000000000. `formatGva` prints
 *   the canonical form.
 */

export type Gpa = number & { readonly __brand: 'Gpa' };
export type Gva = number & { readonly __brand: 'Gva' };
/** Guest frame number: GPA >> 12. */
export type Gfn = number & { readonly __brand: 'Gfn' };

/**
 * What guest-physical accessors take: a `Gpa`, or a plain number computed from one, but never a
 * `Gva` (a virtual address passed where a physical one is expected does not compile).
 */
export type PhysAddr = number & { readonly __brand?: 'Gpa' };
/** What frame-number parameters take: a `Gfn` or a plain number, never a `Gpa` or `Gva`. */
export type FrameNo = number & { readonly __brand?: 'Gfn' };

export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 1 << PAGE_SHIFT; // 4096
export const PAGE_MASK = PAGE_SIZE - 1;
/** Width of a linear address. */
export const VA_BITS = 48;
export const VA_LIMIT = 2 ** VA_BITS;
/** First address of the kernel half, as stored (low 48 bits of 0xffff800000000000). */
export const KERNEL_HALF = 2 ** 47;
export const PA_LIMIT = 2 ** 52;

export function gpa(n: number): Gpa {
  if (!Number.isSafeInteger(n) || n < 0 || n >= PA_LIMIT) throw new RangeError(`not a guest-physical address: ${n}`);
  return n as Gpa;
}

/** Accepts a canonical 64-bit address written as a bigint or a number/hex string below 2^48. */
export function gva(n: number | bigint): Gva {
  if (typeof n === 'bigint') {
    const lo = Number(n & 0xffff_ffff_ffffn);
    const hi = n >> 48n;
    const kernel = lo >= KERNEL_HALF;
    if (!(hi === (kernel ? 0xffffn : 0n))) throw new RangeError(`not a canonical virtual address: 0x${n.toString(16)}`);
    return lo as Gva;
  }
  if (!Number.isSafeInteger(n) || n < 0 || n >= VA_LIMIT) throw new RangeError(`not a 48-bit virtual address: ${n}`);
  return n as Gva;
}

export const gfnOf = (a: Gpa): Gfn => Math.floor(a / PAGE_SIZE) as Gfn;
export const gpaOfGfn = (f: Gfn): Gpa => (f * PAGE_SIZE) as Gpa;
export const pageOffset = (a: number): number => a % PAGE_SIZE;
export const isKernelGva = (a: Gva): boolean => a >= KERNEL_HALF;

/** Canonical 64-bit hex form of a stored GVA (kernel-half addresses get their 0xffff prefix back). */
export function formatGva(a: Gva): string {
  return isKernelGva(a) ? '0xffff' + a.toString(16).padStart(12, '0') : '0x' + a.toString(16);
}
export const formatGpa = (a: Gpa): string => '0x' + a.toString(16);
export const hex = (n: number | bigint): string => '0x' + n.toString(16);
