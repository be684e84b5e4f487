/** Cleanup paths (spec §3.10, §7.15, §7.17, §7.10). */
import { CR0_PE, CR0_PG } from '../../shared-abi/arch';
import { KVM_APF_WAKE_ALL_TOKEN } from '../../shared-abi/apf';
import { MSR_KVM_ASYNC_PF_EN, MSR_KVM_ASYNC_PF_INT, X86_MSR } from '../../shared-abi/msr';
import { HYPERVISOR_CALLBACK_VECTOR, PF_VECTOR } from '../../shared-abi/vectors';
import { faultinPfn } from '../../host/mmu';
import { resetVcpu } from '../../host/x86/run';
import { apfPfHandler, AREA, DATA_GFN, dataGpa, enableModern, makeWorld, pageReadyHandler, SPIV_ON, touch, type World } from './world';

const swapped = (ns = 100_000) => ({ pages: [{ gfn: DATA_GFN, count: 8, backing: 'swapped' as const }], swapLatency: { kind: 'fixed' as const, ns } });

/** An enabled VM (not running) with `n` async faults in flight; the wake-all already consumed. */
function inFlight(n: number, o: Parameters<typeof makeWorld>[0] = {}): World {
  const w = makeWorld({ start: false, memory: swapped(), ...o });
  enableModern(w);
  w.v.asyncPf.checkCompletion();
  w.mem.writeU32(AREA + 4, 0);
  w.v.apf.pageReadyPending = false;
  for (let i = 0; i < n; i++) {
    faultinPfn(w.v, dataGpa(i), DATA_GFN + i, 0, false);
    w.v.pendingException = null;
  }
  return w;
}

/** Records emitted after index `from`. */
const after = (w: World, from: number) => w.rec.records.slice(from);

describe('disable through MSR_KVM_ASYNC_PF_EN', () => {
  test('running page-ins: the clear waits for them (cancel_work_sync), the pages arrive, the guest hears nothing', () => {
    const w = inFlight(3);
    expect(w.v.apf.hash.size).toBe(3);
    expect(w.kvm.setMsr(0, MSR_KVM_ASYNC_PF_EN, 0n)).toBe(true);
    expect(w.ev('kvm_async_pf_clear_queue', { reason: 'disable', dropped: 3 })).toHaveLength(1);
    expect(w.ev('kvm_async_pf_cancel_work_sync', { outcome: 'wait' })).toHaveLength(3);
    expect(w.v.apf.hash.size).toBe(0);
    expect(w.v.asyncPf.queued).toBe(0);
    expect(w.v.asyncPf.clearWaiting).toBe(true);
    const mark = w.rec.records.length;
    w.sim.run();
    expect(w.v.asyncPf.clearWaiting).toBe(false);
    const late = after(w, mark).filter((r) => r.event.startsWith('kvm_'));
    expect(late.map((r) => r.event)).toEqual(['kvm_async_pf_completed', 'kvm_async_pf_completed', 'kvm_async_pf_completed', 'kvm_async_pf_clear_queue_done']);
    // The caller waited for the whole page-in (100 µs from the faults, which came at t=0).
    expect(late[3]).toMatchObject({ reason: 'disable', waited_ns: 100_000, t: 100_000 });
    expect(w.kvm.hostMem.backingOf(DATA_GFN)).toBe('resident');
    expect(w.v.asyncPf.done).toHaveLength(0);
  });

  test('work not yet started: cancelled at once, its page is never fetched, nobody waits', () => {
    const w = inFlight(2, { vm: { workerStartNs: 50_000 } });
    w.run(10_000);
    expect(w.kvm.setMsr(0, MSR_KVM_ASYNC_PF_EN, 0n)).toBe(true);
    expect(w.ev('kvm_async_pf_cancel_work_sync', { outcome: 'cancelled' })).toHaveLength(2);
    expect(w.v.asyncPf.clearWaiting).toBe(false);
    expect(w.v.asyncPf.counters.cancelledBeforeStart).toBe(2);
    const mark = w.rec.records.length;
    w.sim.run();
    expect(after(w, mark)).toEqual([]);
    expect(w.kvm.hostMem.backingOf(DATA_GFN)).toBe('swapped');
    expect(w.kvm.hostMem.backingOf(DATA_GFN + 1)).toBe('swapped');
  });

  test('one started, one not: only the started one is waited for and fetched', () => {
    const w = inFlight(1, { vm: { workerStartNs: 20_000 } });
    w.run(30_000);
    faultinPfn(w.v, dataGpa(1), DATA_GFN + 1, 0, false);
    w.v.pendingException = null;
    w.kvm.setMsr(0, MSR_KVM_ASYNC_PF_EN, 0n);
    expect(w.ev('kvm_async_pf_cancel_work_sync').map((r) => r.outcome)).toEqual(['wait', 'cancelled']);
    w.sim.run();
    expect(w.ev('kvm_async_pf_clear_queue_done')).toEqual([expect.objectContaining({ t: 120_000, waited_ns: 90_000 })]);
    expect(w.kvm.hostMem.backingOf(DATA_GFN)).toBe('resident');
    expect(w.kvm.hostMem.backingOf(DATA_GFN + 1)).toBe('swapped');
  });

  test('items already on done are dropped too', () => {
    const w = inFlight(2);
    w.sim.run();
    expect(w.v.asyncPf.done).toHaveLength(2);
    w.kvm.setMsr(0, MSR_KVM_ASYNC_PF_EN, 0n);
    expect(w.v.asyncPf.done).toHaveLength(0);
    expect(w.ev('kvm_async_pf_ready')).toHaveLength(1); // only the wake-all, before
  });
});

