/**
 * The guest's kvm.c async-PF driver (spec §4): the default `ApfHandlers` of each profile, and
 * the `ApfApi` the kernel hands to handlers.
 *
 * Every step that matters for races is its own instruction: the enabled-flag load, the flags
 * load and the separate store of 0 (read-and-reset), the CR2 read, bucket lock and unlock, the
 * token load, the token clear, the ACK WRMSR, the EOI, STI/CLI and HLT.
 */
import { KVM_APF_WAKE_ALL_TOKEN, KVM_PV_REASON_PAGE_NOT_PRESENT, KVM_PV_REASON_PAGE_READY } from '../shared-abi/apf';
import type { Gva } from '../shared-abi/addr';
import type { TrapFrame } from '../shared-abi/arch';
import { APF_ENABLED_OFFSET, APF_FLAGS_OFFSET, APF_TOKEN_OFFSET, apfLayout } from '../shared-abi/layout';
import {
  KVM_ASYNC_PF_DELIVERY_AS_INT,
  KVM_ASYNC_PF_DELIVERY_AS_PF_VMEXIT,
  KVM_ASYNC_PF_ENABLED,
  KVM_ASYNC_PF_SEND_ALWAYS,
  MSR_KVM_ASYNC_PF_ACK,
  MSR_KVM_ASYNC_PF_EN,
  MSR_KVM_ASYNC_PF_INT,
} from '../shared-abi/msr';
import { HYPERVISOR_CALLBACK_VECTOR, PF_VECTOR } from '../shared-abi/vectors';
import { compute, insn, load32, readCr2, store32, type Code } from './code';
import type { ApfApi, ApfField, ApfHandlers } from './handlers';
import type { GuestKernel } from './kernel';
import type { ResolvedGuestConfig } from './profiles';
import { irqsDisabled } from './irqflags';
import { eoi, sendReschedule } from './lapic';
import { krdmsr, kwrmsr } from './msr';
import { kernelPanic } from './panic';
import { schedule, tryToWakeUp } from './sched';
import { spinLock, spinUnlock } from './spinlock';
import { SleepNode, type SleeperBucket } from './sleepers';
import { sourceTrace } from '../sim/trace';

/** Cost of kzalloc(GFP_ATOMIC) of a dummy node, ns. */
export const DUMMY_ALLOC_NS = 100;
/** cpu_relax() between retries after a failed dummy allocation, ns. */
export const CPU_RELAX_NS = 50;

// ---------------------------------------------------------------------------------------------
// Default handlers
// ---------------------------------------------------------------------------------------------

/** kvm_guest_cpu_init, APF part (spec §4.2). */
export function* kvmGuestCpuInit(api: ApfApi): Code {
  const t = api.toggles;
  const f = api.config.facts;
  if (!t.kvmapf || !api.hasFeature(f.requiredFeature)) return;
  let en = BigInt(api.apfAreaGpa()) | KVM_ASYNC_PF_ENABLED;
  if (t.send_always) en |= KVM_ASYNC_PF_SEND_ALWAYS;
  if (t.pf_vmexit && api.hasFeature('ASYNC_PF_VMEXIT')) en |= KVM_ASYNC_PF_DELIVERY_AS_PF_VMEXIT;
  if (f.pageReady === 'interrupt') {
    en |= KVM_ASYNC_PF_DELIVERY_AS_INT;
    const int = BigInt(HYPERVISOR_CALLBACK_VECTOR);
    if (t.int_before_en) {
      yield* api.wrmsr(MSR_KVM_ASYNC_PF_INT, int);
      yield* api.wrmsr(MSR_KVM_ASYNC_PF_EN, en);
    } else {
      yield* api.wrmsr(MSR_KVM_ASYNC_PF_EN, en);
      yield* api.wrmsr(MSR_KVM_ASYNC_PF_INT, int);
    }
  } else {
    yield* api.wrmsr(MSR_KVM_ASYNC_PF_EN, en);
  }
  // Linux sets the flag whatever the WRMSR did (a #GP is only a warning).
  yield* api.setEnabled(true);
  api.trace('kvm_guest_cpu_init', {
    msr_en: en,
    vector: f.pageReady === 'interrupt' ? HYPERVISOR_CALLBACK_VECTOR : PF_VECTOR,
    send_always: t.send_always,
  });
}

