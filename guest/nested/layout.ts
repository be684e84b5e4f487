/**
 * Where L1 keeps what its nested guests need, in its own guest-physical memory. Planned from the
 * top of memory downwards, one region per L2 guest in order:
 *
 * | page         | what                                                                   |
 * |--------------|------------------------------------------------------------------------|
 * | +0           | the vmcs12 (VMPTRLD operand; L0 keeps a cached copy)                    |
 * | +1           | the MSR bitmap the vmcs12 points to (a nested state page)               |
 * | +2           | the virtual-APIC page the vmcs12 points to (a nested state page)        |
 * | +3 …         | L2's memory: L2 guest-physical `x` is L1 guest-physical `memBase + x`   |
 *
 * The plan depends only on the memory size and the L2 specs, so the harness can configure host
 * backing for these frames before the machine exists. L1's own kernel layout (guest/layout.ts)
 * grows upwards from low memory; the hypervisor checks that the two do not meet.
 */
import { PAGE_SIZE } from '../../shared-abi/addr';
import { DEFAULT_L2_PAGES, type L2Spec } from './program';

/** Pages per L2 before its memory: vmcs12, MSR bitmap, virtual-APIC page. */
export const L2_STATE_PAGES = 3;

export interface L2Region {
  readonly name: string;
  readonly vmcs12: number;
  readonly msrBitmap: number;
  readonly vapic: number;
  /** First L1 guest-physical address of L2's memory. */
  readonly memBase: number;
  /** L2 memory size in bytes. */
  readonly memSize: number;
}

export class NestedLayoutError extends Error {
  override name = 'NestedLayoutError';
}

/** The regions of `specs`, in order, from the top of `memoryBytes` down. */
export function planNested(memoryBytes: number, specs: readonly L2Spec[]): L2Region[] {
  let top = Math.floor(memoryBytes / PAGE_SIZE) * PAGE_SIZE;
  return specs.map((s) => {
    const pages = s.pages ?? DEFAULT_L2_PAGES;
    if (!Number.isSafeInteger(pages) || pages < 1) throw new NestedLayoutError(`L2 '${s.name}': memory of ${pages} pages`);
    const base = top - (L2_STATE_PAGES + pages) * PAGE_SIZE;
    if (base < 0) throw new NestedLayoutError(`L2 '${s.name}': guest memory too small for the nested guests`);
    top = base;
    return {
      name: s.name,
      vmcs12: base,
      msrBitmap: base + PAGE_SIZE,
      vapic: base + 2 * PAGE_SIZE,
      memBase: base + L2_STATE_PAGES * PAGE_SIZE,
      memSize: pages * PAGE_SIZE,
    };
  });
}

/** Lowest guest-physical address any region uses (memory size when there are none). */
export function nestedFloor(memoryBytes: number, regions: readonly L2Region[]): number {
  return regions.reduce((lo, r) => Math.min(lo, r.vmcs12), memoryBytes);
}

/** Guest frame of L2 `r`'s address `addr`. */
export const l2Gfn = (r: L2Region, addr: number): number => Math.floor((r.memBase + addr) / PAGE_SIZE);
