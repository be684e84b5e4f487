/**
 * Unit tests of the guest's kvm.c driver, with the test playing the host by hand (MiniHost):
 * the MSR values each profile writes, read-and-reset of the flags, the sleeper table's wait /
 * wake / dummy paths, wake-all scope and dummy leaks, and the page-ready handler's order.
 */
import { gva } from '../../shared-abi/addr';
import { kvmFeatureEax } from '../../shared-abi/cpuid';
import {
  KVM_ASYNC_PF_DELIVERY_AS_INT,
  KVM_ASYNC_PF_DELIVERY_AS_PF_VMEXIT,
  KVM_ASYNC_PF_ENABLED,
  KVM_ASYNC_PF_SEND_ALWAYS,
  MSR_KVM_ASYNC_PF_ACK,
  MSR_KVM_ASYNC_PF_EN,
  MSR_KVM_ASYNC_PF_INT,
  X86_MSR,
} from '../../shared-abi/msr';
import { sleeperBucket, KVM_APF_WAKE_ALL_TOKEN } from '../../shared-abi/apf';
import type { TaskSpec } from '../../guest/program';
import { buildMini } from './support/mini-kernel';

const P = gva(0x400000);
const spinner = (name: string, cpu = 0, loops = 200): TaskSpec => ({
  name,
  cpu,
  pages: [P],
  program: [{ op: 'touch', page: P, write: true, value: 1 }, { op: 'loop', times: loops, body: [{ op: 'compute', ns: 100_000 }] }, { op: 'touch', page: P }],
});
const apfWrites = (m: ReturnType<typeof buildMini>): Array<{ msr: number; value: bigint }> =>
  m.host.msrs.filter((x) => x.write && (x.msr === MSR_KVM_ASYNC_PF_EN || x.msr === MSR_KVM_ASYNC_PF_INT)).map((x) => ({ msr: x.msr, value: x.value }));

