/**
 * The L1 hypervisor and the routing of L2 exits (guest/nested, host/nested/vmx.ts): what L1 sees
 * for each kind of exit, scheduling in L1 while L2 guests run, more than one vCPU, nested state
 * pages on ordinary host memory, the older hosts' forms, and the consequence of losing the flags.
 */
import { PAGE_SIZE } from '../../shared-abi/addr';
import { planNested } from '../../guest/nested/layout';
import type { ApfHandlers } from '../../guest/handlers';
import { failures, indexOf, recs, run } from './support';

const compute = (d: string) => ({ op: 'compute', for: d });
const touch = (addr: string, write = false) => ({ op: 'touch', addr, ...(write ? { write: true, value: 5 } : {}) });

describe('exits from L2 that L1 handles', () => {
  test('an NMI for L1 while L2 runs: NMI-exiting VM-exit, L1 takes the NMI, then re-enters L2', () => {
    const r = run({
      machine: { vcpus: 1, nested: { l2: [{ name: 'l2a', cpu: 0, program: [compute('100us')] }] } },
      events: [{ on: { event: 'nested_vmenter' }, after: '20us', do: 'nmi', cpu: 0 }],
    });
    expect(failures(r)).toEqual([]);
    const exit = indexOf(r, 'kvm_nested_vmexit_inject', { reason: 'nmi', vector: 2 });
    expect(exit).toBeGreaterThan(0);
    const nmi = indexOf(r, 'nmi', {}, exit);
    expect(nmi).toBeGreaterThan(exit);
    expect(r.records[nmi]).toMatchObject({ src: 'cpu', cpl: 0 });
    expect(indexOf(r, 'nested_vmenter', { launch: false }, nmi)).toBeGreaterThan(nmi);
    expect(recs(r, 'nested_l2_exit')).toHaveLength(1);
  });

  test("L2's HLT is L1's to handle: the vCPU thread sees L2 is done and exits", () => {
    const r = run({ machine: { vcpus: 1, nested: { l2: [{ name: 'l2a', program: [touch('0x0', true)] }] } } });
    expect(failures(r)).toEqual([]);
    const done = indexOf(r, 'nested_l2_exit');
    expect(indexOf(r, 'kvm_nested_vmexit_inject', { reason: 'hlt' }, done)).toBeGreaterThan(done);
    expect(indexOf(r, 'task_exit', { task: 'kvm-l2a' }, done)).toBeGreaterThan(done);
    // The host never halted the vCPU for it.
    expect(recs(r, 'kvm_vcpu_block', { why: 'hlt' }).filter((x) => x.t > r.records[done]!.t && x.t < r.records[done]!.t + 500)).toEqual([]);
  });

  test('L1 keeps scheduling while L2 runs: its tick makes L2 exit and the vCPU thread is preempted for another task', () => {
    const r = run({
      machine: { vcpus: 1, nested: { l2: [{ name: 'l2a', cpu: 0, program: [compute('8ms')] }] } },
      tasks: [{ name: 'batch', cpu: 0, start: '50us', program: [compute('2ms')] }],
    });
    expect(failures(r)).toEqual([]);
    expect(recs(r, 'kvm_nested_vmexit_inject', { reason: 'external_interrupt', vector: 0xec }).length).toBeGreaterThanOrEqual(1);
    // The slice ended at a tick: kvm-l2a gave the CPU to batch between two VM entries.
    expect(recs(r, 'sched_switch', { prev: 'kvm-l2a', next: 'batch' }).length).toBeGreaterThanOrEqual(1);
    expect(recs(r, 'task_exit', { task: 'batch' })).toHaveLength(1);
    expect(recs(r, 'nested_l2_exit')).toHaveLength(1);
  });

  test('two vCPUs, an L2 guest on each: both fault, get their own tokens, and both vCPU threads sleep while L1 runs other work', () => {
    const r = run({
      machine: {
        vcpus: 2,
        nested: {
          l2: [
            { name: 'l2a', cpu: 0, backing: 'swapped', program: [touch('0x1000', true), touch('0x1000')] },
            { name: 'l2b', cpu: 1, backing: 'swapped', program: [touch('0x2000', true), touch('0x2000')] },
          ],
        },
      },
      tasks: [
        { name: 'w0', cpu: 0, nice: 5, program: [compute('300us')] },
        { name: 'w1', cpu: 1, nice: 5, program: [compute('300us')] },
      ],
    });
    expect(failures(r)).toEqual([]);
    const exits = recs(r, 'kvm_nested_apf_vmexit');
    expect(exits.map((x) => x.cpu).sort()).toEqual([0, 1]);
    expect(new Set(exits.map((x) => x.token)).size).toBe(2);
    for (const x of exits) {
      expect(recs(r, 'kvm_async_pf_task_wait_schedule', { token: x.token, task: x.cpu === 0 ? 'kvm-l2a' : 'kvm-l2b' })).toHaveLength(1);
    }
    expect(recs(r, 'sched_switch', { prev: 'kvm-l2a', next: 'w0', prev_state: 'uninterruptible' })).toHaveLength(1);
    expect(recs(r, 'sched_switch', { prev: 'kvm-l2b', next: 'w1', prev_state: 'uninterruptible' })).toHaveLength(1);
    expect(recs(r, 'nested_l2_exit')).toHaveLength(2);
  });
});

