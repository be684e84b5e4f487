/**
 * The vCPU hardware model: instruction semantics, paging, EPT exits, event delivery and IRET,
 * and #GP -> #DF -> triple-fault escalation.
 */
import { type Gva, PAGE_SIZE } from '../../../shared-abi/addr';
import { CR0_PG, PFEC_PRESENT, PFEC_USER, PFEC_WRITE, PTE_P, PTE_RW, PTE_US, type GuestCode, type Insn, type InsnResult, type TrapFrame } from '../../../shared-abi/arch';
import { GuestMemory } from '../../../sim/memory';
import { recordingEmitter } from '../../support/emitter';
import { SLAT_MMIO, SLAT_VIOLATION } from '../../../sim/cpu/mmu';
import { STEP_BUSY, STEP_EXIT, STEP_FAULTED, STEP_RETIRED, Vcpu } from '../../../sim/cpu/vcpu';

type Handler = (frame: TrapFrame) => Insn[];

/** A guest that runs a flat list of instructions, with per-vector handlers that end in IRET. */
class ScriptGuest implements GuestCode {
  private stack: { insns: Insn[]; pc: number }[];
  readonly results: InsnResult[] = [];
  readonly frames: TrapFrame[] = [];
  readonly resets: string[] = [];
  constructor(main: Insn[], readonly handlers: Record<number, Handler> = {}) {
    this.stack = [{ insns: main, pc: 0 }];
  }
  private top() {
    const t = this.stack[this.stack.length - 1];
    if (!t) throw new Error('empty stack');
    return t;
  }
  fetch(): Insn {
    const t = this.top();
    return t.insns[t.pc] ?? { op: 'hlt' };
  }
  retire(r: InsnResult): void {
    const t = this.top();
    const insn = t.insns[t.pc];
    t.pc++;
    if (insn?.op === 'iret') this.stack.pop();
    else this.results.push(r);
  }
  vector(frame: TrapFrame): boolean {
    const vec = frame.event.kind === 'nmi' ? 2 : frame.event.kind === 'syscall' ? -1 : frame.event.vector;
    const h = this.handlers[vec];
    if (!h) return false;
    this.frames.push(frame);
    this.stack.push({ insns: [...h(frame), { op: 'iret', frame }], pc: 0 });
    return true;
  }
  reset(kind: string): void {
    this.resets.push(kind);
  }
  get depth(): number {
    return this.stack.length;
  }
}

interface Rig {
  mem: GuestMemory;
  cpu: Vcpu;
  mapped: Set<number>;
  /** Second-level remaps: guest frame -> host frame. */
  hfn: Map<number, number>;
  events: { event: string; fields?: Record<string, unknown> }[];
  clock: { now: number };
}

function rig(guest: GuestCode, memBytes = 64 * PAGE_SIZE): Rig {
  const mem = new GuestMemory(memBytes);
  const mapped = new Set<number>();
  const hfn = new Map<number, number>();
  for (let g = 0; g < memBytes / PAGE_SIZE; g++) mapped.add(g);
  const events: Rig['events'] = [];
  const clock = { now: 0 };
  const cpu = new Vcpu({
    id: 0,
    memory: mem,
    // Identity unless a test remaps a frame (`hfn`); frames beyond memory are not RAM.
    slat: { translate: (gfn) => (gfn >= memBytes / PAGE_SIZE ? SLAT_MMIO : !mapped.has(gfn) ? SLAT_VIOLATION : (hfn.get(gfn) ?? gfn)) },
    clock,
    trace: recordingEmitter((_src, _cpu, event, fields) => void events.push({ event, fields })),
  });
  cpu.attach(guest);
  return { mem, cpu, mapped, hfn, events, clock };
}

const va = (n: number) => n as Gva;

/** Identity-free 4-level tables: PML4 at page 1, PDPT 2, PD 3, PT 4. Maps va -> pa with flags. */
function buildTables(mem: GuestMemory, maps: { va: number; pa: number; flags: number }[]): number {
  const pml4 = 1 * PAGE_SIZE;
  const tables = [pml4, 2 * PAGE_SIZE, 3 * PAGE_SIZE, 4 * PAGE_SIZE];
  const upper = PTE_P | PTE_RW | PTE_US;
  for (const m of maps) {
    const idx = [39, 30, 21, 12].map((s) => Math.floor(m.va / 2 ** s) % 512);
    for (let level = 0; level < 3; level++) mem.writeU32(tables[level]! + idx[level]! * 8, tables[level + 1]! | upper);
    mem.writeU32(tables[3]! + idx[3]! * 8, (m.pa | m.flags) >>> 0);
  }
  return pml4;
}

