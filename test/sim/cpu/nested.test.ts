/**
 * The vCPU's nested-virtualization hardware: VMLAUNCH/VMRESUME exits to the hypervisor below,
 * guest mode fetches from the L2 code in the VMCS, L2's memory is an offset into L1's (paging off),
 * L2's state is loaded on entry and saved on exit, and L1's interrupts and NMIs are "allowed" in
 * guest mode whatever L2's RFLAGS.IF (they exit).
 */
import { PAGE_SIZE, type Gva } from '../../../shared-abi/addr';
import type { GuestCode, Insn, InsnResult, NestedGuestCode, NestedVmexit, TrapFrame, Vmcs12 } from '../../../shared-abi/arch';
import { GuestMemory } from '../../../sim/memory';
import { recordingEmitter } from '../../support/emitter';
import { SLAT_MMIO, SLAT_VIOLATION } from '../../../sim/cpu/mmu';
import { STEP_BUSY, STEP_EXIT, STEP_FAULTED, STEP_RETIRED, Vcpu } from '../../../sim/cpu/vcpu';

/** A flat list of instructions; events push a handler list ending in IRET. */
class ListCode implements NestedGuestCode {
  pc = 0;
  readonly results: InsnResult[] = [];
  readonly frames: TrapFrame[] = [];
  private handler: Insn[] | null = null;
  private hpc = 0;
  constructor(private readonly insns: Insn[]) {}
  fetch(): Insn {
    if (this.handler !== null) return this.handler[this.hpc]!;
    return this.insns[this.pc] ?? { op: 'hlt' };
  }
  retire(r: InsnResult): void {
    if (this.handler !== null) {
      const i = this.handler[this.hpc++]!;
      if (i.op === 'iret') this.handler = null;
      return;
    }
    this.pc++;
    this.results.push(r);
  }
  vector(frame: TrapFrame): boolean {
    this.frames.push(frame);
    this.handler = [{ op: 'pause' }, { op: 'iret', frame }];
    this.hpc = 0;
    return true;
  }
}

class L1 extends ListCode implements GuestCode {
  readonly exits: NestedVmexit[] = [];
  reset(): void {}
  vmexit(exit: NestedVmexit): void {
    this.exits.push(exit);
  }
}

const MEM = 64 * PAGE_SIZE;
const L2_BASE = 16 * PAGE_SIZE;

function rig(l1Insns: (vmcs: Vmcs12) => Insn[], l2Insns: Insn[]) {
  const mem = new GuestMemory(MEM);
  const unmapped = new Set<number>();
  const events: { event: string; fields?: Record<string, unknown> }[] = [];
  const cpu = new Vcpu({
    id: 0,
    memory: mem,
    slat: { translate: (gfn) => (gfn >= MEM / PAGE_SIZE ? SLAT_MMIO : unmapped.has(gfn) ? SLAT_VIOLATION : gfn) },
    clock: { now: 0 },
    trace: recordingEmitter((_src, _cpu, event, fields) => void events.push({ event, fields })),
  });
  const l2 = new ListCode(l2Insns);
  const vmcs: Vmcs12 = { gpa: 8 * PAGE_SIZE, pages: [9 * PAGE_SIZE, 10 * PAGE_SIZE], memBase: L2_BASE, memSize: 4 * PAGE_SIZE, extIntExiting: true, guest: { cpl: 3, ifFlag: false }, code: l2 };
  const l1 = new L1(l1Insns(vmcs));
  cpu.attach(l1);
  return { mem, cpu, l1, l2, vmcs, unmapped, events };
}

/** Step until VMLAUNCH exits, then enter guest mode as the hypervisor would. */
function launch(r: ReturnType<typeof rig>): void {
  expect(r.cpu.step()).toBe(STEP_EXIT);
  expect(r.cpu.lastExit).toMatchObject({ reason: 'vmenter', launch: true });
  r.cpu.enterGuestMode(r.vmcs);
}

