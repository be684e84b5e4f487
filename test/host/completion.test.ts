/** Completion (spec §3.7): worker, done list, APF_READY, kick, dequeue loop, prefault, notify, un-halt. */
import { KVM_APF_WAKE_ALL_TOKEN } from '../../shared-abi/apf';
import { MSR_KVM_ASYNC_PF_ACK, MSR_KVM_ASYNC_PF_EN, X86_MSR } from '../../shared-abi/msr';
import { HYPERVISOR_CALLBACK_VECTOR, PF_VECTOR, X86_EXCEPTION } from '../../shared-abi/vectors';
import { faultinPfn } from '../../host/mmu';
import { GUEST_RAM_HVA } from '../../host/hostmem';
import { apfPfHandler, AREA, areaOf, DATA_GFN, dataGpa, enableModern, makeWorld, pageReadyHandler, SPIV_ON, touch, type World } from './world';

const swapped = (ns = 100_000) => ({ pages: [{ gfn: DATA_GFN, count: 8, backing: 'swapped' as const }], swapLatency: { kind: 'fixed' as const, ns } });

function unit(o: Parameters<typeof makeWorld>[0] = {}): World {
  const w = makeWorld({ start: false, memory: swapped(), ...o });
  enableModern(w);
  w.v.asyncPf.checkCompletion(); // the wake-all goes out
  w.mem.writeU32(AREA + 4, 0); // ...and the guest consumed it
  w.v.apf.pageReadyPending = false;
  w.v.requests.clear();
  return w;
}

const fault = (w: World, i: number): void => {
  faultinPfn(w.v, dataGpa(i), DATA_GFN + i, 0, false);
  w.v.pendingException = null; // as if delivered
};

describe('worker and done list', () => {
  test('APF_READY is raised only on the empty → non-empty transition', () => {
    const w = unit({ memory: { pages: [{ gfn: DATA_GFN, count: 2, backing: 'swapped' }], swapLatency: { kind: 'uniform', min: 100, max: 100 } } });
    fault(w, 0);
    w.sim.run();
    expect(w.v.requests.has('apf_ready')).toBe(true);
    w.v.requests.clear();
    fault(w, 1);
    w.sim.run();
    expect(w.v.asyncPf.done).toHaveLength(2);
    expect(w.v.requests.has('apf_ready')).toBe(false);
  });

  test('completed is traced after queueing, with the hva and cr2_or_gpa, also for a failed fault-in', () => {
    const w = unit({ memory: { pages: [{ gfn: DATA_GFN, backing: 'failing' }] } });
    fault(w, 0);
    w.sim.run();
    const c = w.ev('kvm_async_pf_completed');
    expect(c).toHaveLength(1);
    expect(c[0]).toMatchObject({ src: 'worker', address: GUEST_RAM_HVA + DATA_GFN * 4096, gva: dataGpa(0), ok: false });
    expect(c[0]).not.toHaveProperty('pfn');
    // The guest is still told (so it retries, and the retry gets the error synchronously).
    w.v.asyncPf.checkCompletion();
    expect(w.ev('kvm_async_pf_ready', { notified: true })).toHaveLength(2);
  });

  test('linux-3.0 traces the pfn (0 for an error page); its wake-all page-ready is traced with token 0', () => {
    const w = makeWorld({ profile: 'linux-3.0', start: false, memory: { pages: [{ gfn: DATA_GFN, backing: 'swapped' }, { gfn: DATA_GFN + 1, backing: 'failing' }] } });
    w.kvm.setMsr(0, MSR_KVM_ASYNC_PF_EN, BigInt(AREA) | 1n);
    faultinPfn(w.v, dataGpa(0), DATA_GFN, 0, false);
    w.v.pendingException = null;
    faultinPfn(w.v, dataGpa(1), DATA_GFN + 1, 0, false);
    w.sim.run();
    expect(w.ev('kvm_async_pf_completed').map((r) => r.pfn)).toEqual([0x10_0000 + DATA_GFN, 0]);
    w.v.asyncPf.checkCompletion();
    // The EN write's wake-all: traced before its token became ~0 (v2.6.38), so with token 0.
    expect(w.ev('kvm_async_pf_ready')[0]).toMatchObject({ token: 0, gva: 0 });
  });

  test('linux-4.19 traces no pfn (f2e106692d51 dropped the page reference)', () => {
    const w = makeWorld({ profile: 'linux-4.19', start: false, memory: { pages: [{ gfn: DATA_GFN, backing: 'swapped' }] } });
    w.kvm.setMsr(0, MSR_KVM_ASYNC_PF_EN, BigInt(AREA) | 1n);
    faultinPfn(w.v, dataGpa(0), DATA_GFN, 0, false);
    w.sim.run();
    expect(w.ev('kvm_async_pf_completed')[0]).not.toHaveProperty('pfn');
  });
});