describe('instructions with paging off', () => {
  test('loads and stores hit guest-physical memory, little-endian', () => {
    const g = new ScriptGuest([
      { op: 'store', gva: va(0x8000), size: 4, value: 0x11223344 },
      { op: 'load', gva: va(0x8000), size: 1 },
      { op: 'load', gva: va(0x8000), size: 4 },
      { op: 'store', gva: va(0x8008), size: 8, value: 0x1_0000_0002n },
      { op: 'load', gva: va(0x8008), size: 8 },
    ]);
    const { cpu, mem } = rig(g);
    for (let i = 0; i < 5; i++) expect(cpu.step()).toBe(STEP_RETIRED);
    expect(g.results).toEqual([undefined, 0x44, 0x11223344, undefined, 0x1_0000_0002n]);
    expect(mem.readU32(0x8000)).toBe(0x11223344);
  });

  test('an access to a frame the host has not mapped exits with an EPT violation and is not retired', () => {
    const g = new ScriptGuest([{ op: 'load', gva: va(0x9004), size: 4 }]);
    const r = rig(g);
    r.mapped.delete(9);
    expect(r.cpu.step()).toBe(STEP_EXIT);
    expect(r.cpu.lastExit).toEqual({ reason: 'ept_violation', gpa: 0x9004, gva: 0x9004, write: false, walk: false });
    expect(g.results).toEqual([]);
    r.mapped.add(9);
    r.cpu.abandonExit();
    expect(r.cpu.step()).toBe(STEP_RETIRED);
    expect(g.results).toEqual([0]);
  });

  test('an access beyond guest RAM exits as MMIO', () => {
    const g = new ScriptGuest([{ op: 'store', gva: va(64 * PAGE_SIZE), size: 4, value: 1 }]);
    const r = rig(g);
    expect(r.cpu.step()).toBe(STEP_EXIT);
    expect(r.cpu.lastExit?.reason).toBe('mmio');
  });

  test('loads and stores go to the host frame the second-level MMU names, not to the GPA', () => {
    const g = new ScriptGuest([
      { op: 'store', gva: va(0x9010), size: 4, value: 0xabcd },
      { op: 'load', gva: va(0x9010), size: 4 },
    ]);
    const r = rig(g);
    r.hfn.set(9, 12); // guest frame 9 lives in host frame 12 (a migrated page)
    r.mem.writeU32(0x9010, 0x1111);
    expect(r.cpu.step()).toBe(STEP_RETIRED);
    expect(r.cpu.step()).toBe(STEP_RETIRED);
    expect(g.results).toEqual([undefined, 0xabcd]);
    expect([r.mem.readU32(12 * PAGE_SIZE + 0x10), r.mem.readU32(0x9010)]).toEqual([0xabcd, 0x1111]);
  });

  test('a frame the second-level MMU says is not RAM exits as MMIO, inside guest memory too (a deleted memslot)', () => {
    const g = new ScriptGuest([{ op: 'load', gva: va(0x9004), size: 4 }]);
    const cpu = new Vcpu({
      id: 0,
      memory: new GuestMemory(64 * PAGE_SIZE),
      slat: { translate: (gfn) => (gfn === 9 ? SLAT_MMIO : gfn) },
      clock: { now: 0 },
      trace: { emit: () => undefined },
    });
    cpu.attach(g);
    expect(cpu.step()).toBe(STEP_EXIT);
    expect(cpu.lastExit).toEqual({ reason: 'mmio', gpa: 0x9004, write: false });
  });
});