/** kvm_pv_disable_apf (spec §4.9). */
export function* kvmPvDisableApf(api: ApfApi): Code {
  if (!(yield* api.enabled())) return;
  yield* api.wrmsr(MSR_KVM_ASYNC_PF_EN, 0n);
  yield* api.setEnabled(false);
  api.trace('kvm_pv_disable_apf');
}

/** kvm_read_and_reset_apf_flags (G-5.2: kvm_read_and_reset_pf_reason). */
export function* kvmReadAndResetApfFlags(api: ApfApi): Code<number> {
  if (!(yield* api.enabled())) return 0;
  const flags = yield* api.apfLoad('flags');
  yield* api.apfStore('flags', 0);
  api.trace('kvm_read_and_reset_apf_flags', { flags });
  return flags;
}

/** G-5.2 do_async_page_fault: switch on the reason (spec §4.3). */
export function* doAsyncPageFault(api: ApfApi, tf: TrapFrame, cr2: number | null): Code<boolean> {
  const reason = yield* api.handlers.readAndResetFlags(api);
  if (reason === KVM_PV_REASON_PAGE_NOT_PRESENT) {
    if (api.toggles.apf_panics) {
      if (!api.interruptsWereEnabled(tf)) yield* api.panic('Host injected async #PF in interrupt disabled region');
      if (!api.userMode(tf)) yield* api.panic('Host injected async #PF in kernel mode');
    }
    const token = cr2 ?? (yield* api.readCr2());
    yield* api.handlers.wait(api, token >>> 0, tf);
    return true;
  }
  if (reason === KVM_PV_REASON_PAGE_READY) {
    const token = cr2 ?? (yield* api.readCr2());
    yield* api.handlers.wake(api, token >>> 0);
    return true;
  }
  return false;
}

/** v5.8+ __kvm_handle_async_pf (spec §4.3). */
export function* kvmHandleAsyncPf(api: ApfApi, tf: TrapFrame, cr2: number | null): Code<boolean> {
  const flags = yield* api.handlers.readAndResetFlags(api);
  if (flags === 0) return false;
  // v5.8: only the exact values 1 and 2 are async; anything else goes on as an ordinary #PF.
  if (api.config.facts.exactFlags === true && flags !== KVM_PV_REASON_PAGE_NOT_PRESENT && flags !== KVM_PV_REASON_PAGE_READY) return false;
  if (api.toggles.apf_panics && !api.interruptsWereEnabled(tf)) yield* api.panic('Host injected async #PF in interrupt disabled region');
  if ((flags & KVM_PV_REASON_PAGE_NOT_PRESENT) !== 0) {
    if (api.toggles.apf_panics && !api.userMode(tf)) yield* api.panic('Host injected async #PF in kernel mode');
    const token = cr2 ?? (yield* api.readCr2());
    yield* api.handlers.wait(api, token >>> 0, tf);
  } else if (flags === KVM_PV_REASON_PAGE_READY && api.config.facts.pageReady === 'pf_reason') {
    const token = cr2 ?? (yield* api.readCr2());
    yield* api.handlers.wake(api, token >>> 0);
  } else {
    api.warnOnce(`Unexpected async PF flags: ${flags.toString(16)}`);
  }
  return true;
}

/**
 * The queueing half of both waits (spec §4.4 step 1, §4.5 steps 1-2), under the token's bucket
 * lock: a node already there is a dummy left by a wake that came first, which is consumed
 * (returns null: nothing to wait for); otherwise this task's waiter node is added. `halted` is
 * evaluated under the lock.
 */
function* kvmAsyncPfQueueTask(api: ApfApi, token: number, halted: () => boolean): Code<SleepNode | null> {
  const b = api.bucket(token);
  yield* api.lockBucket(b);
  const e = api.sleepers.find(token);
  if (e !== undefined) {
    api.sleepers.unlink(e);
    yield* api.unlockBucket(b);
    api.freeDummy(e, 'consumed');
    api.trace('kvm_async_pf_dummy_consumed', { token, task: api.task().name });
    return null;
  }
  const n = api.newWaiterNode(token, halted());
  api.sleepers.add(n);
  yield* api.unlockBucket(b);
  return n;
}