describe('kick unless a page-ready is pending', () => {
  const scenario = (pending: boolean): World => {
    const w = makeWorld({
      start: false,
      memory: swapped(),
      guest: {
        main: function* () {
          yield { op: 'compute', ns: 5_000_000 };
        },
        handlers: { [HYPERVISOR_CALLBACK_VECTOR]: pageReadyHandler() },
      },
    });
    w.kvm.failNextWakeupAllAlloc();
    enableModern(w);
    w.v.apf.pageReadyPending = pending;
    w.v.requests.clear();
    fault(w, 0); // the vCPU's own earlier fault, completing while it computes
    w.kvm.start();
    w.run(1_000_000);
    return w;
  };

  test('not pending: the compute instruction is preempted and the page-ready is delivered at completion', () => {
    const w = scenario(false);
    expect(w.v.stats.preemptions).toBe(1);
    const done = w.ev('kvm_async_pf_completed')[0]!.t;
    expect(w.ev('kvm_async_pf_ready', { notified: true })[0]!.t).toBe(done);
    expect(w.guest.notes('page_ready')).toHaveLength(1);
  });

  test('pending: no kick; the request waits for the next entry', () => {
    const w = scenario(true);
    expect(w.v.stats.preemptions).toBe(0);
    expect(w.ev('kvm_async_pf_ready')).toHaveLength(0);
    expect(w.v.requests.has('apf_ready')).toBe(true);
  });
});

describe('kvm_arch_can_dequeue_async_page_present', () => {
  test('not pv-enabled: drained silently (prefault only, no notification)', () => {
    const w = unit();
    fault(w, 0);
    w.sim.run();
    w.kvm.setMsr(0, MSR_KVM_ASYNC_PF_EN, BigInt(AREA) | 1n); // clears the queue: nothing left
    expect(w.v.asyncPf.done).toHaveLength(0);
    // An old guest (ENABLED only) on this host: its halted faults drain silently.
    fault(w, 1);
    w.sim.run();
    expect(w.v.asyncPf.checkCompletion()).toBe(1);
    expect(w.ev('kvm_async_pf_ready').at(-1)).toMatchObject({ notified: false });
    expect(w.mem.readU32(AREA + 4)).toBe(0);
  });

  test('LAPIC software-disabled: not dequeued', () => {
    const w = unit();
    fault(w, 0);
    w.sim.run();
    w.kvm.setMsr(0, X86_MSR.X2APIC_SPIV, 0xffn);
    expect(w.v.asyncPf.checkCompletion()).toBe(0);
    w.kvm.setMsr(0, X86_MSR.X2APIC_SPIV, SPIV_ON);
    expect(w.v.requests.has('apf_ready')).toBe(true);
    expect(w.v.asyncPf.checkCompletion()).toBe(1);
  });

  test('token slot not free (non-zero, or unreadable): not dequeued', () => {
    const w = unit();
    fault(w, 0);
    w.sim.run();
    w.mem.writeU32(AREA + 4, 7);
    expect(w.v.asyncPf.checkCompletion()).toBe(0);
    w.mem.writeU32(AREA + 4, 0);
    expect(w.v.asyncPf.checkCompletion()).toBe(1);
  });

  test('FIFO order', () => {
    const w = unit({ memory: { pages: [{ gfn: DATA_GFN, count: 3, backing: 'swapped' }], swapLatency: { kind: 'fixed', ns: 10 } } });
    w.v.apf.id = 1;
    for (const i of [2, 0, 1]) fault(w, i);
    w.sim.run();
    const order: number[] = [];
    while (w.v.asyncPf.done.length > 0) {
      w.mem.writeU32(AREA + 4, 0);
      w.v.asyncPf.checkCompletion();
      order.push(w.mem.readU32(AREA + 4));
    }
    expect(order).toEqual([0x1000, 0x2000, 0x3000]);
  });
});

