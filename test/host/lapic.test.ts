/** The in-kernel LAPIC (x2APIC MSRs, SDM behaviour) and its use by the run loop. */
import { X86_MSR } from '../../shared-abi/msr';
import { LVT_MASKED, MIN_TIMER_PERIOD_NS, X2APIC_MSR } from '../../host/lapic';
import { makeWorld, SPIV_ON, type World } from './world';
import type { Handler } from '../support/scripted-guest';

const eoiHandler =
  (tag: string): Handler =>
  function* (frame, g) {
    g.note(tag, { vector: frame.event.kind === 'interrupt' ? frame.event.vector : -1 });
    yield { op: 'wrmsr', msr: X86_MSR.X2APIC_EOI, value: 0n };
  };

function unit(): World {
  return makeWorld({ start: false });
}

describe('LAPIC registers', () => {
  test('starts software-disabled with masked LVTs; SPIV bit 8 enables', () => {
    const w = unit();
    const l = w.v.lapic!;
    expect(w.kvm.getMsr(0, X86_MSR.X2APIC_SPIV)).toBe(0xffn);
    expect(l.enabled).toBe(false);
    expect(w.kvm.getMsr(0, X86_MSR.X2APIC_LVT_TIMER)! & BigInt(LVT_MASKED)).toBe(BigInt(LVT_MASKED));
    // An LVT cannot be unmasked while software-disabled.
    w.kvm.setMsr(0, X86_MSR.X2APIC_LVT_TIMER, 0xecn);
    expect(w.kvm.getMsr(0, X86_MSR.X2APIC_LVT_TIMER)).toBe(BigInt(LVT_MASKED | 0xec));
    w.kvm.setMsr(0, X86_MSR.X2APIC_SPIV, SPIV_ON);
    expect(l.enabled).toBe(true);
    w.kvm.setMsr(0, X86_MSR.X2APIC_LVT_TIMER, 0xecn);
    expect(w.kvm.getMsr(0, X86_MSR.X2APIC_LVT_TIMER)).toBe(0xecn);
    // Software disable masks the LVTs again.
    w.kvm.setMsr(0, X86_MSR.X2APIC_SPIV, 0xffn);
    expect(w.kvm.getMsr(0, X86_MSR.X2APIC_LVT_TIMER)).toBe(BigInt(LVT_MASKED | 0xec));
    expect(w.ev('kvm_lapic_enable')).toHaveLength(1);
    expect(w.ev('kvm_lapic_disable')).toHaveLength(1);
  });

  test('a software-disabled LAPIC drops fixed interrupts but takes NMIs', () => {
    const w = unit();
    const l = w.v.lapic!;
    expect(l.accept('fixed', 0x40)).toBe(false);
    expect(l.irr.get(0x40)).toBe(false);
    expect(w.ev('kvm_apic_irq_dropped', { vec: 0x40 })).toHaveLength(1);
    l.accept('nmi', 0);
    expect(w.v.nmiPending).toBe(1);
  });

  test('injectIrq (KVM_SIGNAL_MSI) raises a fixed interrupt, and is dropped while the LAPIC is software-disabled', () => {
    const w = unit();
    const l = w.v.lapic!;
    w.kvm.injectIrq(0, 0x40);
    expect(l.irr.get(0x40)).toBe(false);
    w.kvm.setMsr(0, X86_MSR.X2APIC_SPIV, SPIV_ON);
    w.kvm.injectIrq(0, 0x40);
    expect(l.irr.get(0x40)).toBe(true);
    w.kvm.injectIrq(7, 0x41); // no such vCPU: ignored
    expect(l.irr.get(0x41)).toBe(false);
  });

  test('IRR/ISR priority, TPR, EOI retires the highest in-service vector', () => {
    const w = unit();
    w.kvm.setMsr(0, X86_MSR.X2APIC_SPIV, SPIV_ON);
    const l = w.v.lapic!;
    l.accept('fixed', 0x31);
    l.accept('fixed', 0x52);
    expect(l.accept('fixed', 0x52)).toBe(false); // coalesced
    expect(w.ev('kvm_apic_accept_irq', { coalesced: true })).toHaveLength(1);
    expect(w.kvm.getMsr(0, X86_MSR.X2APIC_IRR0 + 1)).toBe(1n << 17n); // 0x31 = 32 + 17
    expect(l.highestDeliverable()).toBe(0x52);
    l.ack(0x52);
    // 0x31 is below the in-service class 5: not deliverable until EOI.
    expect(l.highestDeliverable()).toBe(-1);
    expect(w.kvm.getMsr(0, X86_MSR.X2APIC_ISR0 + 2)).toBe(1n << 18n);
    expect(w.kvm.getMsr(0, X2APIC_MSR.PPR)).toBe(0x50n);
    w.kvm.setMsr(0, X86_MSR.X2APIC_EOI, 0n);
    expect(w.ev('kvm_apic_eoi', { vector: 0x52 })).toHaveLength(1);
    expect(l.highestDeliverable()).toBe(0x31);
    // TPR blocks classes at or below it.
    w.kvm.setMsr(0, X86_MSR.X2APIC_TPR, 0x30n);
    expect(l.highestDeliverable()).toBe(-1);
    w.kvm.setMsr(0, X86_MSR.X2APIC_TPR, 0x20n);
    expect(l.highestDeliverable()).toBe(0x31);
  });

  test('vectors 0-15 are accepted into IRR but never delivered', () => {
    const w = unit();
    w.kvm.setMsr(0, X86_MSR.X2APIC_SPIV, SPIV_ON);
    w.v.lapic!.accept('fixed', 0);
    expect(w.v.lapic!.irr.get(0)).toBe(true);
    expect(w.v.lapic!.highestDeliverable()).toBe(-1);
  });

  test('read-only and write-only registers fault; ID, version, LDR read', () => {
    const w = unit();
    expect(w.kvm.getMsr(0, X86_MSR.X2APIC_EOI)).toBeUndefined();
    expect(w.kvm.setMsr(0, X2APIC_MSR.ID, 5n)).toBe(false);
    expect(w.kvm.setMsr(0, X2APIC_MSR.TIMER_CURRENT, 5n)).toBe(false);
    expect(w.kvm.getMsr(0, X2APIC_MSR.ID)).toBe(0n);
    expect(w.kvm.getMsr(0, X2APIC_MSR.VERSION)! & 0xffn).toBe(0x14n);
    expect(w.kvm.getMsr(0, X2APIC_MSR.LDR)).toBe(1n);
    expect(w.kvm.getMsr(0, 0x8ff)).toBeUndefined();
    expect(w.kvm.getMsr(0, X86_MSR.IA32_APIC_BASE)).toBe(0xfee00000n | (1n << 11n) | (1n << 10n) | (1n << 8n));
  });
});

