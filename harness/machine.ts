/**
 * Builds the machine a scenario describes: GuestMemory + host KVM (host/) + vCPUs + the guest
 * kernel (guest/), or the bare-metal scripted guest, all on the run's Simulation.
 *
 * Order matters:
 * 1. The guest's memory layout decides which guest frame backs each task page. The host needs
 *    those frames at VM creation (page backings, scheduled evictions), but the guest kernel
 *    needs the host's vCPUs first. So the harness plans the layout once with the guest's own
 *    planner (`planGuestLayout`), configures the host with the resulting frames, and hands the
 *    same plan to the kernel, which writes its page tables from it.
 * 2. The kernel boots (writes its page tables and per-CPU areas) before `kvm.start()`, because
 *    the host takes the initial contents of non-resident frames at start.
 */
import { PAGE_SIZE } from '../shared-abi/addr';
import { kvmFeatureEax } from '../shared-abi/cpuid';
import { ASYNC_PF_EN_GPA_MASK, MSR_KVM_ASYNC_PF_EN, MSR_KVM_ASYNC_PF_INT } from '../shared-abi/msr';
import type { Simulation } from '../sim/engine';
import { GuestMemory } from '../sim/memory';
import type { HostMemoryConfig, PageRangeConfig, VmConfig } from '../host/config';
import { Kvm, type KvmVcpu } from '../host/kvm';
import { resolveHostProfile } from '../host/profiles';
import { GuestKernel, mmName, planGuestLayout } from '../guest/kernel';
import { PAGE_TABLE_BASE, type GuestLayoutPlan } from '../guest/layout';
import { hostWritableBytes } from '../shared-abi/layout';
import type { ApfHandlers } from '../guest/handlers';
import type { GuestProfileName, GuestToggle } from '../guest/profiles';
import type { TaskSpec } from '../guest/program';
import { BARE_DEFAULT_APF_AREA, BareGuest } from '../guest/bare';
import { buildNested } from './nested-machine';
import { ActionError, type Machine, MachineBuildError } from './machine-api';
import { addressSpaceAction } from './memslot-actions';
import type { Action, PageRef, Scenario } from './scenario/types';
import { hex } from './util/units';
import { GUEST_KNOBS, HOST_KNOBS, layerKnobs } from './scenario/knobs';

const AUTO_FEATURES = kvmFeatureEax('ASYNC_PF', 'ASYNC_PF_VMEXIT', 'ASYNC_PF_INT');

/** Things a scenario file cannot express but code can (pluggable handlers, docs/handlers.md). */
export interface MachineExtras {
  readonly handlers?: Partial<ApfHandlers>;
  /** Called once the host is built, with the host and guest memory (the fuzzer's untrusted-guest oracle reads host state at the end of a run). */
  readonly inspect?: (parts: { readonly kvm: Kvm; readonly memory: GuestMemory }) => void;
}

export { MachineBuildError };

/** Frames of the scenario's task pages: `task -> gva -> gfn`, from the guest's layout plan. */
function planPages(layout: GuestLayoutPlan, tasks: readonly TaskSpec[]): Map<string, Map<number, number>> {
  const out = new Map<string, Map<number, number>>();
  for (const t of tasks) {
    if ((t.kind ?? 'user') !== 'user') continue;
    const m = new Map<number, number>();
    for (const p of t.pages ?? []) {
      const gpa = layout.userPageGpa(mmName(t), p);
      if (gpa !== undefined) m.set(p, Math.floor(gpa / PAGE_SIZE));
    }
    out.set(t.name, m);
  }
  return out;
}

function gfnsOf(refs: readonly PageRef[], plan: Map<string, Map<number, number>>, memFrames: number, where: string): number[] {
  const out: number[] = [];
  for (const r of refs) {
    if (r.kind === 'gfn') {
      if (r.gfn + r.count > memFrames) throw new MachineBuildError(`${where}: gfn ${hex(r.gfn)} x ${r.count} lies outside guest memory (${memFrames} frames)`);
      for (let i = 0; i < r.count; i++) out.push(r.gfn + i);
      continue;
    }
    let found = false;
    for (const [task, pages] of plan) {
      if (r.task !== undefined && r.task !== task) continue;
      const g = pages.get(r.page);
      if (g !== undefined && !out.includes(g)) out.push(g);
      found ||= g !== undefined;
    }
    if (!found) throw new MachineBuildError(`${where}: no task maps page ${hex(r.page)}`);
  }
  return out;
}

