/**
 * Every decision of the fault path (spec §3.5, §3.5.1, §3.5.2, §3.6, §3.6.1, §3.6.2), on the
 * current host unless stated.
 */
import { PAGE_SIZE } from '../../shared-abi/addr';
import { KVM_APF_WAKE_ALL_TOKEN, makeToken } from '../../shared-abi/apf';
import { HYPERVISOR_CALLBACK_VECTOR, PF_VECTOR, X86_EXCEPTION } from '../../shared-abi/vectors';
import { MSR_KVM_ASYNC_PF_EN, X86_MSR } from '../../shared-abi/msr';
import { faultinPfn } from '../../host/mmu';
import { allocToken, canDeliverAsyncPf, canDoAsyncPf } from '../../host/x86/apf';
import { X2APIC_MSR } from '../../host/lapic';
import {
  apfPfHandler,
  areaOf,
  DATA_GFN,
  dataGpa,
  enableModern,
  enModern,
  makeWorld,
  pageReadyHandler,
  SPIV_ON,
  touch,
  type World,
} from './world';

const swapped = (count = 8) => ({ pages: [{ gfn: DATA_GFN, count, backing: 'swapped' as const }], swapLatency: { kind: 'fixed' as const, ns: 100_000 } });

/** A VM that is set up but not running: decisions are called directly. */
function unit(o: Parameters<typeof makeWorld>[0] = {}): World {
  const w = makeWorld({ start: false, memory: swapped(), ...o });
  return w;
}

const fault = (w: World, i = 0, prefetch = false) => faultinPfn(w.v, dataGpa(i), DATA_GFN + i, 0, prefetch);

describe('fault path: first try and prefetch', () => {
  test('a resident frame resolves without async or sync work', () => {
    const w = unit();
    enableModern(w);
    expect(faultinPfn(w.v, 0x2000, 2, 0, false)).toBe('spurious');
    expect(w.ev('kvm_try_async_get_page')).toHaveLength(0);
  });

  test('a prefetch fault never goes async', () => {
    const w = unit();
    enableModern(w);
    expect(fault(w, 0, true)).toBe('prefetch');
    expect(w.ev('kvm_try_async_get_page')).toHaveLength(0);
    expect(w.v.stalls).toBe(1);
    w.sim.run();
    expect(w.v.stalls).toBe(0);
    expect(w.ev('kvm_async_pf_sync', { why: 'prefetch', ok: true })).toHaveLength(1);
  });

  test('a known-bad frame fails at once: #MC, no async', () => {
    const w = unit({ memory: { pages: [{ gfn: DATA_GFN, backing: 'failing' }] } });
    enableModern(w);
    // First access: needs I/O, goes async; the worker reports the error.
    expect(fault(w)).toBe('async');
    w.sim.run();
    expect(w.ev('kvm_async_pf_completed', { ok: false })).toHaveLength(1);
    w.v.pendingException = null;
    w.v.asyncPf.checkCompletion();
    // The retry: the non-blocking lookup now returns the error.
    expect(fault(w)).toBe('error');
    expect(w.v.pendingException).toEqual({ vector: X86_EXCEPTION.MC });
    expect(w.ev('kvm_mce_inject', { gfn: DATA_GFN })).toHaveLength(1);
  });
});

describe('kvm_can_do_async_pf', () => {
  test('no in-kernel LAPIC → synchronous', () => {
    const w = unit({ vm: { lapic: 'userspace' } });
    expect(canDoAsyncPf(w.v)).toBe(false);
    expect(fault(w)).toBe('cannot_do');
    expect(w.ev('kvm_try_async_get_page')).toHaveLength(0);
  });

  test('pending exception → synchronous', () => {
    const w = unit();
    enableModern(w);
    w.v.queueException({ vector: X86_EXCEPTION.GP, errorCode: 0 });
    expect(fault(w)).toBe('cannot_do');
  });

  test('pending triple fault counts as an exception', () => {
    const w = unit();
    enableModern(w);
    w.v.tripleFaultPending = true;
    expect(canDoAsyncPf(w.v)).toBe(false);
  });

  test.each([
    ['IF=0', (w: World) => void (w.v.cpu.ifFlag = false)],
    ['STI shadow', (w: World) => void (w.v.cpu.interruptShadow = true)],
    ['SMM', (w: World) => void w.v.cpu.enterSmm()],
  ])('interrupts not allowed (%s) → synchronous, not even a halt', (_name, setup) => {
    const w = unit();
    enableModern(w);
    setup(w);
    expect(fault(w)).toBe('cannot_do');
    expect(w.v.requests.has('apf_halt')).toBe(false);
    expect(w.ev('kvm_async_pf_not_present')).toHaveLength(0);
  });

  test('HLT pass-through: undeliverable → synchronous; deliverable → async', () => {
    const w = unit({ vm: { hltPassthrough: true }, cpl: 0 });
    enableModern(w);
    expect(canDeliverAsyncPf(w.v)).toBe(false);
    expect(fault(w)).toBe('cannot_do');
    w.v.cpu.cpl = 3;
    expect(fault(w, 1)).toBe('async');
    expect(w.v.pendingException?.vector).toBe(PF_VECTOR);
  });

  test('without HLT pass-through an undeliverable fault is an artificial halt', () => {
    const w = unit({ cpl: 0 });
    enableModern(w);
    expect(fault(w)).toBe('async');
    expect(w.ev('kvm_async_pf_not_present', { injected: false, halt: true })).toHaveLength(1);
    expect(w.v.requests.has('apf_halt')).toBe(true);
  });
});

