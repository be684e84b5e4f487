/**
 * End-to-end: the guest kernel on the real host KVM (host/): everything the guest kernel must do against it.
 */
import { gva, type Gva } from '../../shared-abi/addr';
import { allocApfToken, KVM_APF_WAKE_ALL_TOKEN } from '../../shared-abi/apf';
import type { TraceRecord } from '../../sim/trace';
import type { KernelOp, TaskSpec } from '../../guest/program';
import { buildGuestMachine, type GuestMachine } from '../support/guest-machine';

const P = gva(0x400000);
const SLOW = { swapLatency: { kind: 'fixed' as const, ns: 2_000_000 } };
const ms = (n: number): number => n * 1_000_000;

/** Task a: write V to P, sleep (P is evicted meanwhile), then read P back. */
const faulter = (name: string, cpu: number, value: number, readOps?: readonly KernelOp[]): TaskSpec => ({
  name,
  cpu,
  pages: [P],
  program: [
    { op: 'touch', page: P, write: true, value },
    { op: 'sleep', ns: ms(2) },
    readOps === undefined ? { op: 'touch', page: P } : { op: 'syscall', name: 'read', body: readOps },
  ],
});
const busy = (name: string, cpu: number, n = 40): TaskSpec => ({ name, cpu, program: [{ op: 'loop', times: n, body: [{ op: 'compute', ns: 250_000 }] }] });

function reads(m: GuestMachine, task: string): TraceRecord[] {
  return m.events('task_access', 'guest').filter((r) => r.task === task && r.write === false);
}

function runToEnd(m: GuestMachine, limit = ms(200)): void {
  m.runUntil(ms(1));
  m.evict('a', P);
  m.runUntil(limit, () => m.kernel.allTasksExited() || m.kernel.panicked() !== null);
}

describe('user-mode async PF on one vCPU', () => {
  test('one task faults and sleeps, the other runs until page ready wakes the first; data intact', () => {
    const m = buildGuestMachine({ hostMemory: SLOW, tasks: [faulter('a', 0, 0xabcd), busy('b', 0)] });
    runToEnd(m);
    expect(m.kernel.allTasksExited()).toBe(true);
    const wait = m.events('kvm_async_pf_task_wait_schedule')[0]!;
    const woken = m.events('kvm_async_pf_task_woken')[0]!;
    expect(wait.task).toBe('a');
    expect(woken.token).toBe(wait.token);
    // b ran on the CPU while a slept.
    const between = m.rec.records.filter((r) => r.t > wait.t && r.t < woken.t && r.event === 'sched_switch');
    expect(between.some((r) => r.next === 'b')).toBe(true);
    // The host's not-present went to user mode and the page-ready carried the same token.
    expect(m.events('kvm_async_pf_not_present', 'host')[0]).toMatchObject({ token: wait.token, injected: true });
    expect(m.events('sysvec_kvm_asyncpf_interrupt').map((r) => r.token)).toEqual([KVM_APF_WAKE_ALL_TOKEN, wait.token]);
    expect(reads(m, 'a').map((r) => r.value)).toEqual([0xabcd]);
    expect(m.kernel.stats().bugs).toEqual([]);
  });
});

describe('the wake-all after enable', () => {
  test('the first page-ready on every CPU is the wake-all; the guest wakes, zeroes the token and ACKs', () => {
    const m = buildGuestMachine({ cpus: 2 });
    m.runUntil(ms(2));
    for (const cpu of [0, 1]) {
      const first = m.rec.records.find((r) => r.cpu === cpu && r.event === 'sysvec_kvm_asyncpf_interrupt');
      expect(first?.token).toBe(KVM_APF_WAKE_ALL_TOKEN);
      const wa = m.rec.records.find((r) => r.cpu === cpu && r.event === 'apf_task_wake_all');
      expect(wa).toMatchObject({ woken: 0, dummies_leaked: 0 });
      expect(m.rec.records.find((r) => r.cpu === cpu && r.event === 'apf_ack')).toBeDefined();
      expect(m.mem.readU32(m.kernel.layout.apfAreaGpa(cpu) + 4)).toBe(0);
    }
    expect(m.events('kvm_async_pf_wakeup_all', 'host').length).toBe(2);
  });
});

