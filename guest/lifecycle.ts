/**
 * Boot, CPU bring-up, and the administrative paths: CPU offline/online, suspend/resume, reboot,
 * kexec and crash (spec §4.9), plus the minimal "next kernel" that runs after kexec or kdump.
 *
 * Which paths disable APF on which CPUs (spec §4.9; docs/guest.md has the table):
 * - CPU offline: the dying CPU runs kvm_guest_cpu_offline(false): disable APF, then wake-all.
 * - suspend: non-boot CPUs go through CPU offline; the boot CPU's syscore suspend disables APF
 *   (and wakes all) only with `teardown_boot_cpu` (8b79feffeca2); resume re-inits it.
 * - reboot and kexec: the reboot notifier disables APF on every online CPU (all profiles), then
 *   the other CPUs are stopped.
 * - crash (kdump): with `disable_apf_on_crash` (3d6b84132d2a) the crashing CPU disables APF;
 *   the other CPUs are stopped by the NMI shootdown, which disables their LAPIC but not APF.
 */
import { CR0_PE, CR0_PG, CR0_WP, type TrapFrame } from '../shared-abi/arch';
import { KVM_CPUID_FEATURES } from '../shared-abi/cpuid';
import { formatGpa, type Gpa, type Gva } from '../shared-abi/addr';
import { X86_MSR } from '../shared-abi/msr';
import { HYPERVISOR_CALLBACK_VECTOR, X86_EXCEPTION } from '../shared-abi/vectors';
import { Frame, asCpuid, compute, insn, load32, readCr2, store32, type Code } from './code';
import type { EntryHandler } from './entry';
import type { GuestKernel, PerCpu } from './kernel';
import { APIC_LVT_TSC_DEADLINE, APIC_SPIV_ENABLE, CALL_FUNCTION_VECTOR, LOCAL_TIMER_VECTOR, RESCHEDULE_VECTOR, SPURIOUS_APIC_VECTOR, eoi, icrValue, ICR_INIT, ICR_NMI, sendIpi, sendReschedule } from './lapic';
import { MGMT_VECTOR } from './admin';
import { directMap } from './layout';
import { idleProgram } from './idle';
import { kwrmsr } from './msr';
import { haltForever, kernelPanic } from './panic';
import { preemptCountAdd, preemptCountSub } from './preempt';
import { rawLock, rawUnlock } from './raw_spinlock';
import { schedule, selectTaskRq, tryToWakeUp, wakeUpNewTask } from './sched';
import { sleepFor } from './sleep';
import { addTimer, reprogramTimer } from './timer';
import type { Task } from './task';

/** "KVMKVMKVM\0\0\0" in EBX, ECX, EDX of CPUID 0x40000000. */
const KVM_SIGNATURE = [0x4b4d564b, 0x564b4d56, 0x4d] as const;
/** What the next kernel writes over the previous kernel's APF areas after a plain kexec. */
export const NEXT_KERNEL_CANARY = 0x6e6b6e6c;

// ---------------------------------------------------------------------------------------------
// Boot
// ---------------------------------------------------------------------------------------------

function* lapicOn(k: GuestKernel): Code {
  yield* kwrmsr(k, X86_MSR.X2APIC_SPIV, BigInt(APIC_SPIV_ENABLE | SPURIOUS_APIC_VECTOR));
  k.cpu().lapicOn = true;
}

function* lapicOff(k: GuestKernel): Code {
  yield* kwrmsr(k, X86_MSR.X2APIC_SPIV, BigInt(SPURIOUS_APIC_VECTOR));
  k.cpu().lapicOn = false;
}

function* lapicTimerInit(k: GuestKernel): Code {
  const pc = k.cpu();
  pc.programmed = 0;
  yield* kwrmsr(k, X86_MSR.X2APIC_LVT_TIMER, BigInt(LOCAL_TIMER_VECTOR | APIC_LVT_TSC_DEADLINE));
}

function* enablePaging(k: GuestKernel): Code {
  const pc = k.cpu();
  pc.cr3 = k.layout.kernelPml4;
  yield insn.writeCr(3, k.layout.kernelPml4);
  yield insn.writeCr(0, CR0_PE | CR0_WP | CR0_PG);
}