describe('nested state pages on ordinary host memory', () => {
  test("a swapped-out MSR bitmap: L0's emulated VMLAUNCH faults it in on the vCPU thread, then enters L2", () => {
    const spec = [{ name: 'l2a', program: [touch('0x0')] }];
    const [region] = planNested(64 * 1024 * 1024, [{ name: 'l2a', program: [] }]);
    const r = run({
      machine: { vcpus: 1, nested: { l2: spec } },
      hostMemory: { pages: [{ gfn: Math.floor(region!.msrBitmap / PAGE_SIZE), backing: 'swapped' }], latency: { swap: '40us' } },
    });
    expect(failures(r)).toEqual([]);
    const fin = recs(r, 'host_page_fault_in', { gfn: Math.floor(region!.msrBitmap / PAGE_SIZE) });
    expect(fin).toEqual([expect.objectContaining({ why: 'sync', backing: 'swapped' })]);
    const entry = recs(r, 'l1_kvm_entry')[0]!;
    const vmenter = recs(r, 'kvm_nested_vmenter')[0]!;
    // L1 executed VMLAUNCH once; L0 completed it only after the page-in.
    expect(vmenter.t - entry.t).toBeGreaterThanOrEqual(40_000);
    expect(recs(r, 'nested_l2_exit')).toHaveLength(1);
  });
});

describe('older hosts and L1s', () => {
  test('a v4.19 host and a v5.2 L1: nested_apf_token form, and page ready (a #PF, reason 2) is a #PF VM-exit too while L2 runs', () => {
    const r = run({
      machine: {
        vcpus: 1,
        guest: { profile: 'linux-5.2' },
        host: { profile: 'linux-4.19' },
        nested: {
          l2: [
            { name: 'l2a', cpu: 0, pages: 4, backing: 'swapped', program: [touch('0x1000', true), touch('0x2000', true)] },
            { name: 'l2b', cpu: 0, pages: 2, program: [compute('300us')] },
          ],
        },
      },
    });
    expect(failures(r)).toEqual([]);
    expect(recs(r, 'kvm_nested_apf_vmexit').every((x) => x.form === 'nested_apf_token')).toBe(true);
    // The wake-all after enabling reached L1 while L2 ran: a #PF VM-exit whose flags say PAGE_READY.
    expect(recs(r, 'l1_kvm_exit', { reason: 'exception', exit_qualification: 0xffffffff, apf_flags: 2 })).toHaveLength(1);
    expect(recs(r, 'apf_task_wake_all').length).toBeGreaterThanOrEqual(1);
    expect(recs(r, 'kvm_async_pf_task_woken', { task: 'kvm-l2a' })).toHaveLength(2);
    expect(recs(r, 'nested_l2_exit')).toHaveLength(2);
  });
});

describe('losing the flags', () => {
  test('a #PF VM-exit whose flags were consumed before L1 read them looks like an ordinary #PF of L2: L1 reflects it and L2 dies', () => {
    // A readAndResetFlags that resets the flags but reports 0 (as if something read them first).
    const lost: Partial<ApfHandlers> = {
      *readAndResetFlags(api) {
        yield* api.defaults.readAndResetFlags(api);
        return 0;
      },
    };
    const r = run(
      {
        machine: { vcpus: 1, nested: { l2: [{ name: 'l2a', cpu: 0, pages: 4, backing: 'swapped', program: [touch('0x1000')] }] } },
        tasks: [{ name: 'w', cpu: 0, nice: 5, program: [compute('300us')] }],
      },
      { handlers: lost },
    );
    expect(r.outcome).toBe('completed');
    const token = recs(r, 'kvm_nested_apf_vmexit')[0]!.token;
    expect(recs(r, 'l1_kvm_exit', { reason: 'exception', exit_qualification: token, apf_flags: 0 })).toHaveLength(1);
    expect(recs(r, 'warn').map((x) => x.message)).toEqual([expect.stringContaining(`with no async PF flags: reflected into L2`)]);
    expect(recs(r, 'nested_l2_oops', { l2: 'l2a' })).toHaveLength(1);
    expect(recs(r, 'nested_l2_exit')).toHaveLength(0);
    // Nobody waits on the token; its page-ready leaves a dummy behind.
    expect(recs(r, 'kvm_async_pf_task_wait_schedule')).toHaveLength(0);
    expect(recs(r, 'kvm_async_pf_task_wake', { token, found: false, dummy: true })).toHaveLength(1);
  });
});
