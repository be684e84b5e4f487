/**
 * The L1 kernel's hypervisor: a minimal KVM inside the guest kernel that runs L2 guests, one vCPU
 * thread (an L1 task) per L2 guest. Its async-PF part is what spec §5.2 describes for an L1 that is
 * Linux KVM:
 *
 * - the vCPU thread enters L2 with IRQs off (VMLAUNCH/VMRESUME, the `vmenter` instruction);
 * - right after a #PF VM-exit, still with IRQs off, it reads and resets *its own* APF flags
 *   (`handlers.readAndResetFlags`: vmx_handle_exit_irqoff's `host_apf_flags`);
 * - it enables IRQs (an interrupt that made L2 exit is taken here: external-interrupt exiting;
 *   page-ready is an ordinary 0xf3 interrupt to L1), does some exit handling with IRQs on, then in
 *   kvm_handle_page_fault: NOT_PRESENT → IRQs off, `handlers.wait(token = exit qualification)`:
 *   the vCPU thread sleeps in kvm_async_pf_task_wait_schedule and L1 runs other tasks; IRQs on;
 * - ≤v5.7 L1 (page ready as a #PF): PAGE_READY in the flags of a #PF exit → wake (dropped in v5.8);
 * - flags 0 on a #PF exit would be an ordinary #PF of L2 that L1 reflects into L2; L1 does not
 *   intercept #PF (EPT), so here it only happens when something consumed the flags first (the L1
 *   #PF window, Lai Jiangshan's RFC): L2 gets a #PF at the token, which it cannot handle (modelled
 *   as L2's oops).
 *
 * CPUID bit 10 and DELIVERY_AS_PF_VMEXIT are the ordinary kvm.c driver's business
 * (`kvmGuestCpuInit` sets bit 2 when the CPUID bit is there), so the L1 kernel is a normal guest
 * kernel of any interrupt-based profile plus this hypervisor.
 */
import { KVM_PV_REASON_PAGE_NOT_PRESENT, KVM_PV_REASON_PAGE_READY } from '../../shared-abi/apf';
import type { NestedVmexit, TrapFrame, Vmcs12 } from '../../shared-abi/arch';
import { PF_VECTOR } from '../../shared-abi/vectors';
import { GuestCodeError, compute, insn, type Code } from '../code';
import type { GuestHypervisor, GuestKernel, PerCpu } from '../kernel';
import { forwardEmit, type SourceTrace, type TraceEventFrom, type TraceFields } from '../../sim/trace';
import type { TaskSpec } from '../program';
import { schedule } from '../sched';
import { L2Guest } from './l2';
import { nestedFloor, planNested, NestedLayoutError, type L2Region } from './layout';
import { DEFAULT_EXIT_HANDLING_NS, DEFAULT_VMEXIT_TAIL_NS, vcpuThreadName, type L2Spec, type NestedConfig } from './program';

/** One L2 guest as L1's KVM keeps it. */
export interface L2Vm {
  readonly spec: L2Spec;
  readonly region: L2Region;
  readonly guest: L2Guest;
  readonly vmcs: Vmcs12;
  /** VMLAUNCH done (later entries are VMRESUME). */
  launched: boolean;
  /** The exit that ended the last entry (set by the vCPU's nested VM-exit). */
  exit: NestedVmexit | null;
  /** L1 CPU that runs (or last ran) it. */
  cpu: number;
  entries: number;
  /** Async #PF exits this vCPU thread slept on. */
  asyncPfWaits: number;
}

export class NestedHypervisor implements GuestHypervisor {
  readonly regions: readonly L2Region[];
  readonly vms = new Map<string, L2Vm>();
  readonly vmexitTailNs: number;
  readonly exitHandlingNs: number;
  private readonly onCpu = new Map<number, L2Vm>();
  private kernel: GuestKernel | null = null;

  constructor(
    readonly memoryBytes: number,
    readonly config: NestedConfig,
  ) {
    this.regions = planNested(memoryBytes, config.l2);
    this.vmexitTailNs = Math.max(0, Math.round(config.vmexitTailNs ?? DEFAULT_VMEXIT_TAIL_NS));
    this.exitHandlingNs = Math.max(0, Math.round(config.exitHandlingNs ?? DEFAULT_EXIT_HANDLING_NS));
    const names = new Set<string>();
    config.l2.forEach((spec, i) => {
      if (names.has(spec.name)) throw new NestedLayoutError(`duplicate L2 guest name '${spec.name}'`);
      names.add(spec.name);
      const region = this.regions[i]!;
      const guest = new L2Guest(spec, i, { emit: this.l2Trace(spec.name) });
      const vm: L2Vm = {
        spec,
        region,
        guest,
        vmcs: {
          gpa: region.vmcs12,
          pages: [region.msrBitmap, region.vapic],
          memBase: region.memBase,
          memSize: region.memSize,
          extIntExiting: true,
          guest: guest.state,
          code: guest,
        },
        launched: false,
        exit: null,
        cpu: spec.cpu ?? 0,
        entries: 0,
        asyncPfWaits: 0,
      };
      this.vms.set(spec.name, vm);
    });
  }

  /** The trace of L2 guest `name`: guest records on the L1 CPU that runs it (none before the kernel is attached). */
  private l2Trace(name: string): SourceTrace<'guest'> {
    const emit = (event: TraceEventFrom<'guest'>, fields?: TraceFields): void => {
      const k = this.kernel;
      if (k !== null) forwardEmit(k.sim.trace, 'guest', this.vms.get(name)?.cpu ?? 0, event, fields);
    };
    return emit as SourceTrace<'guest'>;
  }

