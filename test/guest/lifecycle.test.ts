/**
 * Lifecycle paths (spec §4.9) on the real host: suspend/resume, reboot, kexec, crash/kdump, APF
 * and LAPIC disable/enable, with and without the Apr 2021 teardown fixes.
 */
import { gva } from '../../shared-abi/addr';
import type { TaskSpec } from '../../guest/program';
import { buildGuestMachine, type GuestMachine } from '../support/guest-machine';

const P = gva(0x400000);
const ms = (n: number): number => n * 1_000_000;
const slowPage = { swapLatency: { kind: 'fixed' as const, ns: ms(20) } };
const faulter = (cpu: number): TaskSpec => ({
  name: 'a',
  cpu,
  pages: [P],
  program: [{ op: 'touch', page: P, write: true, value: 0x77 }, { op: 'sleep', ns: ms(2) }, { op: 'touch', page: P }],
});

/** Evict P at 1 ms and run until the task waits for it. */
function toWaiting(m: GuestMachine): void {
  m.runUntil(ms(1));
  m.evict('a', P);
  m.runUntil(ms(15), () => m.events('kvm_async_pf_task_wait_schedule').length > 0);
  expect(m.events('kvm_async_pf_task_wait_schedule').length).toBe(1);
}

describe('suspend / resume', () => {
  function suspendWithWaiter(teardown: boolean): GuestMachine {
    const m = buildGuestMachine({ cpus: 2, profile: 'linux-6.6', toggles: { teardown_boot_cpu: teardown }, hostMemory: slowPage, tasks: [faulter(0)] });
    toWaiting(m);
    m.kernel.request(0, 'suspend');
    m.runUntil(ms(40));
    expect(m.kernel.stats().cpus.map((c) => c.state)).toEqual(['suspended', 'offline']);
    m.kernel.request(0, 'resume');
    m.runUntil(ms(200), () => m.kernel.allTasksExited());
    m.runUntil(m.sim.now + ms(5));
    return m;
  }

  test('without teardown_boot_cpu the boot CPU keeps APF: page ready is handled while suspended', () => {
    const m = suspendWithWaiter(false);
    const sleeping = m.events('suspend').find((r) => r.phase === 'sleeping')!;
    const resume = m.events('resume')[0]!;
    const during = m.events('sysvec_kvm_asyncpf_interrupt').filter((r) => r.t > sleeping.t && r.t < resume.t);
    expect(during.length).toBe(1);
    expect(m.rec.records.some((r) => r.event === 'kvm_pv_disable_apf' && r.cpu === 0)).toBe(false);
    expect(m.kernel.allTasksExited()).toBe(true);
    expect(m.kernel.stats().cpus.map((c) => c.state)).toEqual(['online', 'online']);
  });

  test('with teardown_boot_cpu (8b79feffeca2) APF is off on every CPU while suspended and re-enabled on resume', () => {
    const m = suspendWithWaiter(true);
    const sleeping = m.events('suspend').find((r) => r.phase === 'sleeping')!;
    const resume = m.events('resume')[0]!;
    expect(m.events('sysvec_kvm_asyncpf_interrupt').filter((r) => r.t > sleeping.t && r.t < resume.t)).toEqual([]);
    const disables = m.events('kvm_pv_disable_apf').filter((r) => r.t < sleeping.t).map((r) => r.cpu);
    expect(disables.sort()).toEqual([0, 1]);
    expect(m.rec.records.some((r) => r.event === 'kvm_guest_cpu_init' && r.cpu === 0 && r.t > resume.t)).toBe(true);
    expect(m.kernel.allTasksExited()).toBe(true);
  });
});