describe('repeated fault, queue limit, allocation failure', () => {
  test('a gfn already outstanding: trace, APF_HALT, no new item', () => {
    const w = unit();
    enableModern(w);
    expect(fault(w)).toBe('async');
    w.v.pendingException = null;
    const q = w.v.asyncPf.queued;
    expect(fault(w)).toBe('repeated');
    expect(w.v.asyncPf.queued).toBe(q);
    const names = w.rec.records.filter((r) => r.event.startsWith('kvm_')).map((r) => r.event);
    expect(names.slice(-2)).toEqual(['kvm_try_async_get_page', 'kvm_async_pf_repeated_fault']);
    expect(w.v.requests.has('apf_halt')).toBe(true);
    expect(w.v.apfHaltCause).toEqual({ gfn: DATA_GFN, why: 'repeated' });
  });

  test('64 outstanding items (wake-all included) → synchronous; the token is consumed anyway', () => {
    const w = unit({ memory: swapped(70), cpl: 0 }); // CPL 0: every item ends in a halt request, no #PF to pile up
    enableModern(w);
    expect(w.v.asyncPf.queued).toBe(1); // the wake-all
    for (let i = 0; i < 63; i++) expect(fault(w, i)).toBe('async');
    expect(w.v.asyncPf.queued).toBe(64);
    const idBefore = w.v.apf.id;
    expect(fault(w, 63)).toBe('queue_full');
    expect(w.v.apf.id).toBe(idBefore + 1);
    expect(w.ev('kvm_async_pf_not_present')).toHaveLength(63);
  });

  test('allocation failure → synchronous', () => {
    const w = unit();
    enableModern(w);
    w.kvm.failNextAsyncAlloc();
    expect(fault(w)).toBe('alloc_fail');
    expect(fault(w, 1)).toBe('async');
  });

  test('configured allocation failure probability draws from host.alloc', () => {
    const w = unit({ vm: { asyncAllocFailure: { numerator: 1, denominator: 1 } } });
    enableModern(w); // the wake-all allocation fails too
    expect(w.v.asyncPf.queued).toBe(0);
    expect(fault(w)).toBe('alloc_fail');
  });
});

describe('token allocation', () => {
  test('token = (id << 12) | vcpu_id, post-increment, presettable', () => {
    const w = makeWorld({ start: false, guests: [{}, {}, {}] });
    const v2 = w.kvm.vcpu(2);
    v2.apf.id = 5;
    expect(allocToken(v2)).toBe(makeToken(5, 2));
    expect(v2.apf.id).toBe(6);
  });

  test('never 0 with nonzero_token: id ≡ 0 mod 2^20 is replaced by 1; u32 wrap', () => {
    const w = makeWorld({ start: false });
    w.v.apf.id = 0;
    expect(allocToken(w.v)).toBe(0x1000);
    w.v.apf.id = 0x10_0000;
    expect(allocToken(w.v)).toBe(0x1000);
    w.v.apf.id = 0xffff_ffff;
    expect(allocToken(w.v)).toBe(0xffff_f000);
    expect(w.v.apf.id).toBe(0);
    expect(allocToken(w.v)).toBe(0x1000);
  });

  test('before Feb 2022 the first token of vCPU 0 is 0', () => {
    const w = makeWorld({ start: false, toggles: { nonzero_token: false } });
    expect(allocToken(w.v)).toBe(0);
    expect(allocToken(w.v)).toBe(0x1000);
  });

  test('the token goes to CR2 and the not-present trace', () => {
    const w = unit();
    enableModern(w);
    w.v.apf.id = 0x42;
    fault(w);
    expect(w.v.pendingException).toMatchObject({ vector: PF_VECTOR, errorCode: 0, cr2: 0x42000, async: true });
    expect(w.ev('kvm_async_pf_not_present')[0]).toMatchObject({ token: 0x42000, gva: dataGpa(0) });
  });
});