describe('paging', () => {
  const USER_VA = 0x7f0000001000;
  test('translation through 4-level tables, and a #PF with CR2 and error code for a missing PTE', () => {
    const g = new ScriptGuest(
      [
        { op: 'store', gva: va(USER_VA + 8), size: 4, value: 7 },
        { op: 'load', gva: va(USER_VA + PAGE_SIZE), size: 4 },
      ],
      { 14: () => [{ op: 'read_cr', cr: 2 }] },
    );
    const r = rig(g);
    r.cpu.cr3 = buildTables(r.mem, [{ va: USER_VA, pa: 0x10000, flags: PTE_P | PTE_RW | PTE_US }]);
    r.cpu.cr0 = CR0_PG;
    expect(r.cpu.step()).toBe(STEP_RETIRED);
    expect(r.mem.readU32(0x10008)).toBe(7);
    expect(r.cpu.step()).toBe(STEP_FAULTED);
    const f = g.frames[0]!;
    expect(f.event).toEqual({ kind: 'exception', vector: 14, errorCode: 0, cr2: USER_VA + PAGE_SIZE });
    expect(r.cpu.cr2).toBe(USER_VA + PAGE_SIZE);
    expect(r.cpu.cpl).toBe(0);
    expect(r.cpu.step()).toBe(STEP_RETIRED); // read_cr 2 in the handler
    expect(g.results.at(-1)).toBe(USER_VA + PAGE_SIZE);
  });

  test('user access to a supervisor page and a write to a read-only page fault with P|U and P|W|U', () => {
    const g = new ScriptGuest(
      [
        { op: 'load', gva: va(0x400000), size: 4 },
        { op: 'store', gva: va(0x401000), size: 4, value: 1 },
      ],
      { 14: () => [] },
    );
    const r = rig(g);
    r.cpu.cr3 = buildTables(r.mem, [
      { va: 0x400000, pa: 0x10000, flags: PTE_P | PTE_RW },
      { va: 0x401000, pa: 0x11000, flags: PTE_P | PTE_US },
    ]);
    r.cpu.cr0 = CR0_PG;
    r.cpu.cpl = 3;
    expect(r.cpu.step()).toBe(STEP_FAULTED);
    expect(g.frames[0]!.event).toMatchObject({ vector: 14, errorCode: PFEC_PRESENT | PFEC_USER });
    expect(g.frames[0]!.savedCpl).toBe(3);
    expect(r.cpu.step()).toBe(STEP_RETIRED); // iret back to CPL 3; the load is fetched again
    expect(r.cpu.cpl).toBe(3);
    expect(r.cpu.step()).toBe(STEP_FAULTED); // same load faults again
    expect(g.frames).toHaveLength(2);
  });

  test('a page-table page the host has not mapped gives an EPT violation during the walk', () => {
    const g = new ScriptGuest([{ op: 'load', gva: va(USER_VA), size: 4 }]);
    const r = rig(g);
    r.cpu.cr3 = buildTables(r.mem, [{ va: USER_VA, pa: 0x10000, flags: PTE_P | PTE_US }]);
    r.cpu.cr0 = CR0_PG;
    r.mapped.delete(3); // the page directory
    expect(r.cpu.step()).toBe(STEP_EXIT);
    expect(r.cpu.lastExit).toMatchObject({ reason: 'ept_violation', walk: true, gva: USER_VA });
    expect(Math.floor((r.cpu.lastExit as { gpa: number }).gpa / PAGE_SIZE)).toBe(3);
  });

  test('the walk reads page-table entries from the host frame the second-level MMU names', () => {
    const g = new ScriptGuest([{ op: 'load', gva: va(USER_VA + 8), size: 4 }]);
    const r = rig(g);
    r.cpu.cr3 = buildTables(r.mem, [{ va: USER_VA, pa: 0x10000, flags: PTE_P | PTE_US }]);
    r.cpu.cr0 = CR0_PG;
    r.mem.writeU32(0x10008, 7);
    // The page directory (guest frame 3) moved to host frame 40; frame 3 itself now holds garbage.
    r.mem.copyPageIn(40, r.mem.copyPageOut(3));
    r.mem.fillPage(3, 0);
    r.hfn.set(3, 40);
    expect(r.cpu.step()).toBe(STEP_RETIRED);
    expect(g.results).toEqual([7]);
    // And a table outside RAM is an MMIO access during the walk.
    const g2 = new ScriptGuest([{ op: 'load', gva: va(USER_VA), size: 4 }]);
    const r2 = rig(g2, 4 * PAGE_SIZE);
    r2.cpu.cr3 = 8 * PAGE_SIZE;
    r2.cpu.cr0 = CR0_PG;
    expect(r2.cpu.step()).toBe(STEP_EXIT);
    expect(r2.cpu.lastExit).toEqual({ reason: 'mmio', gpa: 8 * PAGE_SIZE + (Math.floor(USER_VA / 2 ** 39) % 512) * 8, write: false });
  });

  test('CR3 writes flush the TLB; invlpg drops one entry', () => {
    const g = new ScriptGuest([
      { op: 'load', gva: va(USER_VA), size: 4 },
      { op: 'load', gva: va(USER_VA), size: 4 },
      { op: 'invlpg', gva: va(USER_VA) },
      { op: 'load', gva: va(USER_VA), size: 4 },
    ]);
    const r = rig(g);
    r.cpu.cr3 = buildTables(r.mem, [{ va: USER_VA, pa: 0x10000, flags: PTE_P }]);
    r.cpu.cr0 = CR0_PG;
    for (let i = 0; i < 4; i++) r.cpu.step();
    expect(r.cpu.mmu.walks).toBe(2);
  });
});