/** The host half of the VM config from the scenario (`memory` is filled in by the caller). */
function vmConfig(s: Scenario, memory: HostMemoryConfig): VmConfig {
  const m = s.machine;
  const host = resolveHostProfile(m.host.profile, m.host.toggles);
  // "auto": the async-PF features this host has (what a VMM passes through by default).
  const kvmFeatures = m.cpuid === 'auto' ? (AUTO_FEATURES & host.supportedKvmFeatures) >>> 0 : kvmFeatureEax(...m.cpuid);
  return {
    profile: m.host.profile,
    toggles: m.host.toggles,
    ...(m.design === undefined ? {} : { design: m.design }),
    kvmFeatures,
    memory,
    ...layerKnobs(HOST_KNOBS, m.host),
  };
}

/** Host memory config with pages given as frames. */
function memoryConfig(s: Scenario, plan: Map<string, Map<number, number>>, frames: number): HostMemoryConfig {
  const hm = s.hostMemory;
  const pages: PageRangeConfig[] = [];
  hm.pages.forEach((p, i) => {
    for (const gfn of gfnsOf([p.ref], plan, frames, `hostMemory.pages[${i}]`)) pages.push(p.private === true ? { gfn, count: 1, backing: p.backing, private: true } : { gfn, count: 1, backing: p.backing });
  });
  return {
    pages,
    evictions: hm.evictions.map((e, i) => ({ t: e.t, gfns: gfnsOf(e.pages, plan, frames, `hostMemory.evictions[${i}]`) })),
    ...(hm.defaultBacking === undefined ? {} : { defaultBacking: hm.defaultBacking }),
    ...(hm.swapLatency === undefined ? {} : { swapLatency: hm.swapLatency }),
    ...(hm.remoteLatency === undefined ? {} : { remoteLatency: hm.remoteLatency }),
    ...(hm.failLatency === undefined ? {} : { failLatency: hm.failLatency }),
    ...(hm.limitPages === undefined ? {} : { limitPages: hm.limitPages }),
    ...(hm.memslots === undefined ? {} : { memslots: hm.memslots }),
  };
}

/** Host-side actions shared by the kernel and the bare machine; false when `a` is a guest action. */
function hostAction(kvm: Kvm, a: Action, gfns: (refs: readonly PageRef[]) => number[], raiseIrq: (cpu: number, vector: number) => void): boolean {
  switch (a.do) {
    case 'nmi':
      kvm.injectNmi(a.cpu);
      return true;
    case 'smi':
      kvm.injectSmi(a.cpu, a.duration);
      return true;
    case 'init':
      kvm.vcpuInit(a.cpu);
      return true;
    case 'reset':
      kvm.vcpuReset(a.cpu);
      return true;
    case 'sipi':
      kvm.vcpuSipi(a.cpu, a.vector);
      return true;
    case 'irq':
      raiseIrq(a.cpu, a.vector);
      return true;
    case 'vcpu_destroy':
      kvm.destroyVcpu(a.cpu);
      return true;
    case 'vm_destroy':
      kvm.destroyVm();
      return true;
    case 'evict':
      kvm.evict(gfns(a.pages));
      return true;
    case 'set_msr':
      kvm.setMsr(a.cpu, a.msr, a.value);
      return true;
    case 'get_msr':
      kvm.getMsrTraced(a.cpu, a.msr);
      return true;
    case 'save_restore': {
      // Migration of the APF MSRs: read them on the source, start from a fresh vCPU on the
      // destination (no queue, token counter 0: only the MSRs travel), restore in `order`.
      const en = kvm.getMsr(a.cpu, MSR_KVM_ASYNC_PF_EN) ?? 0n;
      const int = kvm.getMsr(a.cpu, MSR_KVM_ASYNC_PF_INT) ?? 0n;
      if (a.reset !== false) kvm.freshVcpuForMigration(a.cpu);
      const order = a.order === 'int-en' ? [MSR_KVM_ASYNC_PF_INT, MSR_KVM_ASYNC_PF_EN] : [MSR_KVM_ASYNC_PF_EN, MSR_KVM_ASYNC_PF_INT];
      for (const msr of order) kvm.setMsr(a.cpu, msr, msr === MSR_KVM_ASYNC_PF_EN ? en : int);
      return true;
    }
    case 'page_ready': {
      // What kvm_arch_async_page_present does, for a token of the scenario's choosing on any vCPU.
      if (!kvm.injectPageReady(a.cpu, a.token)) throw new ActionError(`page_ready on cpu${a.cpu}: no APF area registered`);
      return true;
    }
    case 'memslot_delete':
    case 'memslot_readd':
    case 'memslot_move':
    case 'memslot_resize':
    case 'hot_unplug':
    case 'page_migrate':
      addressSpaceAction(kvm, a, gfns);
      return true;
    case 'stop':
      return true;
    default:
      return false;
  }
}