describe('kvm_can_deliver_async_pf and kvm_arch_async_page_not_present', () => {
  const decide = (w: World): { injected: boolean; halt: boolean } => {
    fault(w);
    const r = w.ev('kvm_async_pf_not_present').at(-1)!;
    return { injected: r.injected as boolean, halt: r.halt as boolean };
  };

  test('deliverable: flags := 1 (written before queueing), #PF(error 0, CR2 = token)', () => {
    const w = unit();
    enableModern(w);
    expect(decide(w)).toEqual({ injected: true, halt: false });
    expect(w.mem.readU32(areaOf(0))).toBe(1);
    const order = w.rec.records.map((r) => r.event).filter((e) => ['kvm_async_pf_not_present', 'kvm_write_guest'].includes(e));
    expect(order.slice(-2)).toEqual(['kvm_async_pf_not_present', 'kvm_write_guest']);
    expect(w.v.apf.hash.find(DATA_GFN)).toBe(true);
    expect(w.v.stats.asyncPfInjected).toBe(1);
  });

  test('not pv-enabled (ENABLED without DELIVERY_AS_INT): halt', () => {
    const w = unit();
    w.kvm.setMsr(0, X86_MSR.X2APIC_SPIV, SPIV_ON);
    w.kvm.setMsr(0, MSR_KVM_ASYNC_PF_EN, BigInt(areaOf(0)) | 1n);
    expect(decide(w)).toEqual({ injected: false, halt: true });
    expect(w.v.apf.hash.find(DATA_GFN)).toBe(true); // in the hash even when not delivered
  });

  test('CPL 0 without SEND_ALWAYS: halt; with SEND_ALWAYS: inject', () => {
    const a = unit({ cpl: 0 });
    enableModern(a);
    expect(decide(a)).toEqual({ injected: false, halt: true });
    const b = unit({ cpl: 0 });
    enableModern(b, 0, { sendAlways: true });
    expect(decide(b)).toEqual({ injected: true, halt: false });
  });

  test('protected guest state counts as CPL 0', () => {
    const w = unit({ vm: { protectedState: true }, cpl: 3 });
    enableModern(w);
    expect(decide(w)).toEqual({ injected: false, halt: true });
  });

  test('guest mode: only with DELIVERY_AS_PF_VMEXIT', () => {
    const a = unit();
    enableModern(a);
    a.v.cpu.guestMode = true;
    expect(decide(a)).toEqual({ injected: false, halt: true });
    const b = unit();
    enableModern(b, 0, { vmexit: true });
    b.v.cpu.guestMode = true;
    expect(decide(b)).toEqual({ injected: true, halt: false });
    expect(b.v.pendingException).toMatchObject({ nested: 'payload' });
  });

  test('paging off: halt', () => {
    const w = unit({ paging: false });
    enableModern(w);
    expect(decide(w)).toEqual({ injected: false, halt: true });
  });

  test('the flags write fails (area page failing): halt', () => {
    const w = unit({ memory: { pages: [{ gfn: DATA_GFN, count: 2, backing: 'swapped' }, { gfn: 1, backing: 'failing' }] } });
    enableModern(w);
    expect(decide(w)).toEqual({ injected: false, halt: true });
    expect(w.ev('kvm_write_guest', { ok: false, field: 'flags' })).toHaveLength(1); // attempted, failed
  });
});