describe('kvm_arch_async_page_ready (prefault)', () => {
  test('the page is in: counted as fixed', () => {
    const w = unit();
    fault(w, 0);
    w.sim.run();
    w.v.asyncPf.checkCompletion();
    expect(w.v.stats.pfFixed).toBe(1);
  });

  test('evicted again before the dequeue: a synchronous prefetch fault-in', () => {
    const w = unit();
    fault(w, 0);
    w.sim.run();
    w.kvm.evict([DATA_GFN]);
    w.v.asyncPf.checkCompletion();
    expect(w.v.stalls).toBe(1);
    w.sim.run();
    expect(w.ev('kvm_async_pf_sync', { why: 'prefetch', gfn: DATA_GFN })).toHaveLength(1);
    expect(w.ev('kvm_try_async_get_page')).toHaveLength(1); // only the original fault
  });

  test('wake-all items are not prefaulted', () => {
    const w = makeWorld({ start: false });
    enableModern(w);
    w.v.asyncPf.checkCompletion();
    expect(w.v.stats.pfFixed).toBe(0);
    expect(w.v.stalls).toBe(0);
  });
});

describe('kvm_arch_async_page_present', () => {
  test('only for faults whose not-present was injected; wake-all always', () => {
    const w = unit({ cpl: 0 }); // CPL 0 without SEND_ALWAYS: halted, not injected
    fault(w, 0);
    w.sim.run();
    w.v.asyncPf.checkCompletion();
    const r = w.ev('kvm_async_pf_ready').at(-1)!;
    expect(r).toMatchObject({ notified: false });
    expect(w.mem.readU32(AREA + 4)).toBe(0);
    expect(w.v.apf.hash.size).toBe(0); // the gfn leaves the hash either way
    // The wake-all was notified although nothing was injected for it.
    expect(w.ev('kvm_async_pf_ready')[0]).toMatchObject({ token: KVM_APF_WAKE_ALL_TOKEN, gva: 0, notified: true });
  });

  test('notify: token into the slot, pageready_pending, fixed interrupt with apf.vec', () => {
    const w = unit();
    w.kvm.setMsr(0, 0x4b564d06, 0x40n);
    fault(w, 0);
    w.sim.run();
    const token = w.v.asyncPf.done[0]!.arch.token;
    w.v.asyncPf.checkCompletion();
    expect(w.mem.readU32(AREA + 4)).toBe(token);
    expect(w.v.apf.pageReadyPending).toBe(true);
    expect(w.ev('kvm_apic_accept_irq').at(-1)).toMatchObject({ dm: 'fixed', vec: 0x40 });
    expect(w.v.lapic!.irr.get(0x40)).toBe(true);
    const seq = w.rec.records.map((x) => x.event);
    expect(seq.lastIndexOf('kvm_async_pf_ready')).toBeLessThan(seq.lastIndexOf('kvm_write_guest'));
  });

  test('un-halt, and a HLT-ed vCPU becomes runnable (spurious wake-up)', () => {
    const w = unit();
    fault(w, 0);
    w.sim.run();
    w.v.apf.halted = true;
    w.v.mpState = 'halted';
    w.v.asyncPf.checkCompletion();
    expect(w.v.apf.halted).toBe(false);
    expect(w.v.mpState).toBe('runnable');
    expect(w.ev('kvm_async_pf_unhalt', { why: 'page_present' })).toHaveLength(1);
  });

  test('the done list wakes a vCPU halted in HLT; the HLT returns without an interrupt', () => {
    const w = makeWorld({
      start: false,
      cpl: 0,
      ifFlag: false,
      memory: swapped(),
      guest: {
        idle: 'hlt',
        main: function* (g) {
          yield { op: 'hlt' };
          g.note('hlt returned');
        },
      },
    });
    // ENABLED-only guest: no interrupt is ever sent.
    w.kvm.setMsr(0, X86_MSR.X2APIC_SPIV, SPIV_ON);
    w.kvm.setMsr(0, MSR_KVM_ASYNC_PF_EN, BigInt(AREA) | 1n);
    w.v.cpu.cpl = 3;
    w.v.cpu.ifFlag = true;
    faultinPfn(w.v, dataGpa(0), DATA_GFN, 0, false); // halted fault, from "another context"
    w.v.requests.clear();
    w.v.apfHaltCause = null;
    w.v.cpu.cpl = 0;
    w.v.cpu.ifFlag = false;
    w.kvm.start();
    w.run(1_000_000);
    expect(w.guest.notes('hlt returned')).toHaveLength(1);
    expect(w.ev('kvm_vcpu_wakeup')).toHaveLength(1);
    expect(w.v.stats.interruptsInjected).toBe(0);
  });
});

