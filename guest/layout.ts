/**
 * The guest's physical memory layout and its boot loader.
 *
 * Like a VMM loading a kernel image, the loader writes guest memory directly, once, before any
 * vCPU runs: the page tables (a direct map of all physical memory in the kernel half, and one
 * address space per user `mm`) and zeroed per-CPU areas. After that every guest access goes
 * through instructions and the page-table walk of sim/cpu/mmu.ts.
 *
 * Physical layout (addresses are guest-physical):
 *
 * | range                  | what                                                              |
 * |------------------------|-------------------------------------------------------------------|
 * | 0x0000_0000            | page 0, never used                                                |
 * | 0x0000_1000-0xffff     | free; a page of it may hold the CPUs' entry stacks (`entryStack`)  |
 * | 0x0001_0000            | per-CPU `kvm_vcpu_pv_apf_data` areas, CPU n at +n*128 (64-aligned) |
 * | 0x0002_0000            | per-CPU kernel data (the private `async_pf_enabled` bool at +0)    |
 * | 0x0003_0000            | lock words (2 pages, 8 bytes each)                                 |
 * | 0x0004_0000            | the next kernel's APF areas (after kexec / kdump)                  |
 * | 0x0010_0000            | page tables (bump-allocated)                                       |
 * | after the page tables  | user pages, in task order, page order                              |
 *
 * Virtual layout: the direct map of physical memory starts at PAGE_OFFSET 0xffff888000000000
 * (stored as the 48-bit 0x888000000000, PML4 slot 273, as on Linux). User pages are wherever
 * the task spec puts them in the lower half, mapped P|RW|US.
 */
import { KERNEL_HALF, PAGE_SIZE, gva, type Gpa, type Gva } from '../shared-abi/addr';
import { PTE_P, PTE_RW, PTE_US } from '../shared-abi/arch';

/** Stored form of 0xffff888000000000, the base of the direct map. */
export const PAGE_OFFSET = 0x888000000000;

/** Bytes of the entry-stack page per CPU (`GuestKernelOptions.entryStack`): 64 CPUs fill one page. */
export const ENTRY_FRAME_BYTES = 64;
export const APF_AREA_BASE = 0x10000;
export const APF_AREA_STRIDE = 128;
export const PERCPU_BASE = 0x20000;
export const PERCPU_STRIDE = 64;
export const LOCK_BASE = 0x30000;
export const LOCK_PAGES = 16; // 0x30000-0x3ffff: up to 8192 locks (tasks and named spinlocks), below NEXT_KERNEL_APF_BASE
export const NEXT_KERNEL_APF_BASE = 0x40000;
export const PAGE_TABLE_BASE = 0x100000;
/** Most vCPUs the layout supports. */
export const MAX_GUEST_CPUS = 64;

/** The kernel-half virtual address of a physical address (the direct map). */
export const directMap = (gpa: number): Gva => (PAGE_OFFSET + gpa) as Gva;

/** One user address space: its page-table root and its pages. */
export interface AddressSpace {
  readonly name: string;
  readonly pml4: Gpa;
  /** GVA (page) -> GPA (page). */
  readonly pages: ReadonlyMap<number, number>;
}

/** The minimal memory the loader needs (sim/memory.ts's GuestMemory fits it). */
export interface LoaderMemory {
  readonly size: number;
  writeU32(gpa: number, v: number): void;
  readU32(gpa: number): number;
  /** Sets every byte of page `gfn` to `byte`. */
  fillPage(gfn: number, byte: number): void;
}

/** The user address spaces a layout maps, in the order their pages are allocated. */
export type UserSpaces = ReadonlyArray<{ readonly mm: string; readonly pages: readonly number[] }>;

/**
 * Where everything goes, decided without touching memory: the page-table budget, and the frame of
 * every user page. The kernel writes its page tables from it (`GuestLayout`), and a VMM that must
 * know which frame backs a task page before the kernel exists (the harness) reads the same plan.
 */
export class GuestLayoutPlan {
  /** GVA (page) -> GPA (page) per address space, in first-use order. */
  readonly mms = new Map<string, Map<number, number>>();
  readonly userPoolStart: number;
  readonly userPoolEnd: number;

