/**
 * Historical guest bugs, reproduced for their real reasons with the real host, and the fixes
 * that remove them (each fix is a toggle).
 */
import { gva } from '../../shared-abi/addr';
import type { TaskSpec } from '../../guest/program';
import { buildGuestMachine, type GuestMachine, type GuestMachineOptions } from '../support/guest-machine';

const P = gva(0x400000);
const NMI_PROBE = gva(0x7000_0000); // not mapped in the task's address space
const ms = (n: number): number => n * 1_000_000;

const faulter: TaskSpec = {
  name: 'a',
  cpu: 0,
  pages: [P],
  program: [{ op: 'touch', page: P, write: true, value: 0x1234 }, { op: 'sleep', ns: ms(2) }, { op: 'touch', page: P }],
};
const busy: TaskSpec = { name: 'b', cpu: 0, program: [{ op: 'loop', times: 40, body: [{ op: 'compute', ns: 250_000 }] }] };

describe('CR2 read late + an NMI that faults (v5.3 entry fix, 2012 NMI CR2 save)', () => {
  /** Stop right after the #PF handler consumed the async flags, before it reads CR2; send an NMI. */
  function nmiInWindow(o: GuestMachineOptions): GuestMachine {
    const m = buildGuestMachine({
      profile: 'linux-5.2',
      hostProfile: 'linux-4.19',
      hostMemory: { swapLatency: { kind: 'fixed', ns: ms(2) } },
      nmiUserRead: NMI_PROBE,
      hungTaskTimeoutNs: ms(100),
      tasks: [faulter, busy],
      ...o,
    });
    m.runUntil(ms(1));
    m.evict('a', P);
    const area = m.kernel.layout.apfAreaGpa(0);
    let armed = false;
    m.runUntil(ms(20), () => {
      const last = m.rec.records[m.rec.records.length - 1];
      if (last !== undefined && last.event === 'kvm_write_guest' && last.field === 'reason' && last.value === 1) armed = true;
      return armed && m.mem.readU32(area) === 0;
    });
    expect(armed).toBe(true);
    m.kvm.injectNmi(0);
    m.runUntil(ms(400), () => m.kernel.allTasksExited());
    return m;
  }

  test('v5.2 (CR2 read after the flags) without the NMI CR2 save: the task waits on the NMI\'s address and hangs', () => {
    const m = nmiInWindow({ toggles: { nmi_saves_cr2: false } });
    const wait = m.events('kvm_async_pf_task_wait_schedule')[0]!;
    expect(wait.token).toBe(NMI_PROBE);
    expect(m.kernel.counter('nmi_user_read_fault')).toBe(1);
    // The real page ready finds no waiter: a dummy that nobody consumes.
    expect(m.events('kvm_async_pf_task_wake').some((r) => r.found === false && r.dummy === true)).toBe(true);
    expect(m.kernel.allTasksExited()).toBe(false);
    expect(m.events('hung_task')).toEqual([expect.objectContaining({ task: 'a' })]);
    expect(m.deadlock?.message).toMatch(/kvm_async_pf_task_wait token 0x70000000/);
  });

  test('the NMI handler saving and restoring CR2 fixes it', () => {
    const m = nmiInWindow({ toggles: { nmi_saves_cr2: true } });
    expect(m.kernel.counter('nmi_cr2_restored')).toBe(1);
    expect(m.kernel.allTasksExited()).toBe(true);
    expect(m.events('hung_task')).toEqual([]);
  });

  test('reading CR2 at entry (v5.3) fixes it too', () => {
    const m = nmiInWindow({ toggles: { nmi_saves_cr2: false, cr2_read_at_entry: true } });
    expect(m.kernel.allTasksExited()).toBe(true);
  });
});

describe('≤5.7: an NMI that faults before the #PF handler reads the reason (Andy Lutomirski, spec §7.5)', () => {
  test('the nested #PF consumes "page ready": the waiter is never woken and the interrupted task gets SIGSEGV', () => {
    const m = buildGuestMachine({
      profile: 'linux-5.2',
      hostProfile: 'linux-4.19',
      hostMemory: { swapLatency: { kind: 'fixed', ns: ms(2) } },
      nmiUserRead: NMI_PROBE,
      hungTaskTimeoutNs: ms(100),
      tasks: [faulter, busy],
    });
    m.runUntil(ms(1));
    m.evict('a', P);
    m.runUntil(ms(20), () => m.events('kvm_async_pf_task_wait_schedule').length > 0);
    const wait = m.events('kvm_async_pf_task_wait_schedule')[0]!;
    const token = wait.token;
    // The page-ready #PF (CR2 = token) is delivered while b runs in user mode; an NMI follows at once.
    m.runUntil(ms(20), () => {
      const last = m.rec.records[m.rec.records.length - 1];
      return last !== undefined && last.src === 'cpu' && last.event === 'exception' && last.cr2 === token && last.cpl === 3;
    });
    m.kvm.injectNmi(0);
    m.runUntil(ms(400), () => m.kernel.allTasksExited());
    // Inside the NMI, the nested #PF read reason 2 and woke "CR2" = the NMI's address: a dummy.
    expect(m.events('kvm_read_and_reset_apf_flags').filter((r) => r.flags === 2 && r.t > wait.t).length).toBe(1);
    expect(m.events('kvm_async_pf_task_wake').find((r) => r.token === NMI_PROBE)).toMatchObject({ found: false, dummy: true });
    // The outer #PF then saw reason 0: an ordinary fault at the token address in user mode.
    expect(m.events('signal')).toEqual([expect.objectContaining({ task: 'b', sig: 'SIGSEGV', gva: token })]);
    expect(m.events('hung_task')).toEqual([expect.objectContaining({ task: 'a' })]);
  });
});

