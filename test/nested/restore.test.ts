/**
 * Nested state under post-copy (docs/nested.md): every ordering of restore design x fetch mechanism
 * x listener start, a source that cannot send the pages, a switch-over while L1 (not L2) runs, the
 * listener's serialisation, and data that comes over post-copy intact.
 */
import { failures, recs, run } from './support';

type Restore = 'two_step' | 'at_set_nested_state';
type Fetch = 'vcpu_exit' | 'listener';
type Listener = 'before_set_nested_state' | 'after_set_nested_state' | 'never';

const L2_LONG = [
  { op: 'touch', addr: '0x1000', write: true, value: 7 },
  { op: 'compute', for: '200us' },
  { op: 'touch', addr: '0x1000' },
];

function migration(restore: Restore, fetch: Fetch, listener: Listener, extra: Record<string, unknown> = {}, opts: { vcpus?: number; l2?: object[]; on?: object } = {}): object {
  return {
    machine: { vcpus: opts.vcpus ?? 1, nested: { l2: opts.l2 ?? [{ name: 'l2a', cpu: 0, pages: 4, program: L2_LONG }] } },
    hostMemory: { latency: { remote: '30us', fail: '30us' } },
    events: [{ on: opts.on ?? { event: 'nested_vmenter' }, after: '50us', do: 'nested_migrate', restore, fetch, listener, ...extra }],
    expect: { outcome: 'completed' },
    checkers: { 'nested-state': true },
    budget: { maxTime: '1s' },
  };
}

/** The outcome each ordering must have, and why (docs/nested.md). */
function expected(restore: Restore, fetch: Fetch, listener: Listener): 'completed' | 'deadlock' | 'vm_destroyed' {
  if (restore === 'two_step') {
    // The pages are needed at the first KVM_RUN: the vCPU exits for them, or blocks on a listener that is up by then.
    return fetch === 'vcpu_exit' || listener !== 'never' ? 'completed' : 'deadlock';
  }
  // Pages needed inside KVM_SET_NESTED_STATE, on the VMM thread: only a running listener can serve it.
  if (listener === 'before_set_nested_state') return 'completed';
  if (listener === 'after_set_nested_state') return 'deadlock';
  // No listener at all: userfaultfd-registered memory blocks for ever; a vCPU-exit-only VMM gets -EFAULT.
  return fetch === 'listener' ? 'deadlock' : 'vm_destroyed';
}

const ORDERINGS: Array<[Restore, Fetch, Listener]> = [];
for (const r of ['two_step', 'at_set_nested_state'] as const) {
  for (const f of ['vcpu_exit', 'listener'] as const) for (const l of ['before_set_nested_state', 'after_set_nested_state', 'never'] as const) ORDERINGS.push([r, f, l]);
}