/** KVM_CREATE_VM; a host that cannot give the scenario's private memory is the scenario's mistake, named where the file asks for it. */
function createVm(s: Scenario, sim: Simulation, memory: GuestMemory, config: VmConfig): Kvm {
  try {
    return new Kvm(sim, memory, config);
  } catch (e) {
    const i = s.hostMemory.pages.findIndex((p) => p.private === true);
    if (e instanceof RangeError && i >= 0 && /private memory/.test(e.message)) throw new MachineBuildError(`hostMemory.pages[${i}].private: ${e.message}`);
    throw e;
  }
}

/** KVM_CREATE_VCPU for vCPU `i`, with its `machine.vcpuIds` id if the scenario gives one; a refused id is the scenario's mistake. */
function createVcpu(kvm: Kvm, i: number, ids: readonly number[] | undefined): KvmVcpu {
  const id = ids?.[i];
  try {
    return kvm.createVcpu(i, id);
  } catch (e) {
    if (e instanceof RangeError && id !== undefined) throw new MachineBuildError(`machine.vcpuIds[${i}]: ${e.message}`);
    throw e;
  }
}

function irqLine(kvm: Kvm): (cpu: number, vector: number) => void {
  return (cpu, vector) => kvm.injectIrq(cpu, vector);
}

function describeHost(kvm: Kvm): string {
  const h = kvm.profile;
  return `host ${h.name} (${h.version}): page ready as ${h.pageReady === 'interrupt' ? 'an interrupt' : 'a #PF'}; CPUID 0x40000001.EAX = ${hex(kvm.cpuidKvmFeatures)}`;
}

/**
 * guest/bare's scripted guest on every vCPU: each runs its section's script (a vCPU without a
 * section runs an empty one: it logs `done` and halts with interrupts off).
 */