  constructor(
    readonly memorySize: number,
    readonly cpus: number,
    readonly userSpaces: UserSpaces,
  ) {
    if (!Number.isInteger(cpus) || cpus < 1 || cpus > MAX_GUEST_CPUS) throw new RangeError(`guest layout: 1..${MAX_GUEST_CPUS} CPUs, got ${cpus}`);
    const userCount = new Set(userSpaces.flatMap((u) => u.pages.map((p) => `${u.mm}:${p}`))).size;
    // Page tables: direct map PTs + a few upper levels, plus per-mm tables (at most 3 + one PT per page).
    const memPages = Math.floor(memorySize / PAGE_SIZE);
    const ptBudget = Math.ceil(memPages / 512) + Math.ceil(memPages / (512 * 512)) + 4 + userSpaces.length * 4 + userCount;
    this.userPoolStart = PAGE_TABLE_BASE + ptBudget * PAGE_SIZE;
    const needed = this.userPoolStart + userCount * PAGE_SIZE;
    if (needed > memorySize) {
      throw new RangeError(`guest layout: ${memorySize} bytes of guest memory is too small (needs ${needed} for page tables and ${userCount} user pages)`);
    }
    let next = this.userPoolStart;
    for (const u of userSpaces) {
      let mm = this.mms.get(u.mm);
      if (mm === undefined) {
        mm = new Map();
        this.mms.set(u.mm, mm);
      }
      for (const p of u.pages) {
        if (p % PAGE_SIZE !== 0) throw new RangeError(`task page 0x${p.toString(16)} of '${u.mm}' is not page aligned`);
        if (p >= KERNEL_HALF) throw new RangeError(`task page 0x${p.toString(16)} of '${u.mm}' is not a user address`);
        if (mm.has(p)) continue;
        mm.set(p, next);
        next += PAGE_SIZE;
      }
    }
    this.userPoolEnd = next;
  }

  /** Guest-physical address of the user page at `page` (any GVA in the page) in address space `mm`. */
  userPageGpa(mm: string, page: number): Gpa | undefined {
    const pa = this.mms.get(mm)?.get(page - (page % PAGE_SIZE));
    return pa === undefined ? undefined : ((pa + (page % PAGE_SIZE)) as Gpa);
  }
}

/** Bits 12..31 of a page-table entry's address field, as a 32-bit word (the low word of the entry). */
const ADDR_LO = 0xffff_f000;
/** Bits 32..51 of the address field, in the entry's high word. */
const ADDR_HI = 0x000f_ffff;
const TWO32 = 0x1_0000_0000;
/** Bytes one leaf page table maps (512 pages). */
const LEAF_SPAN = 512 * PAGE_SIZE;

export class GuestLayout {
  readonly memorySize: number;
  readonly cpus: number;
  /** Page-table root of the kernel-only address space (init_mm). */
  readonly kernelPml4: Gpa;
  private next: number;
  private readonly pml4s = new Map<string, Gpa>();
  private lockNext = 0;
  private readonly lockIds = new Map<string, number>();

  /** Write the page tables of `plan` (planned for memory of this size). */
  constructor(
    private readonly mem: LoaderMemory,
    readonly plan: GuestLayoutPlan,
  ) {
    if (plan.memorySize !== mem.size) throw new RangeError(`guest layout: planned for ${plan.memorySize} bytes of guest memory, given ${mem.size}`);
    this.memorySize = mem.size;
    this.cpus = plan.cpus;
    this.next = PAGE_TABLE_BASE;
    this.kernelPml4 = this.allocTable();
    this.mapDirect(mem.size);
    const mapped = new Set<string>();
    for (const u of plan.userSpaces) {
      let pml4 = this.pml4s.get(u.mm);
      if (pml4 === undefined) {
        pml4 = this.allocTable();
        // Share the kernel half: copy the kernel PML4's upper entries.
        for (let i = 256; i < 512; i++) {
          const lo = mem.readU32(this.kernelPml4 + i * 8);
          const hi = mem.readU32(this.kernelPml4 + i * 8 + 4);
          if (lo !== 0 || hi !== 0) {
            mem.writeU32(pml4 + i * 8, lo);
            mem.writeU32(pml4 + i * 8 + 4, hi);
          }
        }
        this.pml4s.set(u.mm, pml4);
      }
      for (const p of u.pages) {
        const key = `${u.mm}:${p}`;
        if (mapped.has(key)) continue;
        mapped.add(key);
        this.map(pml4, p, plan.userPageGpa(u.mm, p)!, true);
      }
    }
  }

  /** Guest-physical address of CPU `cpu`'s kvm_vcpu_pv_apf_data (generation 1 = the next kernel after kexec). */
  apfAreaGpa(cpu: number, generation = 0): Gpa {
    return ((generation === 0 ? APF_AREA_BASE : NEXT_KERNEL_APF_BASE) + cpu * APF_AREA_STRIDE) as Gpa;
  }