describe.each(['init', 'reset'] as const)('kvm_vcpu_reset (%s)', (kind) => {
  test('MSRs zeroed, queue cleared, hash reset, un-halted; pageready_pending and id survive; LAPIC reset', () => {
    const w = inFlight(2);
    w.kvm.start();
    w.v.apf.pageReadyPending = true;
    const id = w.v.apf.id;
    if (kind === 'init') w.kvm.vcpuInit(0);
    else w.kvm.vcpuReset(0);
    w.run(1);
    expect(w.ev(kind === 'init' ? 'kvm_vcpu_init' : 'kvm_vcpu_reset')).toHaveLength(1);
    expect(w.ev('kvm_async_pf_clear_queue', { reason: 'reset', dropped: 2 })).toHaveLength(1);
    expect(w.kvm.getMsr(0, MSR_KVM_ASYNC_PF_EN)).toBe(0n);
    expect(w.kvm.getMsr(0, MSR_KVM_ASYNC_PF_INT)).toBe(0n);
    expect(w.v.apf.hash.size).toBe(0);
    expect(w.v.apf.halted).toBe(false);
    expect(w.v.apf.pageReadyPending).toBe(true);
    expect(w.v.apf.id).toBe(id);
    expect(w.v.lapic!.swEnabled).toBe(false);
    expect(w.guest.log.some((e) => e.kind === 'reset' && e.reset === kind)).toBe(true);
    const mark = w.rec.records.length;
    w.run(1_000_000);
    // The reset waited for both running page-ins; their completions were freed by it, never notified.
    expect(after(w, mark).filter((r) => r.event === 'kvm_async_pf_completed' || r.event === 'kvm_async_pf_ready' || r.event === 'kvm_async_pf_clear_queue_done').map((r) => r.event)).toEqual([
      'kvm_async_pf_completed',
      'kvm_async_pf_completed',
      'kvm_async_pf_clear_queue_done',
    ]);
  });

  test('pending requests survive the reset: KVM_REQ_APF_READY is served after it and finds nothing', () => {
    const w = inFlight(2);
    w.kvm.start();
    w.v.makeRequest('apf_ready');
    resetVcpu(w.v, kind);
    // kvm_vcpu_reset leaves vcpu->requests alone.
    expect(w.v.requests.has('apf_ready')).toBe(true);
    const mark = w.rec.records.length;
    w.run(1_000_000);
    // Served at the next entry: the done list was emptied by the reset, so no page-ready follows.
    expect(w.v.requests.has('apf_ready')).toBe(false);
    expect(after(w, mark).filter((r) => r.event === 'kvm_async_pf_ready')).toHaveLength(0);
  });

  test('a pending KVM_REQ_APF_HALT is served before the INIT/RESET is accepted, which un-halts', () => {
    const w = inFlight(0);
    w.kvm.start();
    w.run(1);
    w.v.makeRequest('apf_halt', { gfn: DATA_GFN, why: 'repeated' });
    w.v.entryNeeded = true;
    if (kind === 'init') w.kvm.vcpuInit(0);
    else w.kvm.vcpuReset(0);
    w.run(10_000);
    const order = w.rec.records.filter((r) => r.event === 'kvm_async_pf_halt' || r.event === 'kvm_vcpu_init' || r.event === 'kvm_vcpu_reset').map((r) => r.event);
    expect(order).toEqual(['kvm_async_pf_halt', kind === 'init' ? 'kvm_vcpu_init' : 'kvm_vcpu_reset']);
    expect(w.v.apf.halted).toBe(false);
    expect(w.v.requests.has('apf_halt')).toBe(false);
  });

  test('INIT IPI from another vCPU resets the target', () => {
    const w = makeWorld({
      cpl: 0,
      guests: [
        {
          main: function* () {
            yield { op: 'wrmsr', msr: X86_MSR.X2APIC_ICR, value: (1n << 32n) | (5n << 8n) };
          },
          idle: 'hlt',
        },
        { idle: 'hlt' },
      ],
    });
    w.run(100_000);
    expect(w.ev('kvm_vcpu_init').map((r) => r.cpu)).toEqual([1]);
  });
});