/** CPUID 0x40000000 signature, then the KVM feature leaf. */
function* detectKvm(k: GuestKernel): Code {
  const sig = asCpuid(yield insn.cpuid(0x40000000), 'cpuid 0x40000000');
  if (sig.ebx === KVM_SIGNATURE[0] && sig.ecx === KVM_SIGNATURE[1] && sig.edx === KVM_SIGNATURE[2]) {
    const f = asCpuid(yield insn.cpuid(KVM_CPUID_FEATURES), 'cpuid 0x40000001');
    k.kvmFeatures = f.eax >>> 0;
  } else {
    k.kvmFeatures = 0;
  }
}

/** kvm_guest_init: the global part (static key, IDT hook or the 0xf3 system vector). */
function kvmGuestInit(k: GuestKernel): void {
  const f = k.config.facts;
  if (f.pfEntry === 'idt_hook') {
    // G-5.2: async_page_fault replaces the #PF gate whenever the host offers ASYNC_PF.
    k.apfStaticKey = k.hasFeature('ASYNC_PF');
  } else {
    const on = k.hasFeature(f.requiredFeature) && k.config.toggles.kvmapf;
    k.apfStaticKey = on;
    k.apfIntGate = on && f.pageReady === 'interrupt';
  }
}

/** Per-CPU bring-up shared by the BSP and the APs (IRQs off). */
function* cpuUp(k: GuestKernel): Code {
  const pc = k.cpu();
  yield* lapicOn(k);
  yield* k.handlers.cpuInit(k.apfApi());
  yield* lapicTimerInit(k);
  pc.tickDeadline = Infinity;
  pc.state = 'online';
  k.emit(pc.id, 'cpu_online', {});
}

/** start_kernel on CPU 0: paging, CPUID, LAPIC, kvm_guest_init, APs, then the initial tasks. */
export function* bootCpu0(k: GuestKernel): Code {
  const pc = k.cpu();
  pc.idt = 'kernel';
  yield* enablePaging(k);
  yield* detectKvm(k);
  kvmGuestInit(k);
  yield* cpuUp(k);
  k.smpReady = true;
  // Wait (bounded, like the "CPU failed to boot" timeout) for the APs to come online.
  for (let i = 0; i < 1000 && k.cpus.some((c) => c.state === 'booting'); i++) yield* compute(1000);
  for (const c of k.cpus) {
    if (c.state === 'booting') {
      k.warn(`smpboot: CPU ${c.id} failed to come online`);
      c.state = 'down';
    }
  }
  k.mode = 'running';
  let rr = 0;
  const online = k.cpus.filter((c) => c.online).map((c) => c.id);
  for (const spec of k.specs) {
    const cpu = spec.cpu ?? online[rr++ % online.length]!;
    if ((spec.start ?? 0) <= k.sim.now) {
      const t = k.createSpecTask(spec, cpu);
      yield* wakeUpNewTask(k, t);
    } else {
      addTimer(pc, k.newTimer(spec.start ?? 0, `create:${spec.name}`, () => createLater(k, spec, cpu)));
    }
  }
  yield* reprogramTimer(k);
  yield insn.sti();
}

function* createLater(k: GuestKernel, spec: (typeof k.specs)[number], cpu: number): Code {
  const t = k.createSpecTask(spec, cpu);
  yield* wakeUpNewTask(k, t);
}

/** secondary_startup: an AP at boot (waits for the BSP) or a hot-plugged CPU after INIT. */
export function* apStartup(k: GuestKernel, hotplug: boolean): Code {
  const pc = k.cpu();
  pc.idt = 'kernel';
  yield* enablePaging(k);
  while (!k.smpReady) yield insn.pause();
  yield* cpuUp(k);
  if (hotplug) k.count('cpu_online');
  yield insn.sti();
}

/** INIT/RESET of a vCPU (GuestCode.reset): bring an offline CPU up; anything else is fatal. */
export function cpuResetPath(k: GuestKernel, pc: PerCpu, kind: 'init' | 'reset'): void {
  pc.programmed = 0;
  pc.tickDeadline = Infinity;
  pc.lapicOn = false;
  pc.cr3 = 0;
  pc.idt = 'none';
  if (kind === 'init' && (pc.state === 'offline' || pc.state === 'down' || pc.state === 'booting') && k.mode !== 'panicked') {
    const idle = pc.idle;
    pc.curr = idle;
    idle.onCpu = true;
    idle.needResched = false;
    idle.preemptCount = 0;
    idle.stack = [new Frame('program', idle.name, idleProgram(k, apStartup(k, pc.state === 'offline')))];
    pc.state = 'booting';
    return;
  }
  // A CPU reset under a live kernel: its state is gone. Park it.
  const idle = pc.idle;
  if (pc.curr !== idle) pc.curr.onCpu = false;
  pc.curr = idle;
  idle.onCpu = true;
  const was = pc.state;
  idle.stack = [new Frame('program', idle.name, resetUnderKernel(k, kind, was))];
}