describe('end to end with two faults in flight', () => {
  test('pages complete out of order; every token is delivered once, each after the previous ACK', () => {
    const w = makeWorld({
      memory: { pages: [{ gfn: DATA_GFN, count: 2, backing: 'swapped' }], swapLatency: { kind: 'uniform', min: 10_000, max: 200_000 } },
      guests: [
        {
          main: function* (g) {
            // Touch page 0 (async), then (from the #PF handler's return) page 1.
            for (const i of [0, 1]) {
              const v: unknown = yield { op: 'load', gva: dataGpa(i) as never, size: 4 };
              g.note('touched', { i, v });
            }
          },
          handlers: { [PF_VECTOR]: apfPfHandler(), [HYPERVISOR_CALLBACK_VECTOR]: pageReadyHandler() },
        },
      ],
      seed: 7,
    });
    enableModern(w);
    w.run(5_000_000);
    const notPresent = w.ev('kvm_async_pf_not_present', { injected: true }).map((r) => r.token);
    const ready = w.ev('kvm_async_pf_ready', { notified: true }).map((r) => r.token);
    expect(ready[0]).toBe(KVM_APF_WAKE_ALL_TOKEN);
    expect([...ready.slice(1)].sort()).toEqual([...notPresent].sort());
    expect(w.guest.notes('touched')).toHaveLength(2);
    // The host never wrote a token over an unconsumed one.
    const writes = w.ev('kvm_write_guest', { field: 'token' });
    expect(writes).toHaveLength(ready.length);
    expect(w.ev('kvm_async_pf_ack').length).toBe(ready.length);
    expect(w.v.asyncPf.queued).toBe(0);
    expect(w.mem.readU32(areaOf(0) + 4)).toBe(0);
    expect(w.guest.vectors().filter((x) => x === X86_EXCEPTION.DF)).toHaveLength(0);
  });

  test('host-initiated ACK has the same effect as the guest one', () => {
    const w = unit();
    fault(w, 0);
    w.sim.run();
    w.v.apf.pageReadyPending = true;
    const before = w.ev('kvm_async_pf_ready').length;
    w.kvm.setMsr(0, MSR_KVM_ASYNC_PF_ACK, 1n);
    // pageready_pending was cleared, the re-scan delivered the completion and set it again.
    expect(w.ev('kvm_async_pf_ack', { was_pending: true })).toHaveLength(1);
    expect(w.ev('kvm_async_pf_ready', { notified: true })).toHaveLength(before + 1);
    expect(w.v.apf.pageReadyPending).toBe(true);
    expect(w.v.asyncPf.done).toHaveLength(0);
  });
});

test('world fixture keeps the guest area where the tests expect it', () => {
  expect(areaOf(1)).toBe(AREA + 0x40);
  expect(touch(1)).toBeInstanceOf(Function);
});

describe('the CPL rule is CPL 0 or not (kvm_can_deliver_async_pf)', () => {
  test.each([0, 1, 2, 3] as const)('a user-only guest at CPL %i', (cpl) => {
    const w = unit({ cpl });
    fault(w, 0);
    // Rings 1 and 2 are "not CPL 0": injected like ring 3. Ring 0 without SEND_ALWAYS: halted.
    expect(w.ev('kvm_async_pf_not_present').at(-1)).toMatchObject({ injected: cpl !== 0, halt: cpl === 0 });
  });
});