  /** The vCPU threads, one L1 user task per L2 guest (give them to the kernel with its tasks). */
  taskSpecs(): TaskSpec[] {
    return this.config.l2.map((s) => ({
      name: vcpuThreadName(s.name),
      kind: 'user',
      mm: vcpuThreadName(s.name),
      pages: [],
      program: [{ op: 'syscall', name: 'KVM_RUN', body: [{ op: 'kvm_run', vcpu: s.name }] }],
      ...(s.cpu === undefined ? {} : { cpu: s.cpu, affinity: [s.cpu] }),
      ...(s.start === undefined ? {} : { start: s.start }),
    }));
  }

  /** Throws when the nested regions overlap the L1 kernel's own layout. */
  checkLayout(k: GuestKernel): void {
    const low = nestedFloor(this.memoryBytes, this.regions);
    const used = Math.max(k.layout.userPool.end, k.layout.pageTables.end);
    if (low < used) {
      throw new NestedLayoutError(`the nested guests need memory from 0x${low.toString(16)} up, but L1's kernel layout reaches 0x${used.toString(16)}: give the machine more memory or the L2 guests fewer pages`);
    }
  }

  /** Every L2 guest is over (ran to its end or died). */
  allOver(): boolean {
    return [...this.vms.values()].every((vm) => vm.guest.over);
  }

  // --- GuestHypervisor ---

  vmexit(pc: PerCpu, exit: NestedVmexit): void {
    const vm = this.onCpu.get(pc.id);
    if (vm === undefined) throw new GuestCodeError(`cpu${pc.id}: nested VM-exit but no L2 guest was entered there`);
    this.onCpu.delete(pc.id);
    vm.exit = exit;
  }

  /** vcpu_run: enter L2 until it is over; handle each exit (spec §5.2). */
  *kvmRun(k: GuestKernel, name: string): Code {
    const vm = this.vms.get(name);
    if (vm === undefined) throw new GuestCodeError(`kvm_run: no L2 guest '${name}'`);
    this.kernel = k;
    const api = k.apfApi();
    while (!vm.guest.over) {
      // xfer_to_guest_mode_handle_work: reschedule before entering the guest.
      if (k.current().needResched) {
        yield* schedule(k);
        continue;
      }
      yield insn.cli();
      const pc = k.cpu();
      vm.cpu = pc.id;
      vm.exit = null;
      this.onCpu.set(pc.id, vm);
      vm.entries++;
      k.emit(pc.id, 'l1_kvm_entry', { l2: name, launch: !vm.launched });
      yield { op: 'vmenter', vmcs: vm.vmcs, launch: !vm.launched };
      vm.launched = true;
      // --- VM-exit: back in L1 with IRQs off ---
      const exit = vm.exit as NestedVmexit | null;
      if (exit === null) throw new GuestCodeError(`kvm_run(${name}): VMLAUNCH/VMRESUME completed without a VM-exit`);
      const pf = exit.reason === 'exception' && exit.vector === PF_VECTOR;
      yield* compute(this.vmexitTailNs);
      // handle_exit_irqoff: a #PF exit reads and resets L1's own APF flags right away.
      const flags = pf ? yield* api.handlers.readAndResetFlags(api) : 0;
      k.emit(k.cpu().id, 'l1_kvm_exit', { l2: name, reason: exit.reason, vector: exit.vector, exit_qualification: exit.exitQualification, apf_flags: flags });
      // local_irq_enable: the interrupt that made L2 exit (if any) is taken here.
      yield insn.sti();
      yield* compute(this.exitHandlingNs);
      if (pf) yield* this.handlePageFault(k, vm, exit, flags);
    }
  }

  /** kvm_handle_page_fault for a #PF VM-exit (spec §5.2). */
  private *handlePageFault(k: GuestKernel, vm: L2Vm, exit: NestedVmexit, flags: number): Code {
    const api = k.apfApi();
    if ((flags & KVM_PV_REASON_PAGE_NOT_PRESENT) !== 0) {
      const token = exit.exitQualification >>> 0;
      vm.asyncPfWaits++;
      yield insn.cli();
      yield* api.handlers.wait(api, token, waitFrame(k, token));
      yield insn.sti();
      return;
    }
    if (flags === KVM_PV_REASON_PAGE_READY && api.config.facts.pageReady === 'pf_reason') {
      // ≤v5.7 (page ready as a #PF): while L2 ran, page-ready came as a #PF VM-exit too; wake here.
      yield insn.cli();
      yield* api.handlers.wake(api, exit.exitQualification >>> 0);
      yield insn.sti();
      return;
    }
    if (flags !== 0) {
      api.warnOnce(`Unexpected async PF flags: ${flags.toString(16)}`);
      return;
    }
    // An ordinary #PF of L2, to reflect into L2: but L2 has no page tables, so it cannot make sense of it.
    k.warn(`kvm: #PF VM-exit from L2 '${vm.spec.name}' at 0x${exit.exitQualification.toString(16)} with no async PF flags: reflected into L2`);
    vm.guest.kill(`#PF at 0x${exit.exitQualification.toString(16)} reflected by L1 (an async PF token: the APF flags were consumed before L1 read them)`);
  }
}

/**
 * The trap frame the wait sees: kvm_handle_page_fault calls the wait from process context with
 * `interrupt_kernel = 0` (≤v5.7 halt-capable waits look at it), i.e. as if from user mode with IRQs on.
 */
function waitFrame(k: GuestKernel, token: number): TrapFrame {
  return { event: { kind: 'exception', vector: PF_VECTOR, errorCode: 0, cr2: token }, savedCpl: 3, savedIf: true, seq: 0, t: k.sim.now };
}