describe('dummy path', () => {
  test('a wake that arrives on another vCPU before the wait: dummy made there, consumed by the waiter', () => {
    const m = buildGuestMachine({ cpus: 2, hostMemory: SLOW, tasks: [faulter('a', 0, 77), busy('b', 0)] });
    m.runUntil(ms(1));
    m.evict('a', P);
    m.runUntil(ms(1) + 500_000);
    // The ABI lets the host deliver page ready to another vCPU. Deliver the token vCPU 0 is about
    // to be given on vCPU 1, before vCPU 0's task faults.
    const v0 = m.kvm.vcpu(0);
    const next = allocApfToken(v0.apf.id, 0, { avoidZero: m.kvm.toggles.nonzero_token }).token;
    m.mem.writeU32(m.kernel.layout.apfAreaGpa(1) + 4, next);
    m.kvm.vcpu(1).lapic!.accept('fixed', 0xf3);
    m.runUntil(ms(100), () => m.kernel.allTasksExited());
    expect(m.kernel.allTasksExited()).toBe(true);
    const wake = m.rec.records.find((r) => r.event === 'kvm_async_pf_task_wake' && r.token === next)!;
    expect(wake).toMatchObject({ cpu: 1, found: false, dummy: true });
    const consumed = m.events('kvm_async_pf_dummy_consumed')[0]!;
    expect(consumed).toMatchObject({ cpu: 0, token: next, task: 'a' });
    expect(consumed.t).toBeGreaterThan(wake.t);
    // The wait returned at once, so the task retried and the host halted the vCPU on the repeated
    // fault; the host's own page ready for the token then found no waiter: a second dummy, on vCPU 0.
    expect(m.events('kvm_async_pf_repeated_fault', 'host').length).toBeGreaterThan(0);
    const late = m.rec.records.filter((r) => r.event === 'kvm_async_pf_task_wake' && r.token === next && r.cpu === 0);
    expect(late).toEqual([expect.objectContaining({ found: false, dummy: true })]);
    expect(m.kernel.stats().sleepers.dummiesLinked).toBe(1);
    expect(reads(m, 'a').map((r) => r.value)).toEqual([77]);
  });
});

describe('CPU offline with sleepers', () => {
  test('the dying CPU disables APF and wakes its sleepers, which migrate and fault again elsewhere', () => {
    const m = buildGuestMachine({ cpus: 2, hostMemory: { swapLatency: { kind: 'fixed', ns: ms(20) } }, tasks: [faulter('a', 1, 0x5151)] });
    m.runUntil(ms(1));
    m.evict('a', P);
    m.runUntil(ms(50), () => m.events('kvm_async_pf_task_wait_schedule').length > 0);
    const wait = m.events('kvm_async_pf_task_wait_schedule')[0]!;
    expect(wait.cpu).toBe(1);
    m.kernel.request(1, 'offline');
    m.runUntil(ms(200), () => m.kernel.allTasksExited());
    expect(m.kernel.allTasksExited()).toBe(true);
    const off = m.events('cpu_offline')[0]!;
    expect(off.cpu).toBe(1);
    expect(m.rec.records.find((r) => r.event === 'kvm_pv_disable_apf' && r.cpu === 1)).toBeDefined();
    const wa = m.rec.records.filter((r) => r.event === 'apf_task_wake_all' && r.cpu === 1).pop()!;
    expect(wa.woken).toBe(1);
    expect(m.events('kvm_async_pf_disable', 'host').some((r) => r.cpu === 1)).toBe(true);
    // The task resumed on CPU 0 and finished there, data intact.
    expect(m.kernel.task('a')?.cpu).toBe(0);
    expect(reads(m, 'a')).toEqual([expect.objectContaining({ cpu: 0, value: 0x5151 })]);
    expect(m.kernel.stats().cpus[1]!.state).toBe('offline');
  });

  test('the CPU comes back with INIT and re-enables APF (another wake-all)', () => {
    const m = buildGuestMachine({ cpus: 2 });
    m.runUntil(ms(1));
    m.kernel.request(1, 'offline');
    m.runUntil(ms(5));
    expect(m.kernel.stats().cpus[1]!.state).toBe('offline');
    m.kernel.request(1, 'online');
    m.runUntil(ms(10));
    expect(m.kernel.stats().cpus[1]!.state).toBe('online');
    expect(m.rec.records.filter((r) => r.event === 'kvm_guest_cpu_init' && r.cpu === 1).length).toBe(2);
    expect(m.rec.records.filter((r) => r.event === 'apf_task_wake_all' && r.cpu === 1).length).toBeGreaterThanOrEqual(2);
  });
});