function* resetUnderKernel(k: GuestKernel, kind: string, was: string): Code<never> {
  const pc = k.cpu();
  pc.idt = 'kernel';
  yield* enablePaging(k);
  if (k.mode === 'running' && was !== 'stopped') yield* kernelPanic(k, `CPU ${pc.id} received ${kind.toUpperCase()} while ${was}`);
  return yield* haltForever(k, 'stopped');
}

// ---------------------------------------------------------------------------------------------
// The management console interrupt and the per-CPU hotplug thread
// ---------------------------------------------------------------------------------------------

/** The mgmt console handler (vector 0x40): take this CPU's requests and start them. */
export function* mgmtInterrupt(k: GuestKernel): Code {
  yield* eoi(k);
  const me = k.cpu().id;
  const mine = k.mgmtQueue.filter((r) => r.handler === me);
  for (const r of mine) k.mgmtQueue.splice(k.mgmtQueue.indexOf(r), 1);
  for (const r of mine) {
    const target = k.cpus[r.cpu]!;
    switch (r.action) {
      case 'offline':
        if (!target.online) k.warn(`cpu_down(${r.cpu}): CPU is not online`);
        else if (k.cpus.filter((c) => c.online).length <= 1) k.warn(`cpu_down(${r.cpu}): cannot offline the last online CPU`);
        else yield* queueHotplugWork(k, me, () => offlineWork(k));
        break;
      case 'online':
        if (target.state !== 'offline' && target.state !== 'down') k.warn(`cpu_up(${r.cpu}): CPU is ${target.state}`);
        else yield* kwrmsr(k, X86_MSR.X2APIC_ICR, icrValue(r.cpu, ICR_INIT, 0));
        break;
      case 'suspend':
        k.resumeRequested = false;
        yield* queueHotplugWork(k, me, () => suspendWork(k));
        break;
      case 'resume':
        k.resumeRequested = true;
        break;
      case 'reboot':
      case 'kexec':
        yield* queueHotplugWork(k, me, () => rebootWork(k, r.action === 'reboot' ? 'reboot' : 'kexec'));
        break;
      case 'crash':
        yield* crashPath(k, 'sysrq triggered crash');
        break;
      case 'apf_disable':
        yield* k.handlers.disable(k.apfApi());
        break;
      case 'apf_enable':
        yield* k.handlers.cpuInit(k.apfApi());
        break;
      case 'lapic_disable':
        yield* lapicOff(k);
        break;
      case 'lapic_enable':
        yield* lapicOn(k);
        yield* lapicTimerInit(k);
        yield* reprogramTimer(k);
        break;
    }
  }
}

/** NMI context: act on `lapic_enable` requests for this CPU (sent by NMI, see GuestKernel.request). */
export function* nmiConsoleRequests(k: GuestKernel): Code {
  const pc = k.cpu();
  const mine = k.mgmtQueue.filter((r) => r.handler === pc.id && r.action === 'lapic_enable' && !pc.lapicOn);
  for (const r of mine) {
    k.mgmtQueue.splice(k.mgmtQueue.indexOf(r), 1);
    yield* lapicOn(k);
    yield* lapicTimerInit(k);
    pc.programmed = 0;
    pc.calls.push(() => reprogramTimer(k));
    yield* sendIpi(k, pc.id, CALL_FUNCTION_VECTOR);
  }
}

/** Queue `work` for CPU `cpu`'s hotplug thread (cpuhp/N), creating the thread on first use. */
function* queueHotplugWork(k: GuestKernel, cpu: number, work: () => Code): Code {
  const pc = k.cpus[cpu]!;
  pc.hpWork.push(work);
  let t = pc.hpThread;
  if (t === null) {
    t = k.newTask(`cpuhp/${cpu}`, 'kthread', cpu, [cpu], 0, null, null, []);
    t.stack = [new Frame('program', t.name, hotplugThread(k, t))];
    pc.hpThread = t;
    yield* wakeUpNewTask(k, t);
  } else {
    yield* tryToWakeUp(k, t);
  }
}