describe('interrupt flag, shadow, HLT, privileged instructions', () => {
  test('STI opens interrupts only after the next instruction', () => {
    const g = new ScriptGuest([{ op: 'sti' }, { op: 'pause' }]);
    const { cpu } = rig(g);
    cpu.step();
    expect(cpu.ifFlag).toBe(true);
    expect(cpu.interruptAllowed()).toBe(false);
    cpu.step();
    expect(cpu.interruptAllowed()).toBe(true);
  });

  test('HLT exits and completes when the hypervisor wakes the vCPU; STI;HLT leaves IF set', () => {
    const g = new ScriptGuest([{ op: 'sti_hlt' }, { op: 'pause' }]);
    const { cpu } = rig(g);
    expect(cpu.step()).toBe(STEP_EXIT);
    expect(cpu.lastExit).toEqual({ reason: 'hlt' });
    expect(cpu.activity).toBe('hlt');
    expect(cpu.ifFlag).toBe(true);
    cpu.completeExit();
    expect(cpu.activity).toBe('active');
    expect(cpu.step()).toBe(STEP_RETIRED);
  });

  test('RDMSR, CLI and HLT at CPL 3 raise #GP', () => {
    const g = new ScriptGuest([{ op: 'rdmsr', msr: 0x4b564d02 }, { op: 'cli' }], { 13: () => [] });
    const { cpu } = rig(g);
    cpu.cpl = 3;
    expect(cpu.step()).toBe(STEP_FAULTED);
    expect(g.frames[0]!.event).toEqual({ kind: 'exception', vector: 13, errorCode: 0 });
  });

  test('WRMSR at CPL 0 exits with the value', () => {
    const g = new ScriptGuest([{ op: 'wrmsr', msr: 0x4b564d06, value: 0xf3n }]);
    const { cpu } = rig(g);
    expect(cpu.step()).toBe(STEP_EXIT);
    expect(cpu.lastExit).toEqual({ reason: 'msr_write', msr: 0x4b564d06, value: 0xf3n });
    cpu.completeExit();
    expect(cpu.exitPending).toBe(false);
  });

  test('compute is interruptible and retires with the time actually spent', () => {
    const g = new ScriptGuest([{ op: 'compute', ns: 1000 }]);
    const { cpu } = rig(g);
    expect(cpu.step()).toBe(STEP_BUSY);
    expect(cpu.lastCost).toBe(1000);
    expect(() => cpu.step()).toThrow(/in flight/);
    cpu.endBusy(400);
    expect(g.results).toEqual([400]);
  });

  test('a CR0 write that toggles PG exits to the hypervisor', () => {
    const g = new ScriptGuest([{ op: 'write_cr', cr: 0, value: CR0_PG }]);
    const { cpu } = rig(g);
    expect(cpu.step()).toBe(STEP_EXIT);
    expect(cpu.lastExit).toEqual({ reason: 'cr_write', cr: 0, value: CR0_PG });
    cpu.setCr0(CR0_PG);
    cpu.completeExit();
    expect(cpu.paging).toBe(true);
  });
});