describe('reboot and kexec', () => {
  test('reboot: the notifier disables APF on every online CPU, then the CPUs stop', () => {
    const m = buildGuestMachine({ cpus: 2 });
    m.runUntil(ms(1));
    m.kernel.request(1, 'reboot');
    m.runUntil(ms(10));
    expect(m.events('reboot').length).toBe(1);
    expect(m.events('kvm_pv_disable_apf').map((r) => r.cpu).sort()).toEqual([0, 1]);
    expect(m.kernel.stats().mode).toBe('rebooted');
    expect(m.kernel.stats().cpus.map((c) => c.state)).toEqual(['stopped', 'stopped']);
  });

  test('kexec: APF is off everywhere, so the next kernel\'s memory stays untouched', () => {
    const m = buildGuestMachine({ cpus: 2, hostMemory: slowPage, tasks: [faulter(0)] });
    toWaiting(m);
    m.kernel.request(0, 'kexec');
    m.runUntil(ms(60));
    expect(m.events('kexec').length).toBe(1);
    expect(m.events('next_kernel_boot')).toEqual([expect.objectContaining({ kind: 'kexec', cpu: 0 })]);
    expect(m.kernel.stats().bugs).toEqual([]);
    // The next kernel owns the old APF areas and its data survives.
    expect(m.mem.readU32(m.kernel.layout.apfAreaGpa(0) + 4)).toBe(0x6e6b6e6c);
  });
});

describe('crash / kdump', () => {
  function crashWithWaiter(fix: boolean): GuestMachine {
    const m = buildGuestMachine({ profile: 'linux-6.6', toggles: { disable_apf_on_crash: fix }, hostMemory: slowPage, tasks: [faulter(0)] });
    toWaiting(m);
    m.kernel.request(0, 'crash');
    m.runUntil(ms(80));
    expect(m.events('crash')[0]?.message).toBe('sysrq triggered crash');
    expect(m.events('next_kernel_boot')).toEqual([expect.objectContaining({ kind: 'kdump' })]);
    return m;
  }

  test('without disable_apf_on_crash the host keeps writing into the old kernel\'s area and interrupts the kdump kernel', () => {
    const m = crashWithWaiter(false);
    const area = m.kernel.layout.apfAreaGpa(0);
    expect(m.events('kvm_write_guest', 'host').some((r) => r.gpa === area + 4 && r.t > m.events('crash')[0]!.t)).toBe(true);
    expect(m.kernel.stats().bugs.map((b) => b.kind)).toContain('stale_apf_write');
    expect(m.kernel.warnings.some((w) => w.includes('vector 0xf3'))).toBe(true);
  });

  test('with the fix (3d6b84132d2a) the crashing CPU disables APF: nothing more arrives', () => {
    const m = crashWithWaiter(true);
    expect(m.rec.records.some((r) => r.event === 'kvm_pv_disable_apf' && r.cpu === 0)).toBe(true);
    expect(m.kernel.stats().bugs).toEqual([]);
    expect(m.kernel.counter('next_kernel_spurious_apf_irq')).toBe(0);
  });
});

describe('APF and LAPIC disable / enable requests', () => {
  test('apf_disable then apf_enable: the host queues a wake-all on re-enable', () => {
    const m = buildGuestMachine({});
    m.runUntil(ms(1));
    m.kernel.request(0, 'apf_disable');
    m.runUntil(ms(2));
    expect(m.kernel.stats().cpus[0]!.apfEnabled).toBe(false);
    m.kernel.request(0, 'apf_enable');
    m.runUntil(ms(3));
    expect(m.kernel.stats().cpus[0]!.apfEnabled).toBe(true);
    expect(m.events('kvm_async_pf_wakeup_all', 'host').length).toBe(2);
    expect(m.events('apf_task_wake_all').length).toBe(2);
  });

  test('LAPIC disabled while a page is in flight: the page ready waits for the LAPIC (2f15d027c05f), then arrives', () => {
    const m = buildGuestMachine({ hostMemory: slowPage, tasks: [faulter(0)] });
    toWaiting(m);
    m.kernel.request(0, 'lapic_disable');
    m.runUntil(ms(40));
    expect(m.events('kvm_async_pf_task_woken')).toEqual([]);
    m.kernel.request(0, 'lapic_enable');
    m.runUntil(ms(100), () => m.kernel.allTasksExited());
    expect(m.kernel.allTasksExited()).toBe(true);
    expect(m.events('kvm_async_pf_task_woken').length).toBe(1);
  });
});