function buildBareMachine(s: Scenario, sim: Simulation, bare: NonNullable<Scenario['bare']>, extras: MachineExtras): Machine {
  const memory = new GuestMemory(s.machine.memoryBytes);
  const frames = s.machine.memoryBytes / PAGE_SIZE;
  const plan = new Map<string, Map<number, number>>();
  const kvm = createVm(s, sim, memory, vmConfig(s, memoryConfig(s, plan, frames)));
  extras.inspect?.({ kvm, memory });
  const vcpus = Array.from({ length: s.machine.vcpus }, (_, id) => createVcpu(kvm, id, s.machine.vcpuIds));
  const guests = vcpus.map((v) => {
    const sec = bare.cpus.find((c) => c.cpu === v.id);
    return new BareGuest({
      sim,
      memory,
      cpu: v.cpu,
      script: sec?.script ?? [],
      ...(sec?.pf === undefined ? {} : { pf: sec.pf }),
      ...(sec?.pageReady === undefined ? {} : { pageReady: sec.pageReady }),
      apfArea: sec?.apfArea ?? BARE_DEFAULT_APF_AREA + 64 * v.id,
    });
  });
  const raiseIrq = irqLine(kvm);
  const scripted = bare.cpus.map((c) => `vCPU ${c.cpu} APF area at ${hex(c.apfArea)}`).join(', ');
  return {
    sim,
    start() {
      for (const g of guests) g.load();
      kvm.start();
    },
    done: () => guests.every((g) => g.done()),
    panicMessage: () => undefined,
    shutdown: () => vcpus.some((v) => v.cpu.activity === 'shutdown'),
    destroyed: () => kvm.destroyed,
    perform(a) {
      if (!hostAction(kvm, a, (refs) => gfnsOf(refs, plan, frames, 'evict'), raiseIrq)) throw new ActionError(`"${a.do}" needs the guest kernel; the bare-metal guest has no such path`);
    },
    describe: () => [`${describeHost(kvm)}; bare-metal scripted guest, ${bare.cpus.length === 1 && vcpus.length === 1 ? `APF area at ${hex(guests[0]!.apfArea)}` : scripted}`],
    effectiveToggles: () => ({ host: { ...kvm.toggles }, guest: {} }),
  };
}

/**
 * A `set_msr` event that registers an APF area inside the guest kernel's page-table region: the
 * host's flag and token writes would land in page-table entries. Refused before the run (the file's
 * mistake, exit 2), like the same area in the bare guest's page tables.
 */
function checkKernelApfAreas(s: Scenario, layout: GuestLayoutPlan): void {
  const start = PAGE_TABLE_BASE;
  const end = layout.userPoolStart;
  // The most any host era writes into the area (flags and token, from v5.8).
  const written = hostWritableBytes('v5.8').length;
  for (const e of s.events) {
    const a = e.action;
    if (a.do !== 'set_msr' || a.msr !== MSR_KVM_ASYNC_PF_EN || (a.value & 1n) === 0n) continue;
    const gpa = Number(a.value & ASYNC_PF_EN_GPA_MASK);
    if (gpa + written <= start || gpa >= end) continue;
    throw new MachineBuildError(
      `events[${e.index}]: set_msr registers an APF area at ${hex(gpa)}, inside the guest kernel's page tables (${hex(start)}-${hex(end - 1)}): ` +
        `the host's flag and token writes would overwrite page-table entries`,
    );
  }
}