describe('profiles -> MSR values written by kvm_guest_cpu_init', () => {
  test('current: INT = 0xf3 first, then EN = area | ENABLED | DELIVERY_AS_INT | PF_VMEXIT, no SEND_ALWAYS', () => {
    const m = buildMini({ profile: 'current' });
    m.runUntil(100_000);
    const area = BigInt(m.area(0));
    expect(apfWrites(m)).toEqual([
      { msr: MSR_KVM_ASYNC_PF_INT, value: 0xf3n },
      { msr: MSR_KVM_ASYNC_PF_EN, value: area | KVM_ASYNC_PF_ENABLED | KVM_ASYNC_PF_DELIVERY_AS_INT | KVM_ASYNC_PF_DELIVERY_AS_PF_VMEXIT },
    ]);
    // The per-CPU bool lives in private kernel memory, not at offset 64 of the shared area.
    expect(m.host.mem.readU32(m.area(0) + 64)).toBe(0);
    expect(m.host.mem.readU32(m.kernel.layout.percpuGpa(0))).toBe(1);
    expect(m.kernel.apfIntGate).toBe(true);
  });

  test('linux-6.6 keeps `enabled` at offset 64 of the 68-byte struct', () => {
    const m = buildMini({ profile: 'linux-6.6' });
    m.runUntil(100_000);
    expect(m.host.mem.readU32(m.area(0) + 64)).toBe(1);
  });

  test('linux-5.2 with CONFIG_PREEMPT: EN = area | SEND_ALWAYS | ENABLED | PF_VMEXIT, no INT write', () => {
    const m = buildMini({ profile: 'linux-5.2' });
    m.runUntil(100_000);
    const area = BigInt(m.area(0));
    expect(apfWrites(m)).toEqual([{ msr: MSR_KVM_ASYNC_PF_EN, value: area | KVM_ASYNC_PF_ENABLED | KVM_ASYNC_PF_SEND_ALWAYS | KVM_ASYNC_PF_DELIVERY_AS_PF_VMEXIT }]);
    expect(m.host.mem.readU32(m.area(0) + 64)).toBe(1);
    expect(m.kernel.apfIntGate).toBe(false);
    expect(m.kernel.apfStaticKey).toBe(true);
  });

  test('linux-5.2-user-only and linux-5.2 without CONFIG_PREEMPT drop SEND_ALWAYS', () => {
    for (const m of [buildMini({ profile: 'linux-5.2-user-only' }), buildMini({ profile: 'linux-5.2', toggles: { config_preempt: false } })]) {
      m.runUntil(100_000);
      const en = apfWrites(m).find((w) => w.msr === MSR_KVM_ASYNC_PF_EN)!.value;
      expect(en & KVM_ASYNC_PF_SEND_ALWAYS).toBe(0n);
      expect(en & KVM_ASYNC_PF_ENABLED).toBe(KVM_ASYNC_PF_ENABLED);
    }
  });

  test('int_before_en=false writes EN before INT (the wrong order)', () => {
    const m = buildMini({ profile: 'linux-5.9', toggles: { int_before_en: false } });
    m.runUntil(100_000);
    expect(apfWrites(m).map((w) => w.msr)).toEqual([MSR_KVM_ASYNC_PF_EN, MSR_KVM_ASYNC_PF_INT]);
  });

  test('no-kvmapf, or a host without ASYNC_PF_INT: a v5.9+ guest writes no APF MSR', () => {
    const a = buildMini({ profile: 'current', toggles: { kvmapf: false } });
    const b = buildMini({ profile: 'current', features: kvmFeatureEax('ASYNC_PF') });
    for (const m of [a, b]) {
      m.runUntil(100_000);
      expect(apfWrites(m)).toEqual([]);
      expect(m.kernel.apfStaticKey).toBe(false);
    }
  });

  test('linux-5.2 only needs ASYNC_PF; without ASYNC_PF_VMEXIT no bit 2', () => {
    const m = buildMini({ profile: 'linux-5.2', features: kvmFeatureEax('ASYNC_PF') });
    m.runUntil(100_000);
    const en = apfWrites(m)[0]!.value;
    expect(en & KVM_ASYNC_PF_DELIVERY_AS_PF_VMEXIT).toBe(0n);
    expect(en & KVM_ASYNC_PF_ENABLED).toBe(KVM_ASYNC_PF_ENABLED);
  });

  test('a refused EN write is only a warning; Linux sets its enabled flag anyway', () => {
    const m = buildMini({ profile: 'linux-6.6', start: false });
    m.host.refuse.add(MSR_KVM_ASYNC_PF_EN);
    m.host.start();
    m.runUntil(100_000);
    expect(m.kernel.warnings.some((w) => w.startsWith('unchecked MSR access error: WRMSR to 0x4b564d02'))).toBe(true);
    expect(m.host.mem.readU32(m.area(0) + 64)).toBe(1);
  });
});