describe('nested VM entry and exit', () => {
  test('VMLAUNCH at CPL 0 exits to the hypervisor below; at CPL 3 it raises #GP', () => {
    const r = rig((vmcs) => [{ op: 'vmenter', vmcs, launch: true }], []);
    expect(r.cpu.step()).toBe(STEP_EXIT);
    expect(r.cpu.lastExit).toEqual({ reason: 'vmenter', vmcs: r.vmcs, launch: true });
    expect(r.cpu.guestMode).toBe(false);
    const u = rig((vmcs) => [{ op: 'vmenter', vmcs, launch: true }], []);
    u.cpu.cpl = 3;
    expect(u.cpu.step()).toBe(STEP_FAULTED);
    expect(u.l1.frames[0]!.event).toMatchObject({ kind: 'exception', vector: 13 });
  });

  test('guest mode fetches from L2 with L2 state; L2 addresses are L1 addresses memBase + x; the exit saves L2 state', () => {
    const r = rig((vmcs) => [{ op: 'vmenter', vmcs, launch: true }, { op: 'pause' }], [
      { op: 'store', gva: 0x1004 as Gva, size: 4, value: 0xabcd },
      { op: 'load', gva: 0x1004 as Gva, size: 4 },
    ]);
    launch(r);
    expect(r.l1.pc).toBe(1); // VMLAUNCH retired in L1
    expect(r.cpu.guestMode).toBe(true);
    expect(r.cpu.cpl).toBe(3);
    expect(r.cpu.ifFlag).toBe(false);
    expect(r.events.find((e) => e.event === 'nested_vmenter')?.fields).toEqual({ cpl: 3, if: false, launch: true });
    expect(r.cpu.step()).toBe(STEP_RETIRED);
    expect(r.mem.readU32(L2_BASE + 0x1004)).toBe(0xabcd);
    expect(r.cpu.step()).toBe(STEP_RETIRED);
    expect(r.l2.results).toEqual([undefined, 0xabcd]);
    r.cpu.nestedVmexit({ reason: 'hlt', vector: -1, errorCode: 0, exitQualification: 0 });
    expect(r.cpu.guestMode).toBe(false);
    expect(r.cpu.cpl).toBe(0);
    expect(r.vmcs.guest).toEqual({ cpl: 3, ifFlag: false });
    expect(r.l1.exits).toEqual([{ reason: 'hlt', vector: -1, errorCode: 0, exitQualification: 0 }]);
    expect(r.events.find((e) => e.event === 'nested_vmexit')?.fields).toEqual({ reason: 'hlt', vector: -1, error_code: 0, exit_qualification: 0 });
    // L1 continues after its VMLAUNCH.
    expect(r.cpu.step()).toBe(STEP_RETIRED);
    expect(r.l1.pc).toBe(2);
  });

  test('an L2 access to an L1 frame the host has not mapped is an EPT violation at the L1 address, with the L2 address beside it', () => {
    const r = rig((vmcs) => [{ op: 'vmenter', vmcs, launch: true }], [{ op: 'load', gva: 0x2010 as Gva, size: 4 }]);
    r.unmapped.add((L2_BASE + 0x2000) / PAGE_SIZE);
    launch(r);
    expect(r.cpu.step()).toBe(STEP_EXIT);
    expect(r.cpu.lastExit).toEqual({ reason: 'ept_violation', gpa: L2_BASE + 0x2010, gva: 0x2010, write: false, walk: false });
    expect(r.l2.results).toEqual([]);
  });

  test("in guest mode with external-interrupt exiting, interrupts and NMIs are allowed whatever L2's IF (they exit to L1)", () => {
    const r = rig((vmcs) => [{ op: 'vmenter', vmcs, launch: true }], [{ op: 'pause' }]);
    launch(r);
    expect(r.cpu.ifFlag).toBe(false);
    expect(r.cpu.interruptAllowed()).toBe(true);
    r.cpu.nmiBlocked = true;
    expect(r.cpu.nmiAllowed()).toBe(true);
    r.cpu.nestedVmexit({ reason: 'external_interrupt', vector: 0xf3, errorCode: 0, exitQualification: 0 });
    // Back in L1 with IF=0: not allowed any more.
    expect(r.cpu.interruptAllowed()).toBe(false);
  });

  test("the bare guestMode flag (host tests) keeps L1's interrupt rules and code", () => {
    const r = rig(() => [{ op: 'pause' }], []);
    r.cpu.guestMode = true;
    expect(r.cpu.interruptAllowed()).toBe(false);
    expect(r.cpu.step()).toBe(STEP_RETIRED);
    expect(r.l1.pc).toBe(1);
  });

  test('L2 syscalls vector through L2; compute in L2 is interruptible; unmodelled instructions in L2 throw', () => {
    const r = rig((vmcs) => [{ op: 'vmenter', vmcs, launch: true }], [{ op: 'syscall', nr: 1 }, { op: 'compute', ns: 100 }, { op: 'rdmsr', msr: 0x10 }]);
    launch(r);
    expect(r.cpu.step()).toBe(STEP_RETIRED);
    expect(r.l2.frames[0]!.event).toEqual({ kind: 'syscall', nr: 1 });
    expect(r.cpu.cpl).toBe(0);
    expect(r.cpu.step()).toBe(STEP_RETIRED); // handler's pause
    expect(r.cpu.step()).toBe(STEP_RETIRED); // iret back to CPL 3
    expect(r.cpu.cpl).toBe(3);
    expect(r.cpu.step()).toBe(STEP_BUSY);
    r.cpu.endBusy(40);
    expect(r.l2.results).toEqual([undefined, 40]);
    expect(() => r.cpu.step()).toThrow(/'rdmsr' in a nested \(L2\) guest is not modelled/);
  });

  test('an L2 access beyond its memory is not modelled; a nested VM-exit outside guest mode is a bug; INIT leaves guest mode', () => {
    const r = rig((vmcs) => [{ op: 'vmenter', vmcs, launch: true }], [{ op: 'load', gva: 0x4000 as Gva, size: 4 }]);
    expect(() => r.cpu.nestedVmexit({ reason: 'hlt', vector: -1, errorCode: 0, exitQualification: 0 })).toThrow(/not running an L2 guest/);
    launch(r);
    expect(() => r.cpu.step()).toThrow(/outside its 16384-byte memory/);
    r.cpu.reset('init');
    expect(r.cpu.guestMode).toBe(false);
    expect(r.cpu.currentVmcs).toBeNull();
  });
});