describe('nested state restore orderings', () => {
  test.each(ORDERINGS)('restore=%s fetch=%s listener=%s', (restore, fetch, listener) => {
    const want = expected(restore, fetch, listener);
    const r = run(migration(restore, fetch, listener));
    expect(r.outcome).toBe(want);
    expect(recs(r, 'kvm_get_nested_state', { guest_mode: true })).toHaveLength(1);
    const checker = r.violations.filter((v) => v.checker === 'nested-state');
    if (want === 'completed') {
      expect(checker).toEqual([]);
      expect(recs(r, 'kvm_set_nested_state', { ok: true, guest_mode: true, restore })).toHaveLength(1);
      expect(recs(r, 'task_access', { task: 'l2a', write: false, value: 7 })).toHaveLength(1);
      // Two-step maps the pages at the first KVM_RUN; the other design has them mapped already.
      expect(recs(r, 'kvm_get_nested_state_pages', { ok: true })).toHaveLength(restore === 'two_step' ? 1 : 0);
      const from = restore === 'two_step' ? 'kvm_run' : 'set_nested_state';
      const via = restore === 'two_step' ? fetch : 'listener';
      expect(recs(r, 'postcopy_page_request').map((x) => [x.page, x.from, x.via])).toEqual([
        ['msr_bitmap of l2a', from, via],
        ['virtual_apic of l2a', from, via],
      ]);
    } else if (want === 'deadlock') {
      // The checker names the blocked thread and the page it waits for, and who should have served it.
      expect(checker).toHaveLength(1);
      expect(checker[0]!.message).toContain('gfn');
      expect(checker[0]!.message).toContain('msr_bitmap of l2a');
      expect(checker[0]!.message).toContain(restore === 'two_step' ? 'vCPU 0 (in KVM_RUN)' : "The VMM's KVM_SET_NESTED_STATE for vCPU 0");
      expect(checker[0]!.message).toMatch(listener === 'never' ? /never starts/ : /only after KVM_SET_NESTED_STATE returns/);
      expect(r.endDetail ?? '').toContain('msr_bitmap of l2a');
    } else {
      expect(checker).toHaveLength(1);
      expect(checker[0]!.message).toContain('-EFAULT');
      expect(recs(r, 'kvm_set_nested_state', { ok: false, error: 'EFAULT' })).toHaveLength(1);
      expect(recs(r, 'nested_migration', { phase: 'abort' })).toHaveLength(1);
    }
  });

  test.each(['two_step', 'at_set_nested_state'] as const)('a source that cannot send the pages: %s', (restore) => {
    const r = run(migration(restore, 'listener', 'before_set_nested_state', { fetchFails: true }));
    expect(r.outcome).toBe('vm_destroyed');
    const v = r.violations.filter((x) => x.checker === 'nested-state');
    expect(v).toHaveLength(1);
    if (restore === 'two_step') {
      // The restore "succeeded" and the VM resumed; the error comes at the first KVM_RUN.
      expect(recs(r, 'kvm_set_nested_state', { ok: true })).toHaveLength(1);
      expect(recs(r, 'nested_migration', { phase: 'resume' })).toHaveLength(1);
      expect(recs(r, 'kvm_get_nested_state_pages', { ok: false })).toHaveLength(1);
      expect(v[0]!.message).toContain('KVM_REQ_GET_NESTED_STATE_PAGES failed');
    } else {
      // The ioctl fails; the destination never resumed.
      expect(recs(r, 'kvm_set_nested_state', { ok: false })).toHaveLength(1);
      expect(recs(r, 'nested_migration', { phase: 'resume' })).toHaveLength(0);
      expect(v[0]!.message).toContain('the source could not send it');
    }
  });

  test('switch-over while L1 runs (the vCPU thread sleeps on an async PF): nothing to map at restore; the next VMRESUME fetches the pages', () => {
    const r = run(
      migration('at_set_nested_state', 'vcpu_exit', 'never', {}, {
        l2: [{ name: 'l2a', cpu: 0, pages: 4, backing: 'swapped', program: L2_LONG }],
        on: { event: 'kvm_async_pf_task_wait_schedule' },
      }),
    );
    expect(failures(r)).toEqual([]);
    expect(recs(r, 'kvm_get_nested_state', { guest_mode: false })).toHaveLength(1);
    expect(recs(r, 'kvm_set_nested_state', { ok: true, guest_mode: false })).toHaveLength(1);
    // KVM_RUN: the emulated VMRESUME maps the pages, the vCPU exits to request each.
    expect(recs(r, 'postcopy_page_request').map((x) => [x.from, x.via])).toEqual([
      ['kvm_run', 'vcpu_exit'],
      ['kvm_run', 'vcpu_exit'],
    ]);
    expect(recs(r, 'nested_l2_exit')).toHaveLength(1);
  });

  test('the listener serves one page at a time; vCPUs that exit fetch in parallel', () => {
    const two = [
      { name: 'l2a', cpu: 0, pages: 4, program: L2_LONG },
      { name: 'l2b', cpu: 1, pages: 4, program: L2_LONG },
    ];
    const served = (fetch: Fetch): number[] => {
      const r = run(migration('two_step', fetch, 'before_set_nested_state', {}, { vcpus: 2, l2: two, on: { event: 'nested_vmenter', cpu: 1 } }));
      expect(failures(r)).toEqual([]);
      return recs(r, 'postcopy_page_served').map((x) => x.t);
    };
    const listener = served('listener');
    expect(listener).toHaveLength(4);
    // Four pages, one 30us fetch after the other (the two vCPUs' requests queue behind each other).
    expect(listener[3]! - listener[0]!).toBeGreaterThanOrEqual(3 * 30_000);
    const exits = served('vcpu_exit');
    expect(exits).toHaveLength(4);
    // Each vCPU fetches its own pages: the two vCPUs' first pages arrive together.
    expect(exits[1]! - exits[0]!).toBeLessThan(30_000);
  });

  test('L2 memory that is still on the source comes over through async #PF VM-exits, byte for byte', () => {
    const r = run(migration('two_step', 'listener', 'before_set_nested_state', { l2Memory: true }));
    expect(failures(r)).toEqual([]);
    expect(recs(r, 'host_page_evict', { why: 'postcopy' }).length).toBe(2 + 4);
    const np = recs(r, 'kvm_async_pf_not_present', { injected: true });
    expect(np.length).toBeGreaterThanOrEqual(1);
    expect(recs(r, 'kvm_nested_apf_vmexit', { token: np[0]!.token })).toHaveLength(1);
    expect(recs(r, 'host_page_fault_in', { backing: 'remote', ok: true }).length).toBeGreaterThanOrEqual(3);
    // The write before the switch-over is what L2 reads after it (page-integrity checks the checksums too).
    expect(recs(r, 'task_access', { task: 'l2a', write: false, value: 7 })).toHaveLength(1);
    expect(r.violations).toEqual([]);
  });
});
