/**
 * The nested-state checker on synthetic traces, and the nested scenario vocabulary's validation
 * (`machine.nested`, `nested_migrate`).
 */
import { ScenarioError, scenarioFromValue } from '../../harness/scenario/load';
import { check, rec } from '../harness/helpers';

const switchover = (listener: 'before_set_nested_state' | 'after_set_nested_state' | 'never') => rec(100, -1, 'nested_migration', { phase: 'switchover', restore: 'two_step', fetch: 'listener', listener });
const request = (t: number, from: 'kvm_run' | 'set_nested_state' = 'kvm_run', via: 'vcpu_exit' | 'listener' = 'listener') => rec(t, 0, 'postcopy_page_request', { gfn: 0x3ffa, page: 'msr_bitmap of l2a', via, from, listener: false });
const served = (t: number, ok = true) => rec(t, 0, 'postcopy_page_served', { gfn: 0x3ffa, page: 'msr_bitmap of l2a', via: 'listener', ok, waited_ns: t - 200 });

describe('nested-state checker', () => {
  it('is quiet when every request is served and every restore succeeds', () => {
    const v = check('nested-state', [
      switchover('before_set_nested_state'),
      rec(100, -1, 'postcopy_listener_start', { queued: 0 }),
      rec(100, 0, 'kvm_set_nested_state', { ok: true, guest_mode: true, restore: 'two_step', gfn: -1, page: '', error: '' }),
      request(200),
      served(300),
      rec(300, 0, 'kvm_get_nested_state_pages', { ok: true, gfn: -1, page: '' }),
    ]);
    expect(v).toEqual([]);
  });

  it('names the blocked thread, the page and the missing listener at the end of a hung run', () => {
    const v = check('nested-state', [switchover('after_set_nested_state'), request(200, 'set_nested_state')], 'deadlock');
    expect(v).toHaveLength(1);
    expect(v[0]!.cpu).toBe(0);
    expect(v[0]!.message).toMatch(/^The VMM's KVM_SET_NESTED_STATE for vCPU 0 has been blocked since t=200ns .* on gfn 0x3ffa \(msr_bitmap of l2a\)/);
    expect(v[0]!.message).toContain('starts only after KVM_SET_NESTED_STATE returns');
    const never = check('nested-state', [switchover('never'), request(200)], 'deadlock');
    expect(never[0]!.message).toContain('vCPU 0 (in KVM_RUN)');
    expect(never[0]!.message).toContain('never starts');
  });

  it('does not report leftovers after a run that was cut short', () => {
    expect(check('nested-state', [switchover('never'), request(200)], 'vm_destroyed')).toEqual([]);
  });

  it('reports a failed KVM_SET_NESTED_STATE, saying whether the source failed or nothing could wait for the page', () => {
    const failed = rec(300, 0, 'kvm_set_nested_state', { ok: false, guest_mode: true, restore: 'at_set_nested_state', gfn: 0x3ffa, page: 'msr_bitmap of l2a', error: 'EFAULT' });
    const noListener = check('nested-state', [switchover('never'), failed], 'vm_destroyed');
    expect(noListener).toHaveLength(1);
    expect(noListener[0]!.message).toContain('no userfaultfd listener');
    const sourceFailed = check('nested-state', [switchover('before_set_nested_state'), request(200, 'set_nested_state'), served(250, false), failed], 'vm_destroyed');
    expect(sourceFailed[0]!.message).toContain('the source could not send it');
  });

  it('reports KVM_REQ_GET_NESTED_STATE_PAGES failing after the restore, once', () => {
    const v = check(
      'nested-state',
      [
        rec(300, 0, 'kvm_get_nested_state_pages', { ok: false, gfn: 0x3ffa, page: 'msr_bitmap of l2a' }),
        rec(300, 0, 'kvm_nested_internal_error', { gfn: 0x3ffa, page: 'msr_bitmap of l2a' }),
      ],
      'vm_destroyed',
    );
    expect(v).toHaveLength(1);
    expect(v[0]!.message).toContain('KVM_REQ_GET_NESTED_STATE_PAGES failed');
  });
});

describe('nested scenario format', () => {
  const base = { machine: { nested: { l2: [{ name: 'g', program: [{ op: 'touch', addr: '0x1000' }] }] } } };
  const problem = (value: object): string => {
    try {
      scenarioFromValue(value, 'x.json');
    } catch (e) {
      if (e instanceof ScenarioError) return e.message;
      throw e;
    }
    return '';
  };

  it('a scenario may consist of nested guests only; times and addresses are converted', () => {
    const s = scenarioFromValue(
      { machine: { nested: { exitHandling: '2us', l2: [{ name: 'g', pages: 2, program: [{ op: 'syscall', body: [{ op: 'compute', for: '3us' }] }, { op: 'touch', addr: '0x1ffc', write: true }] }] } } },
      undefined,
    );
    expect(s.tasks).toEqual([]);
    expect(s.machine.nested).toEqual({
      exitHandlingNs: 2000,
      l2: [{ name: 'g', pages: 2, program: [{ op: 'syscall', body: [{ op: 'compute', ns: 3000 }] }, { op: 'touch', addr: 0x1ffc, write: true }] }],
    });
  });

  it('rejects an unknown L2 op, an access outside L2 memory, a syscall in a syscall, clashing names, a missing CPU', () => {
    expect(problem({ machine: { nested: { l2: [{ name: 'g', program: [{ op: 'tuch', addr: '0x0' }] }] } } })).toContain('unknown L2 op "tuch" (did you mean "touch"?)');
    expect(problem({ machine: { nested: { l2: [{ name: 'g', pages: 1, program: [{ op: 'touch', addr: '0x1000' }] }] } } })).toContain('outside its 1 pages of memory');
    expect(problem({ machine: { nested: { l2: [{ name: 'g', program: [{ op: 'syscall', body: [{ op: 'syscall', body: [] }] }] }] } } })).toContain(
      'cannot run in an L2 syscall body',
    );
    expect(problem({ ...base, tasks: [{ name: 'g', program: [{ op: 'compute', for: '1us' }] }] })).toContain('is also a task name');
    expect(problem({ ...base, tasks: [{ name: 'kvm-g', program: [{ op: 'compute', for: '1us' }] }] })).toContain('the vCPU thread L1 creates');
    expect(problem({ machine: { vcpus: 1, nested: { l2: [{ name: 'g', cpu: 2, program: [] }] } } })).toContain('vCPU 2 does not exist');
  });

  it('nested_migrate needs nested guests; its fields are checked', () => {
    const tasks = [{ name: 'a', program: [{ op: 'compute', for: '1us' }] }];
    expect(problem({ tasks, events: [{ at: '1ms', do: 'nested_migrate' }] })).toContain('"nested_migrate" needs nested guests');
    expect(problem({ ...base, events: [{ at: '1ms', do: 'nested_migrate', restore: 'lazy' }] })).toContain('expected "two_step"');
    const s = scenarioFromValue({ ...base, events: [{ at: '1ms', do: 'nested_migrate', listener: 'never', fetchFails: true }] }, undefined);
    expect(s.events[0]!.action).toEqual({ do: 'nested_migrate', listener: 'never', fetchFails: true });
  });
});