  /** Guest-physical address of CPU `cpu`'s private kernel data. */
  percpuGpa(cpu: number): Gpa {
    return (PERCPU_BASE + cpu * PERCPU_STRIDE) as Gpa;
  }

  /** A lock word in kernel memory for the lock called `name` (allocated on first use). */
  lockGva(name: string): Gva {
    let id = this.lockIds.get(name);
    if (id === undefined) {
      id = this.lockNext++;
      if (id >= (LOCK_PAGES * PAGE_SIZE) / 8) throw new RangeError(`guest layout: more than ${(LOCK_PAGES * PAGE_SIZE) / 8} locks`);
      this.lockIds.set(name, id);
    }
    return directMap(LOCK_BASE + id * 8);
  }

  /** The address space called `name`, if any task uses it. */
  addressSpace(name: string): AddressSpace | undefined {
    const pml4 = this.pml4s.get(name);
    const pages = this.plan.mms.get(name);
    return pml4 === undefined || pages === undefined ? undefined : { name, pml4, pages };
  }

  /** Names of all user address spaces. */
  addressSpaces(): string[] {
    return [...this.pml4s.keys()];
  }

  /** Guest-physical address of the user page at `page` (page-aligned GVA) in address space `mm`. */
  userPageGpa(mm: string, page: number): Gpa | undefined {
    return this.plan.userPageGpa(mm, page);
  }

  /** First and end (exclusive) physical address of the user page pool. */
  get userPool(): { start: number; end: number } {
    return { start: this.plan.userPoolStart, end: this.plan.userPoolEnd };
  }

  /** Physical range holding page tables. */
  get pageTables(): { start: number; end: number } {
    return { start: PAGE_TABLE_BASE, end: this.next };
  }

  private allocTable(): Gpa {
    const pa = this.next;
    if (pa + PAGE_SIZE > this.plan.userPoolStart) throw new Error('guest layout: page-table budget exhausted');
    this.next += PAGE_SIZE;
    this.mem.fillPage(pa / PAGE_SIZE, 0);
    return pa as Gpa;
  }

  /** Writes the 64-bit entry at `at`: address `pa` (page aligned, below 2^52) with `flags` (below 4096). */
  private putEntry(at: number, pa: number, flags: number): void {
    this.mem.writeU32(at, ((pa & ADDR_LO) | flags) >>> 0);
    this.mem.writeU32(at + 4, Math.floor(pa / TWO32) & ADDR_HI);
  }

  /**
   * The direct map: every physical page at PAGE_OFFSET + pa. The same entries, written in the same
   * order, as calling `map` page by page; the upper levels are walked once per 2 MiB (one leaf
   * table), since every page of that range has the same upper entries.
   */
  private mapDirect(size: number): void {
    for (let pa = 0; pa < size; ) {
      this.map(this.kernelPml4, PAGE_OFFSET + pa, pa, false);
      const table = this.lastLeafTable;
      pa += PAGE_SIZE;
      for (; pa < size && (PAGE_OFFSET + pa) % LEAF_SPAN !== 0; pa += PAGE_SIZE) {
        const idx = Math.floor((PAGE_OFFSET + pa) / PAGE_SIZE) % 512;
        this.putEntry(table + idx * 8, pa, PTE_P | PTE_RW);
      }
    }
  }

  /** The leaf table the last `map` wrote into. */
  private lastLeafTable = 0;

  // Entries are read and written as two 32-bit words (plain numbers, no bigint per entry: the
  // direct map alone writes one leaf per page of guest memory, for every machine built).
  private map(pml4: number, va: number, pa: number, user: boolean): void {
    gva(va); // validates the 48-bit range
    let table = pml4;
    for (let shift = 39; shift >= 21; shift -= 9) {
      const idx = Math.floor(va / 2 ** shift) % 512;
      const at = table + idx * 8;
      const lo = this.mem.readU32(at);
      const hi = this.mem.readU32(at + 4);
      if (lo === 0 && hi === 0) {
        const t = this.allocTable();
        this.putEntry(at, t, PTE_P | PTE_RW | PTE_US);
        table = t;
      } else {
        table = (hi & ADDR_HI) * TWO32 + ((lo & ADDR_LO) >>> 0);
      }
    }
    const idx = Math.floor(va / PAGE_SIZE) % 512;
    this.lastLeafTable = table;
    this.putEntry(table + idx * 8, pa, PTE_P | PTE_RW | (user ? PTE_US : 0));
  }
}