/** kvm_async_pf_task_wait_schedule (spec §4.4): IRQs disabled on entry, sleeps in TASK_UNINTERRUPTIBLE. */
export function* kvmAsyncPfTaskWaitSchedule(api: ApfApi, token: number): Code {
  if (!api.irqsDisabled()) api.warnOnce('lockdep: kvm_async_pf_task_wait_schedule() called with IRQs enabled');
  const n = yield* kvmAsyncPfQueueTask(api, token, () => false);
  if (n === null) return;
  api.trace('kvm_async_pf_task_wait_schedule', { token, task: api.task().name });
  const start = api.now();
  for (;;) {
    api.prepareToWait(n);
    if (!n.linked) break;
    yield* api.sti();
    yield* api.schedule();
    yield* api.cli();
  }
  api.finishWait(n);
  api.trace('kvm_async_pf_task_woken', { token, task: api.task().name, waited_ns: api.now() - start });
}

/** G-5.2 kvm_async_pf_task_wait: halts instead of scheduling in idle/atomic/RCU contexts (spec §4.5). */
export function* kvmAsyncPfTaskWaitHalt(api: ApfApi, token: number, tf: TrapFrame): Code {
  const interruptKernel = !api.userMode(tf);
  // Decided under the bucket lock, which itself counts one in preempt_count.
  const mustHalt = (): boolean =>
    api.isIdleTask() || (api.toggles.preempt_count ? api.preemptCount() > 1 || api.rcuPreemptDepth() > 0 : interruptKernel);
  const n = yield* kvmAsyncPfQueueTask(api, token, mustHalt);
  if (n === null) return;
  const halted = n.halted;
  api.trace(halted ? 'kvm_async_pf_task_wait_halt' : 'kvm_async_pf_task_wait_schedule', { token, task: api.task().name });
  const start = api.now();
  for (;;) {
    if (!halted) api.prepareToWait(n);
    if (!n.linked) break;
    if (!halted) {
      yield* api.sti();
      yield* api.schedule();
      yield* api.cli();
    } else {
      yield* api.safeHalt();
      yield* api.cli();
    }
  }
  if (!halted) api.finishWait(n);
  api.trace('kvm_async_pf_task_woken', { token, task: api.task().name, waited_ns: api.now() - start });
}

/** kvm_async_pf_task_wake (spec §4.6), with the dummy allocation inside or outside the lock. */
export function* kvmAsyncPfTaskWake(api: ApfApi, token: number): Code {
  if (token >>> 0 === KVM_APF_WAKE_ALL_TOKEN) {
    yield* api.handlers.wakeAll(api);
    return;
  }
  const b = api.bucket(token);
  let allocated = false;
  for (;;) {
    yield* api.lockBucket(b);
    const n = api.sleepers.find(token);
    if (n !== undefined) {
      yield* api.handlers.wakeOne(api, n);
      yield* api.unlockBucket(b);
      if (allocated) api.freeDummy(null, 'unused');
      api.trace('kvm_async_pf_task_wake', { token, found: true, dummy: false });
      return;
    }
    if (api.toggles.dummy_alloc_outside_lock && !allocated) {
      yield* api.unlockBucket(b);
      yield* api.allocDummy();
      // GFP_ATOMIC can fail: relax and look again (the waiter may have linked itself meanwhile).
      if (api.dummyAllocFailed()) {
        api.trace('kvm_async_pf_dummy_alloc_failed', { token, locked: false });
        yield* api.compute(CPU_RELAX_NS);
      } else {
        allocated = true;
      }
      continue;
    }
    if (!allocated) {
      yield* api.allocDummy();
      // Before 0547758a6de3 the allocation is under the lock; on failure: unlock, relax, retry.
      if (api.dummyAllocFailed()) {
        yield* api.unlockBucket(b);
        api.trace('kvm_async_pf_dummy_alloc_failed', { token, locked: true });
        yield* api.compute(CPU_RELAX_NS);
        continue;
      }
    }
    api.sleepers.add(api.newDummyNode(token));
    yield* api.unlockBucket(b);
    api.trace('kvm_async_pf_task_wake', { token, found: false, dummy: true });
    return;
  }
}

/** apf_task_wake_one: unlink; G-5.2 halted waiters get a reschedule IPI, others a wake-up. */
export function* apfTaskWakeOne(api: ApfApi, n: SleepNode): Code {
  api.sleepers.unlink(n);
  if (n.halted) yield* api.sendReschedule(n.cpu);
  else if (n.sleeper !== null) yield* api.wakeSleeper(n);
}

