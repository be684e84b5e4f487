/**
 * The pluggable handler API: the worked examples of docs/handlers.md, run for real.
 */
import { gva } from '../../shared-abi/addr';
import { MSR_KVM_ASYNC_PF_ACK } from '../../shared-abi/msr';
import type { ApfApi, ApfHandlers } from '../../guest';
import type { TrapFrame } from '../../shared-abi/arch';
import type { Code } from '../../guest';
import type { TaskSpec } from '../../guest/program';
import { buildGuestMachine } from '../support/guest-machine';

const P = gva(0x400000);
const Q = gva(0x401000);
const ms = (n: number): number => n * 1_000_000;

/** docs/handlers.md example 1: a page-ready handler that forgets to zero the token. */
const forgetfulPageReady: Partial<ApfHandlers> = {
  *pageReady(api: ApfApi): Code {
    yield* api.eoi();
    if (!(yield* api.enabled())) return;
    const token = yield* api.apfLoad('token');
    api.trace('sysvec_kvm_asyncpf_interrupt', { token });
    yield* api.handlers.wake(api, token);
    // BUG: no `yield* api.apfStore('token', 0)` here.
    yield* api.wrmsr(MSR_KVM_ASYNC_PF_ACK, 1n);
  },
};

/** docs/handlers.md example 2: the v5.8+ hook, but reading CR2 only after the flags. */
const lateCr2Hook: Partial<ApfHandlers> = {
  *pfHook(api: ApfApi, tf: TrapFrame, _cr2: number | null): Code<boolean> {
    return yield* api.defaults.pfHook(api, tf, null);
  },
};

const twoFaults: TaskSpec = {
  name: 'a',
  cpu: 0,
  pages: [P, Q],
  program: [
    { op: 'touch', page: P, write: true, value: 1 },
    { op: 'touch', page: Q, write: true, value: 2 },
    { op: 'sleep', ns: ms(2) },
    { op: 'touch', page: P },
    { op: 'touch', page: Q },
  ],
};

test('a page-ready handler that forgets token := 0: the host never delivers again, the next waiter hangs', () => {
  const m = buildGuestMachine({ handlers: forgetfulPageReady, hungTaskTimeoutNs: ms(20), tasks: [twoFaults] });
  m.runUntil(ms(1));
  m.evict('a', P);
  m.evict('a', Q);
  // (The host busy-wakes the halted vCPU meanwhile: its done list is non-empty but cannot be dequeued.)
  m.runUntil(ms(300), () => m.kernel.allTasksExited() || m.events('hung_task').length > 0);
  // The wake-all token stays in the slot: the host sees the slot busy and holds every completion.
  expect(m.mem.readU32(m.kernel.layout.apfAreaGpa(0) + 4)).toBe(0xffffffff);
  expect(m.events('sysvec_kvm_asyncpf_interrupt').map((r) => r.token)).toEqual([0xffffffff]);
  expect(m.events('kvm_async_pf_completed', 'worker').length).toBe(1);
  expect(m.events('kvm_async_pf_ready', 'host').filter((r) => r.token !== 0xffffffff)).toEqual([]);
  expect(m.events('hung_task')).toEqual([expect.objectContaining({ task: 'a' })]);
  expect(m.kernel.allTasksExited()).toBe(false);
  // The default handler passes the same run.
  const ok = buildGuestMachine({ hungTaskTimeoutNs: ms(50), tasks: [twoFaults] });
  ok.runUntil(ms(1));
  ok.evict('a', P);
  ok.evict('a', Q);
  ok.runUntil(ms(300), () => ok.kernel.allTasksExited());
  expect(ok.kernel.allTasksExited()).toBe(true);
});

test('a #PF hook that reads CR2 late is fine alone, and hangs a task when a faulting NMI hits the window', () => {
  const build = (nmi: boolean): ReturnType<typeof buildGuestMachine> => {
    const m = buildGuestMachine({
      handlers: lateCr2Hook,
      toggles: { cr2_read_at_entry: false, nmi_saves_cr2: false },
      nmiUserRead: gva(0x6000_0000),
      hungTaskTimeoutNs: ms(50),
      hostMemory: { swapLatency: { kind: 'fixed', ns: ms(2) } },
      tasks: [{ name: 'a', cpu: 0, pages: [P], program: [{ op: 'touch', page: P, write: true }, { op: 'sleep', ns: ms(2) }, { op: 'touch', page: P }] }],
    });
    m.runUntil(ms(1));
    m.evict('a', P);
    if (nmi) {
      const area = m.kernel.layout.apfAreaGpa(0);
      let armed = false;
      m.runUntil(ms(20), () => {
        const last = m.rec.records[m.rec.records.length - 1];
        if (last?.event === 'kvm_write_guest' && last.field === 'flags' && last.value === 1) armed = true;
        return armed && m.mem.readU32(area) === 0;
      });
      m.kvm.injectNmi(0);
    }
    m.runUntil(ms(300), () => m.kernel.allTasksExited());
    return m;
  };
  expect(build(false).kernel.allTasksExited()).toBe(true);
  const m = build(true);
  expect(m.events('kvm_async_pf_task_wait_schedule')[0]?.token).toBe(0x6000_0000);
  expect(m.events('hung_task')).toEqual([expect.objectContaining({ task: 'a' })]);
});