describe('event delivery', () => {
  test('an interrupt gate clears IF and saves the interrupted IF and CPL; IRET restores them', () => {
    const g = new ScriptGuest([{ op: 'pause' }], { 0xf3: () => [{ op: 'pause' }] });
    const { cpu } = rig(g);
    cpu.cpl = 3;
    cpu.ifFlag = true;
    expect(cpu.deliver({ kind: 'interrupt', vector: 0xf3 })).toBe('delivered');
    expect(cpu.ifFlag).toBe(false);
    expect(cpu.cpl).toBe(0);
    expect(g.frames[0]).toMatchObject({ savedCpl: 3, savedIf: true });
    cpu.step(); // pause
    cpu.step(); // iret
    expect(cpu.ifFlag).toBe(true);
    expect(cpu.cpl).toBe(3);
    expect(g.depth).toBe(1);
  });

  test('NMIs are blocked from NMI delivery until the next IRET', () => {
    const g = new ScriptGuest([{ op: 'pause' }], { 2: () => [] });
    const { cpu } = rig(g);
    cpu.deliver({ kind: 'nmi' });
    expect(cpu.nmiAllowed()).toBe(false);
    cpu.step(); // iret
    expect(cpu.nmiAllowed()).toBe(true);
  });

  test('the #PF handler sees CR2 clobbered if an NMI handler faults before it reads CR2 (the hardware fact behind the NMI/CR2 bug)', () => {
    const g = new ScriptGuest([{ op: 'pause' }], {
      14: () => [{ op: 'read_cr', cr: 2 }],
      2: () => [],
    });
    const { cpu } = rig(g);
    cpu.deliver({ kind: 'exception', vector: 14, errorCode: 0, cr2: 0x1001 }); // async #PF, token 0x1001
    cpu.deliver({ kind: 'nmi' }); // before the handler's first instruction
    cpu.deliver({ kind: 'exception', vector: 14, errorCode: 4, cr2: 0x7f0000005000 }); // the NMI handler faults
    expect(cpu.cr2).toBe(0x7f0000005000);
  });

  test('a missing gate raises #GP (IDT, EXT); a missing #GP gate during #PF delivery gives #DF; a missing #DF gate is a triple fault', () => {
    const g1 = new ScriptGuest([], { 13: () => [] });
    const r1 = rig(g1);
    expect(r1.cpu.deliver({ kind: 'interrupt', vector: 0x40 })).toBe('delivered');
    expect(g1.frames[0]!.event).toEqual({ kind: 'exception', vector: 13, errorCode: 0x40 * 8 + 3 });

    const g2 = new ScriptGuest([], { 8: () => [] });
    const r2 = rig(g2);
    expect(r2.cpu.deliver({ kind: 'exception', vector: 14, errorCode: 0, cr2: 0x1000 })).toBe('delivered');
    expect(g2.frames[0]!.event).toMatchObject({ vector: 8 });

    const g3 = new ScriptGuest([], {});
    const r3 = rig(g3);
    expect(r3.cpu.deliver({ kind: 'exception', vector: 14, errorCode: 0, cr2: 0x1000 })).toBe('triple_fault');
    expect(r3.cpu.activity).toBe('shutdown');
    expect(r3.events.map((e) => e.event)).toContain('triple_fault');
  });

  test('a syscall from CPL 3 retires and enters the kernel; SYSRET (iret of the frame) returns to CPL 3', () => {
    const g = new ScriptGuest([{ op: 'syscall', nr: 0 }, { op: 'pause' }], { [-1]: () => [{ op: 'pause' }] });
    const { cpu } = rig(g);
    cpu.cpl = 3;
    cpu.ifFlag = true;
    expect(cpu.step()).toBe(STEP_RETIRED);
    expect(cpu.cpl).toBe(0);
    expect(cpu.ifFlag).toBe(false);
    cpu.step();
    cpu.step();
    expect(cpu.cpl).toBe(3);
  });
});

describe('SMM, INIT', () => {
  test('SMI entry turns paging and IF off; RSM restores them', () => {
    const { cpu } = rig(new ScriptGuest([]));
    cpu.cr0 = CR0_PG;
    cpu.ifFlag = true;
    cpu.enterSmm();
    expect(cpu.paging).toBe(false);
    expect(cpu.interruptAllowed()).toBe(false);
    cpu.leaveSmm();
    expect(cpu.paging).toBe(true);
    expect(cpu.ifFlag).toBe(true);
  });

  test('INIT resets architectural state and tells the guest', () => {
    const g = new ScriptGuest([]);
    const { cpu } = rig(g);
    cpu.cr0 = CR0_PG;
    cpu.cr2 = 5;
    cpu.ifFlag = true;
    cpu.reset('init');
    expect([cpu.paging, cpu.cr2, cpu.ifFlag]).toEqual([false, 0, false]);
    expect(g.resets).toEqual(['init']);
  });
});

test('a store of a number wider than the access keeps the low bytes', () => {
  const g = new ScriptGuest([{ op: 'store', gva: va(0x8000), size: 2, value: 0x12345 }]);
  const { cpu, mem } = rig(g);
  cpu.step();
  expect(mem.readU16(0x8000)).toBe(0x2345);
  expect(PFEC_WRITE).toBe(2);
});