describe('LAPIC timer', () => {
  const timerWorld = (lvt: bigint, arm: (w: World) => void, runNs: number): World => {
    const w = makeWorld({ cpl: 0, guest: { idle: 'sti_hlt', handlers: { 0xec: eoiHandler('tick') } } });
    w.kvm.setMsr(0, X86_MSR.X2APIC_SPIV, SPIV_ON);
    w.kvm.setMsr(0, X86_MSR.X2APIC_LVT_TIMER, lvt);
    arm(w);
    w.run(runNs);
    return w;
  };

  test('one-shot: fires once after the initial count (ns); current count counts down', () => {
    let mid = -1n;
    const w = timerWorld(0xecn, (x) => {
      x.kvm.setMsr(0, X2APIC_MSR.TIMER_INITIAL, 50_000n);
      x.sim.scheduleAt(20_000, 40, () => void (mid = x.kvm.getMsr(0, X2APIC_MSR.TIMER_CURRENT)!), 'probe');
    }, 500_000);
    expect(w.guest.vectors()).toEqual([0xec]);
    expect(w.guest.log[0]).toMatchObject({ t: 50_000 });
    expect(mid).toBe(30_000n);
  });

  test('periodic: re-arms; never faster than min_timer_period', () => {
    const w = timerWorld(0xecn | (1n << 17n), (x) => x.kvm.setMsr(0, X2APIC_MSR.TIMER_INITIAL, 10n), 1_000_000);
    const ticks = w.guest.notes('tick').length;
    expect(ticks).toBe(Math.floor(1_000_000 / MIN_TIMER_PERIOD_NS));
  });

  test('TSC deadline: fires at the deadline; 0 disarms; a past deadline fires at once', () => {
    const w = timerWorld(0xecn | (2n << 17n), (x) => x.kvm.setMsr(0, X86_MSR.IA32_TSC_DEADLINE, 70_000n), 500_000);
    expect(w.guest.log[0]).toMatchObject({ t: 70_000, vector: 0xec });
    const w2 = timerWorld(0xecn | (2n << 17n), (x) => {
      x.kvm.setMsr(0, X86_MSR.IA32_TSC_DEADLINE, 70_000n);
      x.kvm.setMsr(0, X86_MSR.IA32_TSC_DEADLINE, 0n);
    }, 500_000);
    expect(w2.guest.vectors()).toEqual([]);
  });

  test('a masked timer does not interrupt', () => {
    const w = timerWorld(0xecn | BigInt(LVT_MASKED), (x) => x.kvm.setMsr(0, X2APIC_MSR.TIMER_INITIAL, 1000n), 100_000);
    expect(w.guest.vectors()).toEqual([]);
  });
});