describe.each(['linux-5.8', 'linux-6.6', 'current'] as const)('teardown with a worker mid-fault (%s: before and after 3d75b8aa5c29 alike)', (profile) => {
  test('destroyVcpu', () => {
    const w = inFlight(2, profile === 'current' ? {} : { profile, memory: swapped() });
    w.kvm.start();
    w.run(10_000);
    w.kvm.destroyVcpu(0);
    const d = w.ev('kvm_vcpu_destroy');
    expect(d).toHaveLength(1);
    expect(d[0]!.in_flight).toBe(2);
    const mark = w.rec.records.length;
    w.sim.run();
    const late = after(w, mark).filter((r) => r.src !== 'cpu' && r.event !== 'host_page_fault_in');
    // The teardown's clear waited for both running page-ins.
    expect(late.map((r) => r.event)).toEqual(['kvm_async_pf_completed', 'kvm_async_pf_completed', 'kvm_async_pf_clear_queue_done']);
    // Userspace controls on a destroyed vCPU are ignored.
    expect(w.kvm.setMsr(0, MSR_KVM_ASYNC_PF_EN, 0n)).toBe(false);
    w.kvm.injectNmi(0);
    expect(w.v.nmiPending).toBe(0);
  });

  test('destroyVm', () => {
    const w = inFlight(1, profile === 'current' ? {} : { profile, memory: swapped() });
    w.kvm.start();
    w.run(10_000);
    w.kvm.destroyVm();
    expect(w.ev('kvm_vm_destroy')[0]).toMatchObject({ in_flight: 1 });
    const mark = w.rec.records.length;
    w.sim.run();
    const late = after(w, mark);
    expect(late.map((r) => r.event)).toEqual(['host_page_fault_in', 'kvm_async_pf_completed', 'kvm_async_pf_clear_queue_done']);
  });
});

describe('CR0.PG toggles (kvm_post_set_cr0)', () => {
  const toggle = (keep: boolean): World => {
    const w = makeWorld({
      cpl: 0,
      ifFlag: false,
      start: false,
      memory: swapped(),
      toggles: { keep_queue_on_cr0_pg: keep },
      guest: {
        main: function* () {
          yield { op: 'write_cr', cr: 0, value: CR0_PE };
          yield { op: 'write_cr', cr: 0, value: CR0_PE | CR0_PG };
        },
      },
    });
    enableModern(w);
    w.v.asyncPf.checkCompletion();
    w.mem.writeU32(AREA + 4, 0);
    w.v.apf.pageReadyPending = false;
    w.v.cpu.cpl = 3;
    w.v.cpu.ifFlag = true;
    faultinPfn(w.v, dataGpa(0), DATA_GFN, 0, false);
    w.v.pendingException = null;
    w.v.cpu.cpl = 0;
    w.v.cpu.ifFlag = false;
    w.kvm.start();
    w.run(1_000_000);
    return w;
  };

  test('fixed: the queue is kept; PG 0→1 raises APF_READY; the page-ready arrives', () => {
    const w = toggle(true);
    expect(w.ev('kvm_post_set_cr0').map((r) => r.cleared)).toEqual([false, false]);
    expect(w.ev('kvm_async_pf_clear_queue')).toHaveLength(0);
    expect(w.ev('kvm_async_pf_ready', { notified: true }).map((r) => r.token)).toEqual([KVM_APF_WAKE_ALL_TOKEN, 0x1000]);
  });

  test('before ab4e41eb9fab: PG 1→0 clears the queue and the hash; no page-ready ever', () => {
    const w = toggle(false);
    expect(w.ev('kvm_post_set_cr0').map((r) => r.cleared)).toEqual([true, true]);
    expect(w.ev('kvm_async_pf_clear_queue', { reason: 'cr0_pg', dropped: 1 })).toHaveLength(1);
    expect(w.ev('kvm_async_pf_ready', { notified: true })).toHaveLength(1);
    expect(w.v.apf.hash.size).toBe(0);
  });
});