function* hotplugThread(k: GuestKernel, t: Task): Code<never> {
  yield* finishTaskSwitchFirst(k);
  for (;;) {
    const pc = k.cpus[t.cpu]!;
    const w = pc.hpWork.shift();
    if (w !== undefined) {
      yield* w();
      continue;
    }
    t.state = 'interruptible';
    t.waitReason = 'cpuhp work';
    yield* schedule(k);
  }
}

function* finishTaskSwitchFirst(k: GuestKernel): Code {
  const pc = k.cpu();
  yield* rawUnlock(k, pc.rqLock);
  yield insn.sti();
}

// ---------------------------------------------------------------------------------------------
// CPU offline
// ---------------------------------------------------------------------------------------------

/** takedown_cpu on the dying CPU: APF teardown and wake-all, migrate tasks and timers, die. */
function* offlineWork(k: GuestKernel): Code {
  const pc = k.cpu();
  if (!pc.online) return;
  yield insn.cli();
  pc.state = 'dying';
  // kvm_cpu_down_prepare -> kvm_guest_cpu_offline(shutdown = false)
  const api = k.apfApi();
  yield* k.handlers.disable(api);
  yield* k.handlers.wakeAll(api);
  // Migrate the runnable tasks.
  yield* rawLock(k, pc.rqLock);
  const moved = pc.queue.splice(0);
  yield* rawUnlock(k, pc.rqLock);
  for (const t of moved) {
    const target = selectTaskRq(k, t);
    const rq = k.cpus[target]!;
    yield* rawLock(k, rq.rqLock);
    k.emit(pc.id, 'sched_migrate_task', { task: t.name, orig_cpu: pc.id, dest_cpu: target });
    k.count('migrations');
    t.cpu = target;
    rq.queue.push(t);
    if (rq.curr.isIdle) rq.curr.needResched = true;
    yield* rawUnlock(k, rq.rqLock);
    yield* sendReschedule(k, target);
  }
  // Migrate the timers.
  const dest = k.cpus.find((c) => c.online)!;
  const timers = pc.timers.splice(0);
  for (const tm of timers) if (!tm.cancelled) addTimer(dest, tm);
  if (timers.length > 0) {
    dest.calls.push(() => reprogramTimer(k));
    yield* sendIpi(k, dest.id, CALL_FUNCTION_VECTOR);
  }
  pc.tickDeadline = Infinity;
  pc.programmed = 0;
  yield* kwrmsr(k, X86_MSR.IA32_TSC_DEADLINE, 0n);
  k.emit(pc.id, 'cpu_offline', { migrated: moved.length });
  k.count('cpu_offline');
  yield insn.sti();
  // The hotplug thread goes back to sleep; the idle task sees 'dying' and plays dead.
}

// ---------------------------------------------------------------------------------------------
// Suspend / resume
// ---------------------------------------------------------------------------------------------

function* waitUntil(k: GuestKernel, cond: () => boolean, why: string): Code<boolean> {
  for (let i = 0; i < 1000; i++) {
    if (cond()) return true;
    yield* sleepFor(k, 100_000, 'uninterruptible', why);
  }
  k.warn(`timed out waiting: ${why}`);
  return false;
}

function* suspendWork(k: GuestKernel): Code {
  const pc = k.cpu();
  if (pc.id !== 0) {
    k.warn('suspend must run on CPU 0');
    return;
  }
  k.emit(0, 'suspend', { phase: 'start' });
  k.count('suspend');
  // disable_nonboot_cpus: each goes through CPU offline on its own hotplug thread.
  const others = k.cpus.filter((c) => c.id !== 0 && c.online);
  for (const c of others) {
    c.calls.push(() => queueHotplugWork(k, c.id, () => offlineWork(k)));
    yield* sendIpi(k, c.id, CALL_FUNCTION_VECTOR);
  }
  yield* waitUntil(k, () => others.every((c) => c.state === 'offline'), 'suspend: non-boot CPUs going offline');
  // syscore_suspend on the boot CPU, IRQs off.
  yield insn.cli();
  const api = k.apfApi();
  if (k.config.toggles.teardown_boot_cpu) {
    yield* k.handlers.disable(api);
    yield* k.handlers.wakeAll(api);
  }
  const t = k.current();
  preemptCountAdd(k, t, 1);
  pc.state = 'suspended';
  pc.tickDeadline = Infinity;
  pc.programmed = 0;
  yield* kwrmsr(k, X86_MSR.IA32_TSC_DEADLINE, 0n);
  k.emit(0, 'suspend', { phase: 'sleeping' });
  while (!k.resumeRequested) {
    yield insn.stiHlt();
    yield insn.cli();
  }
  k.resumeRequested = false;
  pc.state = 'online';
  k.emit(0, 'resume', {});
  k.count('resume');
  if (k.config.toggles.teardown_boot_cpu) yield* k.handlers.cpuInit(api);
  pc.tickDeadline = k.sim.now + k.tickNs;
  yield* reprogramTimer(k);
  preemptCountSub(k, t, 1);
  yield insn.sti();
  // enable_nonboot_cpus
  for (const c of others) yield* kwrmsr(k, X86_MSR.X2APIC_ICR, icrValue(c.id, ICR_INIT, 0));
  yield* waitUntil(k, () => others.every((c) => c.online), 'resume: non-boot CPUs coming online');
}