describe('interrupt delivery and IPIs', () => {
  test('IF=0 holds the interrupt until STI (after the one-instruction shadow)', () => {
    const w = makeWorld({
      cpl: 0,
      ifFlag: false,
      guest: {
        idle: 'hlt',
        handlers: { 0x40: eoiHandler('irq') },
        main: function* (g) {
          yield { op: 'compute', ns: 10_000 };
          g.note('before sti');
          yield { op: 'sti' };
          yield { op: 'pause' }; // in the STI shadow
          g.note('after shadow');
          yield { op: 'pause' };
          g.note('after next');
        },
      },
    });
    w.kvm.setMsr(0, X86_MSR.X2APIC_SPIV, SPIV_ON);
    w.sim.scheduleAt(1000, 40, () => void w.v.lapic!.accept('fixed', 0x40), 'irq');
    w.run(100_000);
    const order = w.guest.log.map((e) => (e.kind === 'note' ? e.what : e.kind));
    expect(order).toEqual(['before sti', 'after shadow', 'vector', 'irq', 'after next']);
  });

  test('a kick preempts a compute instruction; the guest sees the time actually spent', () => {
    const w = makeWorld({
      cpl: 0,
      guest: {
        handlers: { 0x40: eoiHandler('irq') },
        main: function* (g) {
          const spent = yield { op: 'compute', ns: 1_000_000 };
          g.note('spent', { spent });
        },
      },
    });
    w.kvm.setMsr(0, X86_MSR.X2APIC_SPIV, SPIV_ON);
    w.sim.scheduleAt(3000, 40, () => void w.v.lapic!.accept('fixed', 0x40), 'irq');
    w.run(100_000);
    expect(w.guest.notes('spent')).toEqual([{ spent: 3000 }]);
    expect(w.guest.log.find((e) => e.kind === 'vector')).toMatchObject({ t: 3000, vector: 0x40 });
  });

  test('fixed IPIs: destination, self, all, all-but-self; NMI IPI', () => {
    const handlers = Object.fromEntries([0x41, 0x42, 0x43, 0x44].map((v) => [v, eoiHandler('irq')]));
    const w = makeWorld({
      cpl: 0,
      guests: [
        {
          idle: 'sti_hlt',
          handlers,
          main: function* () {
            yield { op: 'wrmsr', msr: X86_MSR.X2APIC_ICR, value: (2n << 32n) | 0x41n };
            yield { op: 'wrmsr', msr: X86_MSR.X2APIC_ICR, value: (1n << 18n) | 0x42n };
            yield { op: 'wrmsr', msr: X86_MSR.X2APIC_ICR, value: (2n << 18n) | 0x43n };
            yield { op: 'wrmsr', msr: X86_MSR.X2APIC_ICR, value: (3n << 18n) | 0x44n };
            yield { op: 'wrmsr', msr: X86_MSR.X2APIC_ICR, value: (1n << 32n) | (4n << 8n) };
          },
        },
        { idle: 'sti_hlt', handlers },
        { idle: 'sti_hlt', handlers },
      ],
    });
    for (const id of [0, 1, 2]) w.kvm.setMsr(id, X86_MSR.X2APIC_SPIV, SPIV_ON);
    w.run(200_000);
    const irqs = (i: number) => w.guests[i]!.log.flatMap((e) => (e.kind === 'vector' ? [e.vector] : []));
    expect(irqs(0).sort()).toEqual([0x42, 0x43]);
    expect(irqs(1).sort()).toEqual([0x02, 0x43, 0x44]);
    expect(irqs(2).sort()).toEqual([0x41, 0x43, 0x44]);
  });

  test('KVM_NMI wakes a HLT with IF=0 and is delivered; NMIs are blocked until IRET', () => {
    const w = makeWorld({ cpl: 0, ifFlag: false, guest: { idle: 'hlt' } });
    w.sim.scheduleAt(5000, 40, () => {
      w.kvm.injectNmi(0);
      w.kvm.injectNmi(0);
      w.kvm.injectNmi(0);
    }, 'nmi');
    w.run(100_000);
    expect(w.guest.vectors()).toEqual([2, 2]); // at most two pending
    expect(w.ev('kvm_inj_nmi')).toHaveLength(2);
  });
});