describe('end to end', () => {
  const handlers = { [PF_VECTOR]: apfPfHandler(), [HYPERVISOR_CALLBACK_VECTOR]: pageReadyHandler() };

  test('not present → guest #PF → retry → repeated fault → halt → page ready → retry succeeds', () => {
    const w = makeWorld({ start: false, memory: swapped(), guest: { main: touch(dataGpa(0) + 8), handlers } });
    w.mem.writeU32(dataGpa(0) + 8, 0xabcd); // before start: becomes the swapped content
    enableModern(w);
    w.kvm.start();
    w.run(1_000_000);
    const ev = w.rec.records.filter((r) => r.src !== 'cpu').map((r) => r.event);
    const want = [
      'kvm_page_fault',
      'kvm_try_async_get_page',
      'kvm_async_pf_not_present',
      'kvm_inj_exception',
      'kvm_page_fault',
      'kvm_async_pf_repeated_fault',
      'kvm_async_pf_halt',
      'kvm_vcpu_block',
      'kvm_async_pf_completed',
      'kvm_async_pf_ready',
      'kvm_inj_virq',
      'kvm_async_pf_ack',
    ];
    let i = 0;
    for (const e of ev) if (e === want[i]) i++;
    expect(i).toBe(want.length);
    const token = w.ev('kvm_async_pf_not_present')[0]!.token;
    expect(w.guest.notes('pf')).toEqual([{ flags: 1, cr2: token, cpl: 3 }]);
    expect(w.guest.notes('page_ready').map((n) => n.token)).toEqual([KVM_APF_WAKE_ALL_TOKEN, token]);
    expect(w.guest.notes('touched')).toEqual([{ gva: dataGpa(0) + 8, value: 0xabcd }]);
    expect(w.v.stats).toMatchObject({ asyncPfInjected: 1, apfHalts: 1, repeatedFaults: 1, pageReadyDelivered: 2 });
    expect(w.v.asyncPf.queued).toBe(0);
    expect(w.v.apf.hash.size).toBe(0);
  });

  test('artificial halt: interrupts are still delivered, the retry re-faults and halts again', () => {
    const timerVec = 0xec;
    const w = makeWorld({
      cpl: 3,
      memory: { ...swapped(), swapLatency: { kind: 'fixed', ns: 1_000_000 } },
      guest: {
        main: touch(dataGpa(0)),
        handlers: {
          [timerVec]: function* (_f, g) {
            g.note('timer');
            yield { op: 'wrmsr', msr: X86_MSR.X2APIC_EOI, value: 0n };
          },
          [HYPERVISOR_CALLBACK_VECTOR]: pageReadyHandler(),
        },
      },
    });
    w.kvm.setMsr(0, X86_MSR.X2APIC_SPIV, SPIV_ON);
    w.kvm.setMsr(0, X86_MSR.X2APIC_LVT_TIMER, BigInt(timerVec) | (1n << 17n)); // periodic
    w.kvm.setMsr(0, X2APIC_MSR.TIMER_INITIAL, 300_000n);
    // An old-style guest (ENABLED only): every fault halts, nothing is injected.
    w.kvm.setMsr(0, MSR_KVM_ASYNC_PF_EN, BigInt(areaOf(0)) | 1n);
    w.run(2_000_000);
    const done = w.ev('kvm_async_pf_completed')[0]!.t;
    const timers = w.guest.log.filter((e) => e.kind === 'vector' && e.vector === timerVec && e.t < done).length;
    expect(timers).toBe(3);
    expect(w.ev('kvm_async_pf_halt', { why: 'undeliverable', gfn: DATA_GFN })).toHaveLength(1);
    expect(w.ev('kvm_async_pf_halt').length).toBe(timers + 1);
    expect(w.ev('kvm_async_pf_repeated_fault').length).toBe(timers);
    expect(w.ev('kvm_async_pf_ready', { notified: false })).toHaveLength(1);
    expect(w.guest.notes('touched')).toHaveLength(1);
  });

  test('synchronous fault: the vCPU waits for the page-in latency, then the instruction re-executes', () => {
    const w = makeWorld({ cpl: 3, ifFlag: false, memory: { ...swapped(), swapLatency: { kind: 'fixed', ns: 50_000 } }, guest: { main: touch(dataGpa(0)) } });
    enableModern(w);
    w.run(1_000_000);
    const sync = w.ev('kvm_async_pf_sync');
    expect(sync).toHaveLength(1);
    expect(sync[0]).toMatchObject({ why: 'cannot_do', ok: true, gfn: DATA_GFN });
    const pf = w.ev('kvm_page_fault')[0]!;
    expect(sync[0]!.t - pf.t).toBe(50_000);
    expect(w.ev('kvm_page_fault')).toHaveLength(1);
    expect(w.guest.notes('touched')).toHaveLength(1);
    expect(w.v.stats.syncFaults).toBe(1);
  });

  test('a fault during the guest page-table walk is handled the same way (gfn of the table page)', () => {
    const ptGfn = 0x13; // the first PT page (PML4 0x10, PDPT 0x11, PD 0x12)
    const w = makeWorld({ cpl: 3, ifFlag: false, memory: { pages: [{ gfn: ptGfn, backing: 'swapped' }] }, guest: { main: touch(0x5000) } });
    w.run(1_000_000);
    expect(w.ev('kvm_page_fault')[0]).toMatchObject({ gva: 0x5000, fault_address: ptGfn * PAGE_SIZE + 5 * 8 });
    expect(w.ev('kvm_async_pf_sync', { gfn: ptGfn })).toHaveLength(1);
    expect(w.kvm.hostMem.isPinned(ptGfn)).toBe(true);
    expect(w.guest.notes('touched')).toHaveLength(1);
  });

  test('EN by the guest itself enables with the area and the wake-all', () => {
    const w = makeWorld({
      cpl: 0,
      guest: {
        idle: 'hlt',
        main: function* () {
          yield { op: 'wrmsr', msr: MSR_KVM_ASYNC_PF_EN, value: enModern() };
        },
      },
    });
    w.run(10_000);
    expect(w.ev('kvm_async_pf_enable')).toHaveLength(1);
    expect(w.ev('kvm_msr', { write: true, exception: false })).toHaveLength(1);
  });
});