// ---------------------------------------------------------------------------------------------
// Reboot, kexec, crash
// ---------------------------------------------------------------------------------------------

/** The reboot notifier (SYS_RESTART) on every online CPU, then stop the others; reboot or kexec. */
function* rebootWork(k: GuestKernel, kind: 'reboot' | 'kexec'): Code {
  const pc = k.cpu();
  const others = k.cpus.filter((c) => c.id !== pc.id && c.online);
  let done = 0;
  for (const c of others) {
    c.calls.push(() => rebootNotifyOne(k, () => done++));
    yield* sendIpi(k, c.id, CALL_FUNCTION_VECTOR);
  }
  yield insn.cli();
  yield* k.handlers.disable(k.apfApi());
  yield insn.sti();
  for (let i = 0; i < 10_000 && done < others.length; i++) yield* compute(1000);
  yield insn.cli();
  k.mode = kind === 'reboot' ? 'rebooted' : 'kexec';
  for (const c of others) yield* kwrmsr(k, X86_MSR.X2APIC_ICR, icrValue(c.id, ICR_NMI, 0));
  k.emit(pc.id, kind, {});
  k.count(kind);
  if (kind === 'reboot') yield* haltForever(k, 'stopped');
  yield* bootNextKernel(k, 'kexec');
}

function* rebootNotifyOne(k: GuestKernel, done: () => void): Code {
  yield* k.handlers.disable(k.apfApi());
  done();
}

/** panic -> __crash_kexec -> machine_crash_shutdown, then the kdump kernel (IRQ context is fine). */
export function* crashPath(k: GuestKernel, message: string): Code<never> {
  const pc = k.cpu();
  yield insn.cli();
  k.mode = 'crashed';
  k.emit(pc.id, 'crash', { message });
  k.count('crash');
  if (k.config.toggles.disable_apf_on_crash) yield* k.handlers.disable(k.apfApi());
  // NMI shootdown: the others save state, disable their LAPIC and halt.
  const others = k.cpus.filter((c) => c.id !== pc.id && (c.online || c.state === 'dying' || c.state === 'suspended'));
  for (const c of others) yield* kwrmsr(k, X86_MSR.X2APIC_ICR, icrValue(c.id, ICR_NMI, 0));
  for (let i = 0; i < 1000 && others.some((c) => c.state !== 'stopped'); i++) yield* compute(1000);
  yield* lapicOff(k);
  return yield* bootNextKernel(k, 'kdump');
}

/** Jump to the next kernel on this CPU: a fresh context that never returns here. */
function* bootNextKernel(k: GuestKernel, kind: 'kexec' | 'kdump'): Code<never> {
  const pc = k.cpu();
  const t = k.newTask(kind === 'kexec' ? 'kexec-kernel' : 'kdump-kernel', 'kthread', pc.id, [pc.id], 0, null, null, []);
  t.state = 'running';
  t.onCpu = true;
  t.onRq = true;
  t.stack = [new Frame('program', t.name, nextKernelMain(k, kind))];
  pc.curr.onCpu = false;
  pc.curr = t;
  pc.state = 'next_kernel';
  yield insn.pause();
  throw new Error('the previous kernel resumed after kexec');
}

// ---------------------------------------------------------------------------------------------
// The next kernel (after kexec / kdump)
// ---------------------------------------------------------------------------------------------