export function buildMachine(s: Scenario, sim: Simulation, extras: MachineExtras = {}): Machine {
  if (s.bare !== undefined) return buildBareMachine(s, sim, s.bare, extras);
  const m = s.machine;
  const memory = new GuestMemory(m.memoryBytes);
  const frames = m.memoryBytes / PAGE_SIZE;
  // An L1 hypervisor (docs/nested.md) adds a vCPU-thread task per L2 guest, and L2 memory backing.
  const nested = m.nested === undefined ? null : buildNested(m.memoryBytes, m.nested);
  const tasks = nested === null ? s.tasks : [...s.tasks, ...nested.hypervisor.taskSpecs()];
  let layout: GuestLayoutPlan;
  try {
    layout = planGuestLayout(m.memoryBytes, m.vcpus, tasks);
  } catch (e) {
    // Guest RAM too small for the page tables and the tasks' pages: the scenario's mistake, found before the run.
    if (e instanceof RangeError && e.message.startsWith('guest layout:')) throw new MachineBuildError(`machine.memory: ${e.message.replace(/^guest layout: /, '')}`);
    throw e;
  }
  checkKernelApfAreas(s, layout);
  const plan = planPages(layout, tasks);
  const memCfg = memoryConfig(s, plan, frames);
  const kvm = createVm(s, sim, memory, vmConfig(s, nested === null ? memCfg : nested.hostMemory(memCfg)));
  extras.inspect?.({ kvm, memory });
  const vcpus = Array.from({ length: m.vcpus }, (_, i) => createVcpu(kvm, i, m.vcpuIds));
  const raiseIrq = irqLine(kvm);
  const kernel = new GuestKernel({
    sim,
    memory,
    cpus: vcpus.map((v) => v.cpu),
    profile: m.guest.profile as GuestProfileName,
    toggles: m.guest.toggles as Partial<Record<GuestToggle, boolean>>,
    ...(m.design === undefined ? {} : { design: m.design }),
    tasks,
    layout,
    raiseIrq,
    ...(nested === null ? {} : { hypervisor: nested.hypervisor }),
    raiseNmi: (cpu) => kvm.injectNmi(cpu),
    ...(m.vcpuIds === undefined ? {} : { apicIds: m.vcpuIds }),
    ...(extras.handlers === undefined ? {} : { handlers: extras.handlers }),
    ...layerKnobs(GUEST_KNOBS, m.guest),
  });

  if (nested !== null) {
    try {
      nested.check(kernel);
    } catch (e) {
      throw new MachineBuildError(e instanceof Error ? e.message : String(e));
    }
  }

  const names = new Map<number, string>();
  for (const [task, pages2] of plan) {
    for (const [gva, gfn] of pages2) {
      const prev = names.get(gfn);
      names.set(gfn, prev === undefined ? `${task}:${hex(gva)}` : `${prev}, ${task}:${hex(gva)}`);
    }
  }

  const cpuOf = (a: { cpu?: number }): number => a.cpu ?? 0;
  const guestRequest = (cpu: number, action: Parameters<GuestKernel['request']>[1]): void => {
    try {
      kernel.request(cpu, action);
    } catch (e) {
      throw new ActionError(`guest ${action} on cpu${cpu}: ${e instanceof Error ? e.message : String(e)}`);
    }
  };

  return {
    sim,
    start() {
      kernel.boot();
      kvm.start();
    },
    done: () => kernel.allTasksExited(),
    panicMessage: () => kernel.panicked()?.message,
    shutdown: () => vcpus.some((v) => v.cpu.activity === 'shutdown'),
    destroyed: () => kvm.destroyed,
    perform(a: Action) {
      if (hostAction(kvm, a, (refs) => gfnsOf(refs, plan, frames, 'evict'), raiseIrq)) return;
      switch (a.do) {
        case 'cpu_offline':
          return guestRequest(a.cpu, 'offline');
        case 'cpu_online':
          return guestRequest(a.cpu, 'online');
        case 'suspend':
          return guestRequest(0, 'suspend');
        case 'resume':
          return guestRequest(0, 'resume');
        case 'reboot':
          return guestRequest(0, 'reboot');
        case 'kexec':
          return guestRequest(cpuOf(a), 'kexec');
        case 'crash':
          return guestRequest(cpuOf(a), 'crash');
        case 'apf_disable':
          return guestRequest(a.cpu, 'apf_disable');
        case 'apf_enable':
          return guestRequest(a.cpu, 'apf_enable');
        case 'lapic_disable':
          return guestRequest(a.cpu, 'lapic_disable');
        case 'lapic_enable':
          return guestRequest(a.cpu, 'lapic_enable');
        case 'nested_migrate':
          if (nested === null) throw new ActionError('"nested_migrate" needs nested guests ("machine.nested")');
          return nested.migrate(kvm, a);
        default:
          throw new ActionError(`cannot perform "${a.do}"`);
      }
    },
    pageName: (gfn) => names.get(gfn) ?? nested?.pageName(gfn),
    describe: () => [
      `${describeHost(kvm)}; guest ${kernel.config.profile} (${kernel.config.facts.version})`,
      ...(m.vcpuIds === undefined ? [] : [`vCPU ids (KVM vcpu_id = x2APIC id): ${vcpus.map((v) => `cpu${v.id}=${v.vcpuId}`).join(', ')}`]),
      ...(nested === null ? [] : [nested.describe()]),
    ],
    effectiveToggles: () => ({ host: { ...kvm.toggles }, guest: { ...kernel.config.toggles } }),
  };
}
