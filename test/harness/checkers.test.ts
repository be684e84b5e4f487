import { CHECKERS } from '../../harness/checkers';
import { check, rec } from './helpers';

const T = 0x1001;
const enable = (cpu = 0, t = 0) => rec(t, cpu, 'kvm_async_pf_enable', { msr_en_val: 0x10001n, gpa: 0x10000, send_always: false, delivery_as_int: true, pf_vmexit: false });
const notPresent = (t: number, token = T, cpu = 0, injected = true) => rec(t, cpu, 'kvm_async_pf_not_present', { token, gva: 0x7f0000001000, injected, halt: !injected });
const ready = (t: number, token = T, cpu = 0, notified = true) => rec(t, cpu, 'kvm_async_pf_ready', { token, gva: 0x7f0000001000, notified });

describe('checker registry', () => {
  it('has the eight original checkers first, then later ones (stale-translation), each with a description and an invariant', () => {
    expect(CHECKERS.map((c) => c.name).slice(0, 8)).toEqual([
      'apf-answered', 'token-unique', 'host-writes', 'slot-busy', 'sleep-context', 'hung-task', 'page-integrity', 'interrupts',
    ]);
    expect(CHECKERS.map((c) => c.name)).toContain('stale-translation');
    for (const c of CHECKERS) {
      expect(c.description.length).toBeGreaterThan(10);
      expect(c.invariant.length).toBeGreaterThan(20);
    }
  });
});