/** apf_task_wake_all (spec §4.7): only this CPU's nodes; dummies are unlinked and leaked. */
export function* apfTaskWakeAll(api: ApfApi): Code {
  let woken = 0;
  let leaked = 0;
  const me = api.cpu();
  for (const b of api.sleepers.buckets) {
    yield* api.lockBucket(b);
    for (const n of [...b.nodes]) {
      if (n.cpu !== me) continue;
      yield* api.handlers.wakeOne(api, n);
      if (!n.dummy) woken++;
      else if (api.toggles.wake_all_frees_dummies) api.freeDummy(n, 'wake_all');
      else leaked++;
    }
    yield* api.unlockBucket(b);
  }
  api.sleepers.stats.dummiesLeaked += leaked;
  api.trace('apf_task_wake_all', { woken, dummies_leaked: leaked });
}

/** sysvec_kvm_asyncpf_interrupt (spec §4.8): EOI, wake, token := 0, ACK. */
export function* sysvecKvmAsyncpfInterrupt(api: ApfApi): Code {
  if (api.toggles.page_ready_eoi) yield* api.eoi();
  if (!(yield* api.enabled())) return;
  const token = yield* api.apfLoad('token');
  api.trace('sysvec_kvm_asyncpf_interrupt', { token });
  yield* api.handlers.wake(api, token);
  // Both steps are in every Linux; the toggles make a guest that skips one (docs/guest.md).
  if (api.toggles.page_ready_zero_token) {
    api.trace('apf_token_clear', { token });
    yield* api.apfStore('token', 0);
  }
  if (api.toggles.page_ready_ack) {
    api.trace('apf_ack');
    yield* api.wrmsr(MSR_KVM_ASYNC_PF_ACK, 1n);
  }
}

/** The default handlers of a profile. */
export function profileDefaultHandlers(cfg: ResolvedGuestConfig): ApfHandlers {
  return {
    cpuInit: kvmGuestCpuInit,
    disable: kvmPvDisableApf,
    readAndResetFlags: kvmReadAndResetApfFlags,
    pfHook: cfg.facts.pfEntry === 'idt_hook' ? doAsyncPageFault : kvmHandleAsyncPf,
    wait: cfg.facts.wait === 'halt_capable' ? kvmAsyncPfTaskWaitHalt : kvmAsyncPfTaskWaitSchedule,
    wake: kvmAsyncPfTaskWake,
    wakeAll: apfTaskWakeAll,
    wakeOne: apfTaskWakeOne,
    pageReady: sysvecKvmAsyncpfInterrupt,
  };
}

// ---------------------------------------------------------------------------------------------
// The ApfApi
// ---------------------------------------------------------------------------------------------

function fieldOffset(k: GuestKernel, field: ApfField): number {
  if (field === 'flags') return APF_FLAGS_OFFSET;
  if (apfLayout(k.config.facts.layout).fields.token === undefined) {
    throw new Error(`the ${k.config.facts.layout} kvm_vcpu_pv_apf_data layout has no 'token' field (profile ${k.config.profile})`);
  }
  return APF_TOKEN_OFFSET;
}

/** Address of this CPU's enabled flag: offset 64 of the area, or the private per-CPU bool. */
function enabledGva(k: GuestKernel): number {
  const pc = k.cpu();
  return k.config.facts.enabledFlag === 'shared_area' ? pc.apfAreaGva() + APF_ENABLED_OFFSET : pc.percpuGva(0);
}

