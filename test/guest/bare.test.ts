/**
 * The scripted bare-metal guest on the real host: kvm-unit-tests' x86/asyncpf.c expectations,
 * handler policies, #GP logging and CPL switches.
 */
import { KVM_APF_WAKE_ALL_TOKEN } from '../../shared-abi/apf';
import { MSR_KVM_ASYNC_PF_EN } from '../../shared-abi/msr';
import type { BareStep } from '../../guest/bare';
import { buildBareMachine } from '../support/guest-machine';

const PAGES = [0x100000, 0x101000, 0x102000];
const swapped = { pages: [{ gfn: 0x100, count: 3, backing: 'swapped' as const }], swapLatency: { kind: 'fixed' as const, ns: 200_000 } };
const enable: BareStep[] = [{ op: 'lapic', enable: true }, { op: 'apf_enable', sendAlways: true }, { op: 'sti' }, { op: 'wait', until: { kind: 'wake_all' }, timeoutNs: 1_000_000 }];
const touchAll: BareStep[] = PAGES.map((addr, i) => ({ op: 'touch', addr, write: true, value: i + 1 }));

describe('asyncpf.c expectations', () => {
  test('first page ready is the wake-all; then each #PF token T is followed by page ready T after zero + ACK', () => {
    const m = buildBareMachine({ hostMemory: swapped, script: [...enable, ...touchAll, { op: 'cli' }] });
    m.sim.run({ until: 50_000_000, stopWhen: () => m.guest.done() });
    const g = m.guest;
    expect(g.done()).toBe(true);
    expect(g.pageReadyTokens[0]).toBe(KVM_APF_WAKE_ALL_TOKEN);
    expect(g.notPresentTokens).toHaveLength(3);
    expect(g.pageReadyTokens.slice(1)).toEqual(g.notPresentTokens);
    // Strict alternation in the log: #PF(T) -> page ready(T) -> wait ends on T -> next #PF.
    const seq = g.log
      .filter((e) => (e.kind === 'exception' && e.vector === 14) || (e.kind === 'interrupt' && e.vector === 0xf3) || e.kind === 'wait')
      .map((e) => `${e.kind}:${e.result}:${e.token ?? ''}`);
    const [t1, t2, t3] = g.notPresentTokens;
    expect(seq).toEqual([
      `interrupt:wake_all:${KVM_APF_WAKE_ALL_TOKEN}`,
      'wait:condition:',
      `exception:not_present:${t1}`, `interrupt:page_ready:${t1}`, `wait:token:${t1}`,
      `exception:not_present:${t2}`, `interrupt:page_ready:${t2}`, `wait:token:${t2}`,
      `exception:not_present:${t3}`, `interrupt:page_ready:${t3}`, `wait:token:${t3}`,
    ]);
    // Each #PF came at CPL 0 with error code 0 and CR2 = token; the data arrived.
    for (const e of g.entries('exception')) expect(e).toMatchObject({ cpl: 0, errorCode: 0, flags: 1 });
    expect(PAGES.map((a) => m.mem.readU32(a))).toEqual([1, 2, 3]);
    // The host wrote each token only after the previous slot was zeroed and ACKed.
    const host = m.rec.records.filter((r) => r.src === 'host' && ((r.event === 'kvm_write_guest' && r.field === 'token') || r.event === 'kvm_async_pf_ack'));
    expect(host.map((r) => (r.event === 'kvm_async_pf_ack' ? 'ack' : r.value))).toEqual([KVM_APF_WAKE_ALL_TOKEN, 'ack', t1, 'ack', t2, 'ack', t3, 'ack']);
    expect(m.rec.records.filter((r) => r.event === 'bare_exception').length).toBe(3);
  });

  test('a page-ready handler that does not zero the token blocks the next page ready: the wait times out', () => {
    const m = buildBareMachine({
      hostMemory: swapped,
      pageReady: { zeroToken: false },
      pf: { limitNs: 2_000_000 },
      script: [...enable, ...touchAll.slice(0, 2)],
    });
    m.sim.run({ until: 50_000_000, stopWhen: () => m.guest.done() });
    const g = m.guest;
    // Only the wake-all ever arrives: its token stays in the slot, so the host never delivers again.
    expect(g.pageReadyTokens).toEqual([KVM_APF_WAKE_ALL_TOKEN]);
    const waits = g.entries('wait').filter((e) => e.token !== undefined);
    expect(waits[0]).toMatchObject({ result: 'timeout' });
    expect(m.mem.readU32(0x1004)).toBe(KVM_APF_WAKE_ALL_TOKEN);
  });

  test('user-only: at CPL 3 the #PF comes; at CPL 0 without SEND_ALWAYS the host halts instead', () => {
    const m = buildBareMachine({
      hostMemory: swapped,
      script: [
        { op: 'lapic', enable: true },
        { op: 'apf_enable' },
        { op: 'sti' },
        { op: 'wait', until: { kind: 'wake_all' }, timeoutNs: 1_000_000 },
        { op: 'touch', addr: PAGES[0]!, write: true },
        { op: 'cpl', cpl: 3 },
        { op: 'touch', addr: PAGES[1]!, write: true },
        { op: 'cpl', cpl: 0 },
      ],
    });
    m.sim.run({ until: 50_000_000, stopWhen: () => m.guest.done() });
    const g = m.guest;
    expect(g.done()).toBe(true);
    expect(g.entries('exception').map((e) => e.cpl)).toEqual([3]);
    expect(g.entries('cpl').map((e) => e.cpl)).toEqual([3, 0]);
    expect(m.rec.records.filter((r) => r.event === 'kvm_async_pf_not_present').map((r) => r.injected)).toEqual([false, true]);
  });
});

