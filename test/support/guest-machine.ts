/**
 * Composition helper for the guest's end-to-end tests: Simulation + GuestMemory + host Kvm + the
 * guest kernel (or the bare-metal guest), wired together. Kept small on purpose; the harness owns
 * the real composition.
 *
 * The management console's interrupt line is a device interrupt raised through `kvm.injectIrq`.
 */
import type { Gva } from '../../shared-abi/addr';
import { PAGE_SIZE } from '../../shared-abi/addr';
import { kvmFeatureEax } from '../../shared-abi/cpuid';
import { Simulation } from '../../sim/engine';
import { DeadlockError } from '../../sim/errors';
import { GuestMemory } from '../../sim/memory';
import { TraceRecorder, type TraceRecord } from '../../sim/trace';
import type { HostMemoryConfig, HostProfileName, HostToggle } from '../../host/config';
import { Kvm } from '../../host/kvm';
import { GuestKernel, type GuestKernelOptions } from '../../guest/kernel';
import type { GuestProfileName, GuestToggle } from '../../guest/profiles';
import type { TaskSpec } from '../../guest/program';
import type { ApfHandlers } from '../../guest/handlers';
import { BareGuest, type BareGuestOptions } from '../../guest/bare';

export const ALL_APF_FEATURES = kvmFeatureEax('ASYNC_PF', 'ASYNC_PF_VMEXIT', 'ASYNC_PF_INT');

export interface GuestMachineOptions {
  readonly seed?: number;
  readonly cpus?: number;
  readonly memoryBytes?: number;
  readonly hostProfile?: HostProfileName;
  readonly hostToggles?: Partial<Record<HostToggle, boolean>>;
  readonly kvmFeatures?: number;
  readonly hostMemory?: HostMemoryConfig;
  readonly exitCostNs?: number;
  readonly profile?: GuestProfileName;
  readonly toggles?: Partial<Record<GuestToggle, boolean>>;
  readonly tasks?: readonly TaskSpec[];
  readonly handlers?: Partial<ApfHandlers>;
  readonly hz?: number;
  readonly hungTaskTimeoutNs?: number;
  readonly nmiUserRead?: Gva;
  /** User pages to swap out before the run: [task, page]. */
  readonly swapOut?: ReadonlyArray<readonly [string, number]>;
  readonly maxEvents?: number;
  readonly stopOnPanic?: boolean;
}

export interface GuestMachine {
  readonly sim: Simulation;
  readonly mem: GuestMemory;
  readonly kvm: Kvm;
  readonly kernel: GuestKernel;
  readonly rec: TraceRecorder;
  /** GFN of a task's user page. */
  gfnOf(task: string, page: number): number;
  /** Swap a task's page out now. */
  evict(task: string, page: number): void;
  /**
   * Run until `t` ns (absolute) or until `stop` says so. A deadlock (the queue ran empty while
   * guest tasks still wait) ends the run and is kept in `deadlock`.
   */
  runUntil(t: number, stop?: () => boolean): void;
  /** The deadlock that ended a run, if any. */
  readonly deadlock: DeadlockError | null;
  /** Records of one event name (optionally from one source). */
  events(event: string, src?: string): TraceRecord[];
}

/** The management console interrupt line of the guest: a device interrupt raised by the VMM (kvm.injectIrq). */
export function irqLine(kvm: Kvm): (cpu: number, vector: number) => void {
  return (cpu, vector) => kvm.injectIrq(cpu, vector);
}

export function buildGuestMachine(o: GuestMachineOptions = {}): GuestMachine {
  const sim = new Simulation({ seed: o.seed ?? 1, maxEvents: o.maxEvents ?? 3_000_000 });
  const mem = new GuestMemory(o.memoryBytes ?? 8 * 1024 * 1024);
  const rec = new TraceRecorder(sim.trace);
  const kvm = new Kvm(sim, mem, {
    profile: o.hostProfile ?? 'current',
    toggles: o.hostToggles,
    kvmFeatures: o.kvmFeatures ?? ALL_APF_FEATURES,
    memory: o.hostMemory,
    exitCostNs: o.exitCostNs,
  });
  const n = o.cpus ?? 1;
  const vcpus = Array.from({ length: n }, (_, i) => kvm.createVcpu(i).cpu);
  const kopts: GuestKernelOptions = {
    sim,
    memory: mem,
    cpus: vcpus,
    profile: o.profile ?? 'current',
    toggles: o.toggles,
    tasks: o.tasks ?? [],
    handlers: o.handlers,
    hz: o.hz,
    hungTaskTimeoutNs: o.hungTaskTimeoutNs,
    raiseIrq: irqLine(kvm),
    raiseNmi: (cpu) => kvm.injectNmi(cpu),
    nmiUserRead: o.nmiUserRead,
    stopOnPanic: o.stopOnPanic,
  };
  const kernel = new GuestKernel(kopts);
  kernel.boot();
  const gfnOf = (task: string, page: number): number => {
    const gpa = kernel.userPageGpa(task, page);
    if (gpa === undefined) throw new Error(`task ${task} has no page 0x${page.toString(16)}`);
    return Math.floor(gpa / PAGE_SIZE);
  };
  if (o.swapOut !== undefined && o.swapOut.length > 0) kvm.evict(o.swapOut.map(([t, p]) => gfnOf(t, p)));
  kvm.start();
  let deadlock: DeadlockError | null = null;
  return {
    sim,
    mem,
    kvm,
    kernel,
    rec,
    gfnOf,
    get deadlock() {
      return deadlock;
    },
    evict: (task, page) => kvm.evict([gfnOf(task, page)]),
    runUntil: (t, stop) => {
      if (sim.now >= t || deadlock !== null) return;
      try {
        sim.run({ until: t, stopWhen: stop });
      } catch (e) {
        if (!(e instanceof DeadlockError)) throw e;
        deadlock = e;
      }
    },
    events: (event, src) => rec.records.filter((r) => r.event === event && (src === undefined || r.src === src)),
  };
}

export interface BareMachineOptions extends BareGuestOptions {
  readonly seed?: number;
  readonly memoryBytes?: number;
  readonly hostProfile?: HostProfileName;
  readonly hostToggles?: Partial<Record<HostToggle, boolean>>;
  readonly kvmFeatures?: number;
  readonly hostMemory?: HostMemoryConfig;
  readonly maxEvents?: number;
}

export interface BareMachine {
  readonly sim: Simulation;
  readonly mem: GuestMemory;
  readonly kvm: Kvm;
  readonly guest: BareGuest;
  readonly rec: TraceRecorder;
}

/** One vCPU running the scripted bare-metal guest. */
export function buildBareMachine(o: BareMachineOptions): BareMachine {
  const sim = new Simulation({ seed: o.seed ?? 1, maxEvents: o.maxEvents ?? 1_000_000 });
  const mem = new GuestMemory(o.memoryBytes ?? 4 * 1024 * 1024);
  const rec = new TraceRecorder(sim.trace);
  const kvm = new Kvm(sim, mem, {
    profile: o.hostProfile ?? 'current',
    toggles: o.hostToggles,
    kvmFeatures: o.kvmFeatures ?? ALL_APF_FEATURES,
    memory: o.hostMemory,
  });
  const v = kvm.createVcpu(0);
  const guest = new BareGuest({ ...o, sim, memory: mem, cpu: v.cpu });
  guest.load();
  kvm.start();
  return { sim, mem, kvm, guest, rec };
}