describe('each profile on a kernel-mode fault', () => {
  const copy: KernelOp[] = [{ op: 'copy_from_user', page: P }];
  const copyAtomic: KernelOp[] = [{ op: 'preempt_disable' }, { op: 'copy_from_user', page: P }, { op: 'preempt_enable' }];

  test('linux-5.2 (SEND_ALWAYS) on a ≤5.7 host: async #PF at CPL 0, the wait schedules', () => {
    const m = buildGuestMachine({ profile: 'linux-5.2', hostProfile: 'linux-4.19', hostMemory: SLOW, tasks: [faulter('a', 0, 9, copy), busy('b', 0)] });
    runToEnd(m);
    expect(m.kernel.allTasksExited()).toBe(true);
    const wait = m.events('kvm_async_pf_task_wait_schedule')[0]!;
    expect(wait.task).toBe('a');
    // The not-present #PF (CR2 = token) interrupted kernel mode.
    const exc = m.rec.records.find((r) => r.src === 'cpu' && r.event === 'exception' && r.vector === 14 && r.cr2 === wait.token)!;
    expect(exc.cpl).toBe(0);
    // The first page ready (a #PF on this host) is the wake-all.
    expect(m.rec.records.find((r) => r.src === 'cpu' && r.event === 'exception' && r.vector === 14)?.cr2).toBe(KVM_APF_WAKE_ALL_TOKEN);
    const woken = m.events('kvm_async_pf_task_woken')[0]!;
    expect(m.rec.records.some((r) => r.t > wait.t && r.t < woken.t && r.event === 'sched_switch' && r.next === 'b')).toBe(true);
    // Page ready came as #PF reason 2.
    expect(m.events('kvm_read_and_reset_apf_flags').map((r) => r.flags)).toEqual(expect.arrayContaining([1, 2]));
    expect(reads(m, 'a').map((r) => r.value)).toEqual([9]);
  });

  test('linux-5.2 inside preempt_disable: the halt-capable wait HLTs the vCPU until a reschedule IPI', () => {
    const m = buildGuestMachine({ profile: 'linux-5.2', hostProfile: 'linux-4.19', hostMemory: SLOW, tasks: [faulter('a', 0, 10, copyAtomic), busy('b', 0)] });
    runToEnd(m);
    expect(m.kernel.allTasksExited()).toBe(true);
    const wait = m.events('kvm_async_pf_task_wait_halt')[0]!;
    expect(wait.task).toBe('a');
    const woken = m.events('kvm_async_pf_task_woken')[0]!;
    // Nobody else ran on the CPU meanwhile; the wake sent a reschedule IPI to the halted CPU.
    expect(m.rec.records.some((r) => r.t > wait.t && r.t < woken.t && r.event === 'sched_switch')).toBe(false);
    expect(m.rec.records.some((r) => r.t > wait.t && r.t < woken.t && r.src === 'cpu' && r.event === 'interrupt' && r.vector === 0xfd)).toBe(true);
    expect(m.kernel.stats().bugs).toEqual([]);
    expect(reads(m, 'a').map((r) => r.value)).toEqual([10]);
  });

  test('linux-5.2-user-only: the host does not inject at CPL 0, it halts the vCPU', () => {
    const m = buildGuestMachine({ profile: 'linux-5.2-user-only', hostProfile: 'linux-4.19', hostMemory: SLOW, tasks: [faulter('a', 0, 11, copy), busy('b', 0)] });
    runToEnd(m);
    expect(m.kernel.allTasksExited()).toBe(true);
    expect(m.events('kvm_async_pf_not_present', 'host')[0]).toMatchObject({ injected: false, halt: true });
    expect(m.events('kvm_async_pf_task_wait_schedule').length + m.events('kvm_async_pf_task_wait_halt').length).toBe(0);
    expect(reads(m, 'a').map((r) => r.value)).toEqual([11]);
  });

  test('current: the host never sends a kernel-mode async #PF (artificial halt)', () => {
    const m = buildGuestMachine({ profile: 'current', hostMemory: SLOW, tasks: [faulter('a', 0, 12, copy), busy('b', 0)] });
    runToEnd(m);
    expect(m.kernel.allTasksExited()).toBe(true);
    expect(m.events('kvm_async_pf_not_present', 'host')[0]).toMatchObject({ injected: false, halt: true });
    expect(m.kernel.panicked()).toBeNull();
    expect(reads(m, 'a').map((r) => r.value)).toEqual([12]);
  });

  test('current on a buggy host that injects at CPL 0 regardless: panic', () => {
    const m = buildGuestMachine({ profile: 'current', hostToggles: { cpl0_needs_send_always: false }, hostMemory: SLOW, tasks: [faulter('a', 0, 13, copy)] });
    runToEnd(m);
    expect(m.kernel.panicked()?.message).toBe('Host injected async #PF in kernel mode');
    expect(m.events('panic')[0]?.message).toBe('Host injected async #PF in kernel mode');
  });

  test('linux-5.8 [unverified]: user-only; page ready still as #PF reason 2 on a ≤5.7 host', () => {
    const m = buildGuestMachine({ profile: 'linux-5.8', hostProfile: 'linux-4.19', hostMemory: SLOW, tasks: [faulter('a', 0, 14), busy('b', 0)] });
    runToEnd(m);
    expect(m.kernel.allTasksExited()).toBe(true);
    expect(m.events('kvm_async_pf_task_wait_schedule').length).toBe(1);
    expect(m.events('kvm_read_and_reset_apf_flags').map((r) => r.flags)).toEqual(expect.arrayContaining([1, 2]));
  });

  test('a pre-5.9 guest on a v5.8+ host gets no PV async PF at all (only artificial halts)', () => {
    const m = buildGuestMachine({ profile: 'linux-5.2', hostProfile: 'current', hostMemory: SLOW, tasks: [faulter('a', 0, 15), busy('b', 0)] });
    runToEnd(m);
    expect(m.kernel.allTasksExited()).toBe(true);
    expect(m.events('kvm_async_pf_not_present', 'host')[0]).toMatchObject({ injected: false });
    expect(m.events('kvm_async_pf_task_wait_schedule').length).toBe(0);
    expect(reads(m, 'a').map((r) => r.value)).toEqual([15]);
  });
});

export type { Gva };