describe('apf-answered', () => {
  it('stays quiet when each injected not-present gets one page-ready', () => {
    expect(check('apf-answered', [enable(), notPresent(10), ready(100), notPresent(200, 0x2001), ready(300, 0x2001)])).toEqual([]);
  });
  it('accepts a wake-all as the answer, and the late page-ready after it', () => {
    expect(check('apf-answered', [notPresent(10), ready(50, 0xffffffff), ready(100)])).toEqual([]);
  });
  it('accepts a documented drop (APF disable clears the queue)', () => {
    expect(check('apf-answered', [notPresent(10), rec(20, 0, 'kvm_async_pf_clear_queue', { reason: 'disable', dropped: 1, tokens: '0x1001' })])).toEqual([]);
  });
  it('fires when a not-present is never answered', () => {
    const v = check('apf-answered', [notPresent(10)]);
    expect(v).toHaveLength(1);
    expect(v[0]?.message).toMatch(/token 0x1001 .* never answered/);
  });
  it('does not count leftovers when the run ended in a panic', () => {
    expect(check('apf-answered', [notPresent(10)], 'panic')).toEqual([]);
  });
  it('fires on a second page-ready for the same token', () => {
    const v = check('apf-answered', [notPresent(10), ready(100), ready(200)]);
    expect(v.map((x) => x.message)).toEqual([expect.stringMatching(/second page-ready for token 0x1001/)]);
  });
  it('fires on a page-ready for a fault that ended in an artificial halt (pre-June-2020 host)', () => {
    const v = check('apf-answered', [notPresent(10, T, 0, false), ready(100)]);
    expect(v[0]?.message).toMatch(/never injected/);
  });
  it('is quiet when that page-ready is not sent (current host)', () => {
    expect(check('apf-answered', [notPresent(10, T, 0, false), ready(100, T, 0, false)])).toEqual([]);
  });
  it('after a crash: the crashing CPU\'s faults are dropped, the other CPUs\' may still be answered and need not be', () => {
    const crash = rec(50, 1, 'crash', { message: 'sysrq' }, 'guest');
    // CPU 0 (not the crashing CPU) keeps APF on: its late page-ready is allowed, and so is none.
    expect(check('apf-answered', [notPresent(10), crash, ready(100)])).toEqual([]);
    expect(check('apf-answered', [notPresent(10), crash])).toEqual([]);
    // The crashing CPU's fault was dropped with the kernel: a page-ready for it is reported.
    const v = check('apf-answered', [notPresent(10, 0x1002, 1), crash, ready(100, 0x1002, 1)]);
    expect(v[0]?.message).toMatch(/after it was dropped \(guest crash/);
  });
  it('fires on the 2017 #DF cancellation of two different tokens', () => {
    const v = check('apf-answered', [notPresent(10), notPresent(20, 0x2001), ready(30), rec(30, 0, 'kvm_async_pf_df_cancel', { token: T, pending_token: 0x2001 })]);
    expect(v).toHaveLength(1);
    expect(v[0]?.message).toMatch(/both events are lost/);
  });
});

describe('token-unique', () => {
  it('is quiet for distinct tokens and reuse after completion', () => {
    expect(check('token-unique', [notPresent(10), ready(20), notPresent(30), notPresent(40, 0x2001)])).toEqual([]);
  });
  it('fires when a token is handed out twice while outstanding', () => {
    const v = check('token-unique', [notPresent(10), notPresent(20, T, 1)]);
    expect(v[0]?.message).toMatch(/token 0x1001 handed out on cpu1 while .* cpu0/);
  });
  it('fires on token 0 when page-ready goes through the token slot, not with #PF-based page ready', () => {
    expect(check('token-unique', [enable(), notPresent(10, 0)])[0]?.message).toMatch(/token 0 handed out on cpu0: the token slot uses 0/);
    const old = rec(0, 0, 'kvm_async_pf_enable', { msr_en_val: 0x10003n, gpa: 0x10000, send_always: true, delivery_as_int: false, pf_vmexit: false });
    expect(check('token-unique', [old, notPresent(10, 0)])).toEqual([]);
  });
  it('forgets tokens dropped by a reset', () => {
    expect(check('token-unique', [notPresent(10), rec(15, 0, 'kvm_vcpu_reset', {}), notPresent(20)])).toEqual([]);
  });
});

describe('host-writes', () => {
  const write = (t: number, gpa: number, field: 'flags' | 'token' | 'reason' = 'token', len = 4, cpu = 0) => rec(t, cpu, 'kvm_write_guest', { gpa, len, value: 1, field, ok: true });
  it('is quiet for flags and token writes inside the registered area', () => {
    expect(check('host-writes', [enable(), write(10, 0x10000, 'flags'), write(20, 0x10004)])).toEqual([]);
  });
  it('fires on a write beyond byte 7', () => {
    expect(check('host-writes', [enable(), write(10, 0x10008, 'token')])[0]?.message).toMatch(/only bytes 0-7/);
  });
  it('fires on a write after disable', () => {
    const v = check('host-writes', [enable(), rec(5, 0, 'kvm_async_pf_disable', { msr_en_val: 0n }), write(10, 0x10004)]);
    expect(v[0]?.message).toMatch(/after APF was disabled/);
  });
  it('fires on a write after the guest kexec\'d without disabling', () => {
    const v = check('host-writes', [enable(), rec(5, 0, 'kexec', {}, 'guest'), write(10, 0x10004)]);
    expect(v[0]?.message).toMatch(/kexec/);
  });
  it('after a crash on cpu1: fires on a write into cpu1\'s area, not into cpu0\'s (the crash path leaves it registered)', () => {
    const crash = rec(5, 1, 'crash', { message: 'sysrq' }, 'guest');
    const enable1 = rec(0, 1, 'kvm_async_pf_enable', { msr_en_val: 0x10081n, gpa: 0x10080, send_always: false, delivery_as_int: true, pf_vmexit: false });
    expect(check('host-writes', [enable(), enable1, crash, write(10, 0x10004)])).toEqual([]);
    const v = check('host-writes', [enable(), enable1, crash, write(10, 0x10084, 'token', 4, 1)]);
    expect(v[0]?.message).toMatch(/went away \(crash\)/);
  });
  it('fires on a write for a vCPU that never enabled', () => {
    expect(check('host-writes', [write(10, 0x10004)])).toHaveLength(1);
  });
  it('ignores failed writes (ok: false): they reached no guest memory', () => {
    const failed = rec(10, 0, 'kvm_write_guest', { gpa: -1, len: 4, value: 1, field: 'flags', ok: false });
    expect(check('host-writes', [enable(), failed])).toEqual([]);
    expect(check('host-writes', [failed])).toEqual([]);
  });
});

describe('slot-busy', () => {
  const tokenWrite = (t: number, value: number) => rec(t, 0, 'kvm_write_guest', { gpa: 0x10004, len: 4, value, field: 'token', ok: true });
  it('is quiet when the guest clears the slot between page-readies', () => {
    expect(check('slot-busy', [enable(), tokenWrite(10, T), rec(20, 0, 'apf_token_clear', { token: T }), tokenWrite(30, 0x2001)])).toEqual([]);
  });
  it('fires when a token is written over an uncleared one', () => {
    expect(check('slot-busy', [enable(), tokenWrite(10, T), tokenWrite(30, 0x2001)])[0]?.message).toMatch(/still held 0x1001/);
  });
  it('fires when flags are written over unread flags', () => {
    const flags = (t: number) => rec(t, 0, 'kvm_write_guest', { gpa: 0x10000, len: 4, value: 1, field: 'flags', ok: true });
    expect(check('slot-busy', [flags(10), flags(20)])).toHaveLength(1);
    expect(check('slot-busy', [flags(10), rec(15, 0, 'kvm_read_and_reset_apf_flags', { flags: 1 }), flags(20)])).toEqual([]);
  });
  it('ignores failed writes (ok: false): the slot did not change', () => {
    const flags = (t: number, ok: boolean) => rec(t, 0, 'kvm_write_guest', { gpa: -1, len: 4, value: 1, field: 'flags', ok });
    expect(check('slot-busy', [flags(10, false), flags(20, false)])).toEqual([]);
    expect(check('slot-busy', [flags(10, true), flags(20, false), flags(30, true)])).toHaveLength(1);
  });
});

describe('sleep-context', () => {
  it('fires on a guest BUG record and is quiet otherwise', () => {
    expect(check('sleep-context', [rec(1, 0, 'sched_switch', { prev: 'a', next: 'b', prev_state: 'uninterruptible' })])).toEqual([]);
    const v = check('sleep-context', [rec(1, 0, 'bug', { kind: 'scheduling_while_atomic', task: 'a', message: 'preempt_count 1' })]);
    expect(v[0]?.message).toBe('BUG: scheduling while atomic (task a): preempt_count 1');
  });
});

describe('hung-task', () => {
  const wait = (t: number) => rec(t, 0, 'kvm_async_pf_task_wait_schedule', { token: T, task: 'worker' });
  it('is quiet when the waiter is woken', () => {
    expect(check('hung-task', [wait(10), rec(100, 0, 'kvm_async_pf_task_woken', { token: T, task: 'worker', waited_ns: 90 })])).toEqual([]);
  });
  it('fires when a task still waits at the end for longer than the timeout', () => {
    expect(check('hung-task', [wait(10)])[0]?.message).toMatch(/task worker still waits for token 0x1001/);
  });
  it('respects the timeout option', () => {
    expect(check('hung-task', [wait(10)], 'completed', { timeout: 20_000_000_000 })).toEqual([]);
  });
  it('fires on the guest detector', () => {
    expect(check('hung-task', [rec(5, 0, 'hung_task', { task: 'worker', blocked_ns: 120e9 })])).toHaveLength(1);
  });
});

describe('page-integrity', () => {
  it('is quiet when the checksum survives eviction', () => {
    expect(check('page-integrity', [rec(1, -1, 'host_page_evict', { gfn: 5, checksum: 0xabc, why: 'explicit' }), rec(2, 0, 'host_page_fault_in', { gfn: 5, checksum: 0xabc, ok: true, backing: 'swapped', why: 'sync' })])).toEqual([]);
  });
  it('fires when the page comes back different', () => {
    expect(check('page-integrity', [rec(1, -1, 'host_page_evict', { gfn: 5, checksum: 0xabc, why: 'explicit' }), rec(2, 0, 'host_page_fault_in', { gfn: 5, checksum: 0xabd, ok: true, backing: 'swapped', why: 'sync' })])).toHaveLength(1);
  });
  it('fires when a task reads something other than what it wrote', () => {
    const w = rec(1, 0, 'task_access', { task: 'a', gva: 0x7f0000001000, write: true, value: 42, kernel: false });
    expect(check('page-integrity', [w, rec(2, 0, 'task_access', { task: 'a', gva: 0x7f0000001000, write: false, value: 42, kernel: false })])).toEqual([]);
    expect(check('page-integrity', [w, rec(2, 0, 'task_access', { task: 'a', gva: 0x7f0000001000, write: false, value: 0, kernel: false })])).toHaveLength(1);
  });
});

describe('interrupts', () => {
  const accept = (t: number, vec = 0xf3, coalesced = false) => rec(t, 0, 'kvm_apic_accept_irq', { apicid: 0, dm: 'fixed', vec, coalesced });
  const inj = (t: number, irq = 0xf3) => rec(t, 0, 'kvm_inj_virq', { irq });
  it('is quiet when each accepted interrupt is injected once', () => {
    expect(check('interrupts', [accept(1), inj(2), accept(3), accept(4, 0xf3, true), inj(5)])).toEqual([]);
  });
  it('fires on a doubled injection', () => {
    expect(check('interrupts', [accept(1), inj(2), inj(3)])[0]?.message).toMatch(/doubled/);
  });
  it('fires on a lost interrupt at the end', () => {
    expect(check('interrupts', [accept(1)])[0]?.message).toMatch(/never injected/);
  });
  it('matches page-ready sent and handled', () => {
    const handledOk = [ready(1), rec(2, 0, 'sysvec_kvm_asyncpf_interrupt', { token: T })];
    expect(check('interrupts', handledOk)).toEqual([]);
    expect(check('interrupts', [...handledOk, rec(3, 0, 'sysvec_kvm_asyncpf_interrupt', { token: 0 })])).toHaveLength(1);
    expect(check('interrupts', [ready(1)])[0]?.message).toMatch(/lost page-ready/);
  });
});