/**
 * A minimal next kernel: it never enables APF. After a plain kexec it owns the previous kernel's
 * APF areas and fills them with its own data; after kdump it preserves them for the dump. Either
 * way it watches them: a change means the host still writes into memory APF no longer owns.
 */
function* nextKernelMain(k: GuestKernel, kind: 'kexec' | 'kdump'): Code<never> {
  const pc = k.cpu();
  pc.idt = 'next_kernel';
  k.emit(pc.id, 'next_kernel_boot', { kind });
  pc.cr3 = k.layout.kernelPml4;
  yield insn.writeCr(3, k.layout.kernelPml4);
  k.staleSnapshot = [];
  for (const c of k.cpus) {
    const gpa = k.layout.apfAreaGpa(c.id, 0);
    for (const off of [0, 4]) {
      const gva = directMap(gpa + off);
      let value: number;
      if (kind === 'kexec') {
        value = NEXT_KERNEL_CANARY;
        yield* store32(gva, value);
      } else {
        value = yield* load32(gva);
      }
      k.staleSnapshot.push({ gva, gpa: gpa + off, value, cpu: c.id });
    }
  }
  yield* lapicOn(k);
  for (;;) {
    yield insn.stiHlt();
    yield insn.cli();
    yield* checkStale(k);
  }
}

function* checkStale(k: GuestKernel): Code {
  const me = k.cpu().id;
  for (const s of k.staleSnapshot) {
    const v = yield* load32(s.gva as Gva);
    if (v === s.value) continue;
    if (k.mode === 'crashed' && s.cpu !== me) {
      // kvm_crash_shutdown tears down APF on the crashing CPU only; the NMI shootdown leaves the
      // others' areas registered (their LAPIC off). A write there is the host keeping to the ABI.
      k.emit(me, 'kdump_area_changed', { area_cpu: s.cpu, gpa: s.gpa, before: s.value, after: v });
      s.value = v;
      continue;
    }
    k.bug(
      'stale_apf_write',
      `previous kernel's APF area at ${formatGpa(s.gpa as Gpa)} changed after ${k.mode === 'crashed' ? 'kdump' : 'kexec'}: 0x${s.value.toString(16)} -> 0x${v.toString(16)}`,
    );
    s.value = v;
  }
}

/** IDT of the next kernel. */
export function nextKernelHandler(k: GuestKernel, tf: TrapFrame): EntryHandler {
  const ev = tf.event;
  if (ev.kind === 'interrupt') {
    return { name: 'next_kernel_irq', code: nextKernelIrq(k, tf, ev.vector) };
  }
  if (ev.kind === 'nmi') return { name: 'next_kernel_nmi', code: justIret(tf) };
  return { name: 'next_kernel_fault', code: nextKernelFault(k, tf) };
}

function* justIret(tf: TrapFrame): Code {
  yield insn.iret(tf);
}

function* nextKernelIrq(k: GuestKernel, tf: TrapFrame, vector: number): Code {
  if (vector === HYPERVISOR_CALLBACK_VECTOR) {
    k.warnOnce(`next kernel: unexpected interrupt on vector 0x${vector.toString(16)} (async PF page ready of the previous kernel)`, 'next:0xf3');
    k.count('next_kernel_spurious_apf_irq');
  } else if (vector !== LOCAL_TIMER_VECTOR && vector !== RESCHEDULE_VECTOR && vector !== CALL_FUNCTION_VECTOR && vector !== MGMT_VECTOR) {
    k.warnOnce(`next kernel: unexpected interrupt on vector 0x${vector.toString(16)}`, `next:${vector}`);
  }
  if (vector !== SPURIOUS_APIC_VECTOR) yield* eoi(k);
  yield* checkStale(k);
  yield insn.iret(tf);
}

function* nextKernelFault(k: GuestKernel, tf: TrapFrame): Code {
  const ev = tf.event;
  const vector = ev.kind === 'exception' ? ev.vector : -1;
  const ec = ev.kind === 'exception' ? (ev.errorCode ?? 0) : 0;
  const cr2 = vector === X86_EXCEPTION.PF ? yield* readCr2() : 0;
  k.emit(k.cpu().id, 'unexpected_exception', { vector, error_code: ec, cpl: tf.savedCpl });
  yield* kernelPanic(k, vector === X86_EXCEPTION.PF ? `next kernel: BUG: unable to handle page fault for address: 0x${cr2.toString(16)}` : `next kernel: unexpected exception ${vector}`);
}