describe('#PF hook and wait', () => {
  test('read-and-reset: flags read then zeroed by a separate store; the task sleeps on the token', () => {
    const m = buildMini({ tasks: [spinner('a')] });
    m.runToEvent('task_access');
    m.notPresent(0, 0x1000);
    m.runToEvent('kvm_async_pf_task_wait_schedule');
    expect(m.host.mem.readU32(m.area(0))).toBe(0);
    const rr = m.host.rec.find({ event: 'kvm_read_and_reset_apf_flags' });
    expect(rr?.flags).toBe(1);
    expect(m.kernel.sleepers.find(0x1000)?.owner?.name).toBe('a');
    expect(m.kernel.sleepers.bucketOf(0x1000).index).toBe(sleeperBucket(0x1000));
    m.runUntil(m.host.sim.now + 100_000);
    expect(m.kernel.task('a')?.state).toBe('uninterruptible');
    // Page ready: the wake, then token := 0, then ACK.
    m.pageReady(0, 0x1000);
    m.runToEvent('kvm_async_pf_task_woken');
    expect(m.kernel.sleepers.find(0x1000)).toBeUndefined();
    expect(m.host.mem.readU32(m.area(0) + 4)).toBe(0);
    expect(m.host.msrWrites(MSR_KVM_ASYNC_PF_ACK).map((w) => w.value)).toEqual([1n]);
    const order = m.host.rec.records.filter((r) => ['kvm_async_pf_task_wake', 'apf_token_clear', 'apf_ack'].includes(r.event)).map((r) => r.event);
    expect(order).toEqual(['kvm_async_pf_task_wake', 'apf_token_clear', 'apf_ack']);
    // EOI comes first in the handler.
    const eoiAt = m.host.msrs.findIndex((x) => x.write && x.msr === X86_MSR.X2APIC_EOI && x.t >= (m.host.rec.find({ event: 'sysvec_kvm_asyncpf_interrupt' })?.t ?? 0) - 5000);
    const ackAt = m.host.msrs.findIndex((x) => x.write && x.msr === MSR_KVM_ASYNC_PF_ACK);
    expect(eoiAt).toBeGreaterThanOrEqual(0);
    expect(eoiAt).toBeLessThan(ackAt);
    m.runUntil(200_000_000, () => m.kernel.allTasksExited());
    expect(m.kernel.allTasksExited()).toBe(true);
  });

  test('an ordinary #PF (flags 0) in user mode is a SIGSEGV', () => {
    const m = buildMini({ tasks: [spinner('a')] });
    m.runToEvent('task_access');
    m.host.exception(0, { kind: 'exception', vector: 14, errorCode: 4, cr2: 0x7000 });
    m.runToEvent('task_exit');
    expect(m.host.rec.find({ event: 'signal' })?.sig).toBe('SIGSEGV');
    expect(m.kernel.task('a')?.exitCode).toBe(128 + 11);
  });

  test('current: an async #PF in kernel mode panics', () => {
    const m = buildMini({ tasks: [{ name: 'k', kind: 'kthread', program: [{ op: 'compute', ns: 10_000_000 }] }] });
    m.runToEvent('sched_switch');
    m.runUntil(m.host.sim.now + 10_000);
    m.notPresent(0, 0x2000);
    m.runToEvent('panic');
    expect(m.kernel.panicked()?.message).toBe('Host injected async #PF in kernel mode');
  });

  test('current: an async #PF with IF=0 panics', () => {
    const m = buildMini({ tasks: [{ name: 'k', kind: 'kthread', program: [{ op: 'local_irq_disable' }, { op: 'compute', ns: 10_000_000 }] }] });
    m.runToEvent('sched_switch');
    m.runUntil(m.host.sim.now + 10_000);
    m.notPresent(0, 0x2000);
    m.runToEvent('panic');
    expect(m.kernel.panicked()?.message).toBe('Host injected async #PF in interrupt disabled region');
  });

  test('unexpected flags warn once', () => {
    const m = buildMini({ tasks: [spinner('a')] });
    m.runToEvent('task_access');
    m.host.mem.writeU32(m.area(0), 4);
    m.host.exception(0, { kind: 'exception', vector: 14, errorCode: 0, cr2: 0x3000 });
    m.runToEvent('warn');
    expect(m.kernel.warnings).toContain('Unexpected async PF flags: 4');
  });

  test.each([
    ['linux-5.8', false],
    ['linux-5.9', true],
  ] as const)('%s: flags 3 (both bits) are async only from v5.9 (v5.8 switched on the exact values 1 and 2)', (profile, async) => {
    const m = buildMini({ profile, tasks: [spinner('a')] });
    m.runToEvent('task_access');
    m.host.mem.writeU32(m.area(0), 3);
    m.host.exception(0, { kind: 'exception', vector: 14, errorCode: 0, cr2: 0x3000 });
    m.runUntil(m.host.sim.now + 100_000);
    const waits = m.host.rec.records.filter((r) => r.event === 'kvm_async_pf_task_wait_schedule');
    expect(waits.length > 0).toBe(async);
  });
});