describe('page-ready handler without EOI (Sept 2020 "don\'t forget to ACK async PF IRQ")', () => {
  test('the in-service 0xf3 blocks the timer and IPIs: a sleeping task never wakes', () => {
    const sleeper: TaskSpec = { name: 's', cpu: 0, program: [{ op: 'sleep', ns: ms(1) }, { op: 'compute', ns: 1000 }] };
    const bad = buildGuestMachine({ profile: 'linux-5.9', toggles: { page_ready_eoi: false }, tasks: [sleeper] });
    bad.runUntil(ms(50), () => bad.kernel.allTasksExited());
    expect(bad.kernel.allTasksExited()).toBe(false);
    // The timer interrupt is accepted by the LAPIC but never delivered.
    expect(bad.rec.records.some((r) => r.event === 'kvm_apic_accept_irq' && r.vec === 0xec)).toBe(true);
    expect(bad.rec.records.some((r) => r.src === 'cpu' && r.event === 'interrupt' && r.vector === 0xec)).toBe(false);
    expect(bad.kernel.task('s')?.state).toBe('interruptible');
    const good = buildGuestMachine({ profile: 'linux-5.9', tasks: [sleeper] });
    good.runUntil(ms(50), () => good.kernel.allTasksExited());
    expect(good.kernel.allTasksExited()).toBe(true);
  });
});

describe('kernel self-checks', () => {
  const kthread = (name: string, program: TaskSpec['program']): TaskSpec => ({ name, kind: 'kthread', cpu: 0, program });

  test('sleeping under a spinlock: "sleeping function called from invalid context" and "scheduling while atomic"', () => {
    const m = buildGuestMachine({ tasks: [kthread('k', [{ op: 'spin_lock', lock: 'L' }, { op: 'sleep', ns: 100_000 }, { op: 'spin_unlock', lock: 'L' }])] });
    m.runUntil(ms(20), () => m.kernel.allTasksExited());
    expect(m.kernel.stats().bugs.map((b) => b.kind)).toEqual(['sleeping_in_invalid_context', 'scheduling_while_atomic']);
    expect(m.events('bug')[1]!.message).toMatch(/^BUG: scheduling while atomic: k\/\d+\/0x00000001$/);
  });

  test('without CONFIG_PREEMPT_COUNT the same bug goes unnoticed', () => {
    const m = buildGuestMachine({
      toggles: { config_preempt: false, preempt_count: false },
      tasks: [kthread('k', [{ op: 'spin_lock', lock: 'L' }, { op: 'sleep', ns: 100_000 }, { op: 'spin_unlock', lock: 'L' }])],
    });
    m.runUntil(ms(20), () => m.kernel.allTasksExited());
    expect(m.kernel.stats().bugs).toEqual([]);
  });

  test('sleeping with IRQs off', () => {
    const m = buildGuestMachine({ tasks: [kthread('k', [{ op: 'local_irq_disable' }, { op: 'sleep', ns: 100_000 }, { op: 'local_irq_enable' }])] });
    m.runUntil(ms(20), () => m.kernel.allTasksExited());
    expect(m.kernel.stats().bugs.map((b) => b.kind)).toEqual(['sleeping_in_invalid_context']);
    expect(m.events('bug')[0]!.message).toMatch(/irqs_disabled\(\): 1/);
  });

  test('sleeping inside an RCU read-side critical section', () => {
    const m = buildGuestMachine({ tasks: [kthread('k', [{ op: 'rcu_read_lock' }, { op: 'sleep', ns: 100_000 }, { op: 'rcu_read_unlock' }])] });
    m.runUntil(ms(20), () => m.kernel.allTasksExited());
    expect(m.kernel.stats().bugs.map((b) => b.kind)).toEqual(['rcu_sleep']);
  });

  test('hung task: APF disabled while a task waits, the page ready never comes', () => {
    const m = buildGuestMachine({ hungTaskTimeoutNs: ms(40), hostMemory: { swapLatency: { kind: 'fixed', ns: ms(5) } }, tasks: [faulter] });
    m.runUntil(ms(1));
    m.evict('a', P);
    m.runUntil(ms(10), () => m.events('kvm_async_pf_task_wait_schedule').length > 0);
    m.kernel.request(0, 'apf_disable');
    m.runUntil(ms(200));
    expect(m.events('kvm_async_pf_clear_queue', 'host').length).toBeGreaterThan(0);
    const hung = m.events('hung_task');
    expect(hung).toEqual([expect.objectContaining({ task: 'a' })]);
    expect(hung[0]!.blocked_ns as number).toBeGreaterThanOrEqual(ms(40));
    expect(m.kernel.task('a')?.state).toBe('uninterruptible');
    // Once reported, nothing is left to happen: the run ends with a deadlock naming the task.
    expect(m.deadlock?.message).toMatch(/a \(uninterruptible: kvm_async_pf_task_wait token/);
  });
});