describe('raw operations', () => {
  test('a #GP from WRMSR is caught and logged; the script goes on', () => {
    const m = buildBareMachine({
      script: [
        { op: 'wrmsr', msr: 0x12345678, value: 1 },
        { op: 'wrmsr', msr: MSR_KVM_ASYNC_PF_EN, value: 0x1000n | 0x30n | 1n },
        { op: 'rdmsr', msr: 0x12345678 },
        { op: 'log', message: 'still here' },
      ],
    });
    m.sim.run({ until: 5_000_000, stopWhen: () => m.guest.done() });
    const g = m.guest;
    expect(g.done()).toBe(true);
    expect(g.entries('msr').map((e) => e.ok)).toEqual([false, false, false]);
    expect(g.entries('exception').map((e) => e.vector)).toEqual([13, 13, 13]);
    expect(g.entries('exception')[0]!.msr).toBe(0x12345678);
    expect(g.entries('note').map((e) => e.message)).toEqual(['still here']);
    expect(m.rec.records.some((r) => r.event === 'bare_msr')).toBe(true);
  });

  test('EN before INT: the first page ready arrives on vector 0 (no handler: logged as an exception-range delivery)', () => {
    const m = buildBareMachine({
      script: [{ op: 'lapic', enable: true }, { op: 'apf_enable', intAfterEn: true }, { op: 'sti' }, { op: 'spin', ns: 100_000 }],
    });
    m.sim.run({ until: 5_000_000, stopWhen: () => m.guest.done() });
    const first = m.rec.records.find((r) => r.event === 'kvm_apic_accept_irq');
    expect(first?.vec).toBe(0);
  });
});

describe('wait with a timeout that ends early', () => {
  test('the deadline timer is cancelled: it does not fire into a later step', () => {
    // The wake-all ends the wait after ~10 us; its 1 ms deadline must not interrupt the 2 ms spin
    // that follows with interrupts enabled.
    const m = buildBareMachine({ script: [...enable, { op: 'spin', ns: 2_000_000 }] });
    m.sim.run({ until: 50_000_000, stopWhen: () => m.guest.done() });
    const g = m.guest;
    expect(g.done()).toBe(true);
    expect(g.entries('wait').map((e) => e.result)).toEqual(['condition']);
    // Only the wake-all interrupted the guest: no timer vector (0xec) at the old 1 ms deadline.
    expect(g.entries('interrupt').map((e) => e.vector)).toEqual([0xf3]);
    expect(m.rec.records.filter((r) => r.event === 'kvm_msr' && r.ecx === 0x6e0 && r.data === 0n)).toHaveLength(1);
  });
});