describe('wake, dummy nodes, wake-all', () => {
  test('wake before wait: the wake leaves a dummy, the wait consumes it and does not sleep', () => {
    const m = buildMini({ tasks: [spinner('a')] });
    m.runToEvent('task_access');
    m.pageReady(0, 0x5000);
    m.runToEvent('kvm_async_pf_task_wake');
    expect(m.host.rec.find({ event: 'kvm_async_pf_task_wake' })).toMatchObject({ token: 0x5000, found: false, dummy: true });
    const d = m.kernel.sleepers.find(0x5000)!;
    expect(d.dummy).toBe(true);
    expect(d.cpu).toBe(0);
    m.runUntil(m.host.sim.now + 100_000);
    m.notPresent(0, 0x5000);
    m.runToEvent('kvm_async_pf_dummy_consumed');
    expect(m.kernel.sleepers.find(0x5000)).toBeUndefined();
    expect(m.host.rec.count({ event: 'kvm_async_pf_task_wait_schedule' })).toBe(0);
    expect(m.kernel.stats().sleepers).toMatchObject({ dummiesAllocated: 1, dummiesConsumed: 1, dummiesFreed: 1 });
  });

  test('PREEMPT_RT: allocating the dummy under the raw bucket lock is a bug; 0547758a6de3 moves it out', () => {
    const inside = buildMini({ profile: 'linux-5.9', toggles: { preempt_rt: true }, tasks: [spinner('a')] });
    const outside = buildMini({ profile: 'linux-6.6', toggles: { preempt_rt: true }, tasks: [spinner('a')] });
    for (const m of [inside, outside]) {
      m.runToEvent('task_access');
      m.pageReady(0, 0x6000);
      m.runToEvent('kvm_async_pf_task_wake');
    }
    expect(inside.host.rec.find({ event: 'bug' })?.kind).toBe('sleeping_alloc_in_atomic');
    expect(outside.host.rec.count({ event: 'bug' })).toBe(0);
    expect(outside.kernel.sleepers.find(0x6000)?.dummy).toBe(true);
  });

  test('wake-all touches only this CPU: its waiter is woken, its dummy leaks, the other CPU is untouched', () => {
    const m = buildMini({ cpus: 2, tasks: [spinner('a', 0), spinner('b', 1)] });
    m.runUntil(2_000_000);
    m.notPresent(0, 0x1000);
    m.notPresent(1, 0x1001);
    m.runUntil(m.host.sim.now + 200_000);
    m.pageReady(0, 0x7000); // leaves a dummy with cpu 0
    m.runUntil(m.host.sim.now + 200_000);
    expect(m.kernel.sleepers.all().map((n) => [n.token, n.cpu, n.dummy]).sort()).toEqual([
      [0x1000, 0, false],
      [0x1001, 1, false],
      [0x7000, 0, true],
    ].sort());
    m.pageReady(0, KVM_APF_WAKE_ALL_TOKEN);
    m.runToEvent('apf_task_wake_all');
    expect(m.host.rec.find({ event: 'apf_task_wake_all' })).toMatchObject({ woken: 1, dummies_leaked: 1 });
    expect(m.kernel.sleepers.all().map((n) => n.token)).toEqual([0x1001]);
    expect(m.kernel.stats().sleepers.dummiesLeaked).toBe(1);
    m.runToEvent('kvm_async_pf_task_woken');
    expect(m.host.rec.find({ event: 'kvm_async_pf_task_woken' })?.task).toBe('a');
    expect(m.kernel.task('b')?.state).toBe('uninterruptible');
  });

  test('wake_all_frees_dummies frees instead of leaking', () => {
    const m = buildMini({ toggles: { wake_all_frees_dummies: true }, tasks: [spinner('a')] });
    m.runToEvent('task_access');
    m.pageReady(0, 0x7000);
    m.runToEvent('kvm_async_pf_task_wake');
    m.runUntil(m.host.sim.now + 100_000);
    m.pageReady(0, KVM_APF_WAKE_ALL_TOKEN);
    m.runToEvent('apf_task_wake_all');
    expect(m.host.rec.find({ event: 'apf_task_wake_all' })).toMatchObject({ woken: 0, dummies_leaked: 0 });
    expect(m.kernel.stats().sleepers).toMatchObject({ dummiesLeaked: 0, dummiesFreed: 1 });
  });

  test('linux-5.2: page ready arrives as #PF reason 2 and wakes the sleeper', () => {
    const m = buildMini({ profile: 'linux-5.2', tasks: [spinner('a')] });
    m.runToEvent('task_access');
    m.notPresent(0, 0x1000);
    m.runToEvent('kvm_async_pf_task_wait_schedule');
    m.runUntil(m.host.sim.now + 100_000);
    m.pageReadyPf(0, 0x1000);
    m.runToEvent('kvm_async_pf_task_woken');
    expect(m.host.rec.find({ event: 'kvm_async_pf_task_wake' })).toMatchObject({ token: 0x1000, found: true });
    expect(m.host.msrWrites(MSR_KVM_ASYNC_PF_ACK)).toEqual([]);
  });
});