describe('SMI / RSM', () => {
  const smi = (keep: boolean): World => {
    // A user task got "not present" and waits; an SMI comes in before the page does.
    const w = makeWorld({
      memory: swapped(500_000),
      toggles: { keep_queue_on_cr0_pg: keep },
      guest: { main: touch(dataGpa(0)), handlers: { [PF_VECTOR]: apfPfHandler(), [HYPERVISOR_CALLBACK_VECTOR]: pageReadyHandler() } },
    });
    enableModern(w);
    w.sim.scheduleAt(100_000, 40, () => w.kvm.injectSmi(0, 50_000), 'test.smi');
    w.run(2_000_000);
    return w;
  };

  test('fixed: the queue survives SMM; RSM re-raises APF_READY; the page-ready is delivered', () => {
    const w = smi(true);
    expect(w.ev('kvm_smi')).toHaveLength(1);
    expect(w.ev('kvm_enter_smm')).toHaveLength(1);
    expect(w.ev('kvm_rsm')).toHaveLength(1);
    // SMM entry changes CR0 through the vendor hook only: kvm_post_set_cr0 sees just RSM's PG 0→1.
    const pg = w.ev('kvm_post_set_cr0');
    expect(pg.map((r) => [r.old, r.new, r.cleared])).toEqual([[0, (CR0_PE | CR0_PG) >>> 0, false]]);
    const token = w.ev('kvm_async_pf_not_present')[0]!.token;
    expect(w.guest.notes('page_ready').map((n) => n.token)).toContain(token);
    expect(w.guest.notes('touched')).toHaveLength(1);
  });

  test('before ab4e41eb9fab: RSM clears the queue (waiting for the page-in) and the token is never answered', () => {
    const w = smi(false);
    const token = w.ev('kvm_async_pf_not_present')[0]!.token;
    const clear = w.ev('kvm_async_pf_clear_queue', { reason: 'cr0_pg', tokens: `0x${(token as number).toString(16)}` });
    expect(clear).toHaveLength(1);
    // The clear comes with RSM, not with SMM entry, and RSM then waits for the running page-in.
    expect(clear[0]!.t).toBe(w.ev('kvm_rsm')[0]!.t);
    expect(w.ev('kvm_async_pf_cancel_work_sync', { outcome: 'wait' })).toHaveLength(1);
    expect(w.ev('kvm_async_pf_clear_queue_done', { reason: 'cr0_pg' })).toHaveLength(1);
    expect(w.guest.notes('page_ready').map((n) => n.token)).not.toContain(token);
  });

  test('SMI wakes an artificially halted vCPU; the retry faults again after RSM', () => {
    const w = makeWorld({ memory: swapped(500_000), cpl: 0, guest: { main: touch(dataGpa(0)) } });
    enableModern(w);
    w.sim.scheduleAt(100_000, 40, () => w.kvm.injectSmi(0, 10_000), 'test.smi');
    w.run(2_000_000);
    expect(w.ev('kvm_async_pf_halt').length).toBeGreaterThanOrEqual(2);
    expect(w.ev('kvm_rsm')[0]!.t).toBe(w.ev('kvm_enter_smm')[0]!.t + 10_000);
    expect(w.guest.notes('touched')).toHaveLength(1);
  });
});

describe('LAPIC disable then enable', () => {
  test('completions wait while the LAPIC is disabled and go out when it is enabled again', () => {
    const w = inFlight(1);
    w.kvm.setMsr(0, X86_MSR.X2APIC_SPIV, 0xffn);
    w.sim.run();
    w.v.requests.clear();
    expect(w.v.asyncPf.checkCompletion()).toBe(0);
    expect(w.v.asyncPf.done).toHaveLength(1);
    w.kvm.setMsr(0, X86_MSR.X2APIC_SPIV, SPIV_ON);
    expect(w.ev('kvm_lapic_enable').length).toBe(2);
    expect(w.v.requests.has('apf_ready')).toBe(true);
    expect(w.v.asyncPf.checkCompletion()).toBe(1);
    expect(w.v.lapic!.irr.get(HYPERVISOR_CALLBACK_VECTOR)).toBe(true);
  });

  test('hardware enable (IA32_APIC_BASE EN 0→1) re-raises APF_READY too', () => {
    const w = inFlight(0);
    w.v.requests.clear();
    const base = w.kvm.getMsr(0, X86_MSR.IA32_APIC_BASE)!;
    expect(w.kvm.setMsr(0, X86_MSR.IA32_APIC_BASE, base & ~(1n << 11n))).toBe(true);
    expect(w.v.lapic!.enabled).toBe(false);
    expect(w.kvm.setMsr(0, X86_MSR.IA32_APIC_BASE, base)).toBe(true);
    expect(w.v.requests.has('apf_ready')).toBe(true);
  });
});
