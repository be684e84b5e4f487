/**
 * L0's decision for an L2 fault (spec §3.5.2, §5.1): every combination of DELIVERY_AS_PF_VMEXIT
 * (bit 2), L2's CPL and SEND_ALWAYS, with both forms of the #PF VM-exit. The CPL check comes
 * before the guest-mode check, so it is L2's CPL that counts (spec §8 q.8, decided in docs/host.md).
 */
import { failures, indexOf, l2FaultScenario, recs, run, type L2FaultCase } from './support';

const CASES: L2FaultCase[] = [];
for (const bit2 of [true, false]) for (const cpl of [3, 0] as const) for (const sendAlways of [false, true]) CASES.push({ bit2, cpl, sendAlways });

/** What spec §3.5.2 says: the CPL rule first (L2's CPL in guest mode), then guest mode needs bit 2. */
const delivered = (c: L2FaultCase): boolean => (c.cpl === 3 || c.sendAlways) && c.bit2;

describe('L2 fault: bit 2 x L2 CPL x SEND_ALWAYS', () => {
  test.each(CASES)('bit2=$bit2 cpl=$cpl send_always=$sendAlways', (c) => {
    const r = run(l2FaultScenario(c));
    expect(failures(r)).toEqual([]);
    expect(r.outcome).toBe('completed');
    const np = recs(r, 'kvm_async_pf_not_present');
    expect(np).toHaveLength(1);
    // L1 told L0 what it wanted.
    expect(recs(r, 'kvm_async_pf_enable')[0]).toMatchObject({ pf_vmexit: c.bit2, send_always: c.sendAlways });
    // The fault came from L2 (entered at CPL 3), at the CPL asked for: L2's accesses are user or kernel ones.
    expect(recs(r, 'nested_vmenter')[0]).toMatchObject({ cpl: 3 });
    const l2Accesses = recs(r, 'task_access', { task: 'l2a' });
    expect(l2Accesses.length).toBe(2);
    for (const a of l2Accesses) expect(a.kernel).toBe(c.cpl === 0);
    if (delivered(c)) {
      expect(np[0]).toMatchObject({ injected: true, halt: false });
      const token = np[0]!.token;
      expect(recs(r, 'kvm_nested_apf_vmexit')).toEqual([expect.objectContaining({ token, form: 'payload' })]);
      expect(recs(r, 'kvm_async_pf_halt')).toHaveLength(0);
      // The async #PF never reaches L2: it exits to L1, which parks the vCPU thread on the token.
      expect(recs(r, 'kvm_inj_exception', { exception: 14 })).toHaveLength(0);
      expect(recs(r, 'kvm_async_pf_task_wait_schedule', { token, task: 'kvm-l2a' })).toHaveLength(1);
      expect(recs(r, 'kvm_async_pf_task_woken', { token, task: 'kvm-l2a' })).toHaveLength(1);
    } else {
      expect(np[0]).toMatchObject({ injected: false, halt: true });
      expect(recs(r, 'kvm_nested_apf_vmexit')).toHaveLength(0);
      expect(recs(r, 'kvm_async_pf_halt').length).toBeGreaterThanOrEqual(1);
      expect(recs(r, 'kvm_async_pf_task_wait_schedule')).toHaveLength(0);
      // Nothing was delivered, so nothing is answered either (June 2020 rule).
      expect(recs(r, 'kvm_async_pf_ready', { token: np[0]!.token, notified: false })).toHaveLength(1);
    }
    // Either way L2 got its data.
    expect(recs(r, 'task_access', { task: 'l2a', write: false, value: 42 })).toHaveLength(1);
    expect(recs(r, 'nested_l2_exit')).toHaveLength(1);
  });

  test.each([true, false])('both forms of the #PF VM-exit carry the token in the exit qualification (nested_payload %s)', (payload) => {
    const r = run(l2FaultScenario({ bit2: true, cpl: 3, sendAlways: false, payload }));
    expect(failures(r)).toEqual([]);
    const token = recs(r, 'kvm_async_pf_not_present')[0]!.token;
    expect(recs(r, 'kvm_nested_apf_vmexit')).toEqual([expect.objectContaining({ token, form: payload ? 'payload' : 'nested_apf_token' })]);
    expect(recs(r, 'nested_vmexit', { reason: 'exception', vector: 14 })).toEqual([expect.objectContaining({ exit_qualification: token, error_code: 0 })]);
    expect(recs(r, 'l1_kvm_exit', { reason: 'exception' })).toEqual([expect.objectContaining({ exit_qualification: token, apf_flags: 1 })]);
  });

  test('L1 reads and resets its flags right after the #PF VM-exit, before it enables interrupts', () => {
    const r = run(l2FaultScenario({ bit2: true, cpl: 3, sendAlways: false }));
    const exit = indexOf(r, 'nested_vmexit', { reason: 'exception' });
    const read = indexOf(r, 'kvm_read_and_reset_apf_flags', { flags: 1 }, exit);
    const l1exit = indexOf(r, 'l1_kvm_exit', {}, exit);
    expect(exit).toBeGreaterThan(0);
    expect(read).toBeGreaterThan(exit);
    expect(l1exit).toBeGreaterThan(read);
    // No interrupt is taken in between (IRQs are off on the exit path).
    expect(r.records.slice(exit, read).filter((x) => x.event === 'interrupt')).toEqual([]);
    // The vCPU is back in L1 with IF=0 at the read.
    expect(r.records[read]!.cpu).toBe(0);
  });
});