export function makeApfApi(k: GuestKernel): ApfApi {
  const api: ApfApi = {
    config: k.config,
    toggles: k.config.toggles,
    handlers: k.handlers,
    defaults: k.defaults,
    sleepers: k.sleepers,
    now: () => k.sim.now,
    cpu: () => k.cpu().id,
    task: () => {
      const t = k.current();
      return { id: t.id, name: t.name, isIdle: t.isIdle, kind: t.kind };
    },
    isIdleTask: () => k.current().isIdle,
    // user_mode(regs): the low bits of CS are not 0, so CPL 1 and 2 count as user mode too.
    userMode: (tf) => tf.savedCpl !== 0,
    interruptsWereEnabled: (tf) => tf.savedIf,
    irqsDisabled: () => irqsDisabled(k),
    preemptCount: () => k.current().preemptCount,
    rcuPreemptDepth: () => (k.config.toggles.config_preempt ? k.current().rcuDepth : 0),
    hasFeature: (name) => k.hasFeature(name),
    apfAreaGpa: () => k.layout.apfAreaGpa(k.cpu().id, k.cpu().apfGeneration),
    apfAreaGva: () => k.cpu().apfAreaGva(),
    readCr2: () => readCr2(),
    apfLoad: (field) => {
      const code = load32((k.cpu().apfAreaGva() + fieldOffset(k, field)) as Gva);
      return k.cpu().apfSteps === null ? code : loggedLoad(k, field, code);
    },
    apfStore: (field, value) => {
      k.cpu().apfSteps?.push({ op: 'store', field, value });
      return store32((k.cpu().apfAreaGva() + fieldOffset(k, field)) as Gva, value);
    },
    enabled: () => enabledLoad(k),
    setEnabled: (on) => enabledStore(k, on),
    wrmsr: (msr, value) => {
      k.cpu().apfSteps?.push({ op: 'wrmsr', msr, value });
      return kwrmsr(k, msr, value);
    },
    rdmsr: (msr) => krdmsr(k, msr),
    eoi: () => eoi(k),
    sti: () => one(insn.sti()),
    cli: () => one(insn.cli()),
    safeHalt: () => one(insn.stiHlt()),
    sendReschedule: (cpu) => sendReschedule(k, cpu),
    compute: (ns) => compute(ns),
    bucket: (token): SleeperBucket => k.sleepers.bucketOf(token),
    lockBucket: (b) => spinLock(k, b.lock),
    unlockBucket: (b) => spinUnlock(k, b.lock),
    newWaiterNode: (token, halted) => new SleepNode(token >>> 0, k.cpu().id, k.current(), halted),
    newDummyNode: (token) => new SleepNode(token >>> 0, k.cpu().id, null, false),
    allocDummy: () => allocDummy(k),
    dummyAllocFailed: () => {
      if (k.dummyAllocFailuresLeft <= 0) return false;
      k.dummyAllocFailuresLeft--;
      k.sleepers.stats.dummiesAllocated--;
      return true;
    },
    freeDummy: (node, why) => {
      k.sleepers.stats.dummiesFreed++;
      if (why === 'consumed') k.sleepers.stats.dummiesConsumed++;
      void node;
    },
    prepareToWait: (node) => {
      const t = k.current();
      t.state = 'uninterruptible';
      t.waitReason = `kvm_async_pf_task_wait token 0x${node.token.toString(16)}`;
      node.sleeper = t;
    },
    finishWait: (node) => {
      const t = k.current();
      t.state = 'running';
      t.waitReason = '';
      node.sleeper = null;
    },
    schedule: () => schedule(k),
    wakeSleeper: (node) => wakeSleeper(k, node),
    panic: (message) => kernelPanic(k, message),
    warn: (message) => k.warn(message),
    warnOnce: (message) => k.warnOnce(message),
    bug: (kind, message) => k.bug(kind, message),
    trace: sourceTrace(k.sim.trace, 'guest', () => k.cpu().id),
  };
  return api;
}

/** A load whose value goes to the handler-rule log (guest/handler-rules.ts). */
function* loggedLoad(k: GuestKernel, field: ApfField, code: Code<number>): Code<number> {
  const steps = k.cpu().apfSteps;
  const value = yield* code;
  steps?.push({ op: 'load', field, value });
  return value;
}

function* one(i: ReturnType<typeof insn.sti>): Code {
  yield i;
}

function* enabledLoad(k: GuestKernel): Code<boolean> {
  const v = yield* load32(enabledGva(k) as Gva);
  return v !== 0;
}

function* enabledStore(k: GuestKernel, on: boolean): Code {
  k.cpu().apfOn = on;
  yield* store32(enabledGva(k) as Gva, on ? 1 : 0);
}

function* allocDummy(k: GuestKernel): Code {
  k.sleepers.stats.dummiesAllocated++;
  if (k.config.toggles.preempt_rt && k.rawLockHeldHere()) {
    k.bug('sleeping_alloc_in_atomic', 'BUG: sleeping function called from invalid context at mm/slub.c (kzalloc(GFP_ATOMIC) under a raw spinlock on PREEMPT_RT)');
  }
  yield* compute(DUMMY_ALLOC_NS);
}

function* wakeSleeper(k: GuestKernel, node: SleepNode): Code {
  const s = node.sleeper;
  if (s !== null) yield* tryToWakeUp(k, s);
}
