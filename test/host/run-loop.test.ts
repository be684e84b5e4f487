/** The run loop: exits, CPUID, HLT, triple fault, MMIO, request order, and whole-protocol runs per era. */
import { KVM_APF_WAKE_ALL_TOKEN } from '../../shared-abi/apf';
import type { Gva } from '../../shared-abi/addr';
import type { CpuidResult } from '../../shared-abi/arch';
import { KVM_CPUID_FEATURES, kvmFeatureEax } from '../../shared-abi/cpuid';
import { MSR_KVM_ASYNC_PF_EN, X86_MSR } from '../../shared-abi/msr';
import { HYPERVISOR_CALLBACK_VECTOR, PF_VECTOR, X86_EXCEPTION } from '../../shared-abi/vectors';
import { faultinPfn } from '../../host/mmu';
import type { Handler } from '../support/scripted-guest';
import { apfPfHandler, AREA, DATA_GFN, dataGpa, enableModern, makeWorld, MEM_PAGES, pageReadyHandler, SPIV_ON, touch } from './world';
import { PAGE_SIZE } from '../../shared-abi/addr';

describe('exits', () => {
  test('CPUID: KVM signature and the feature leaf limited to what the profile supports', () => {
    const run = (profile: 'current' | 'linux-4.19') => {
      const w = makeWorld({
        profile,
        cpl: 0,
        vm: { kvmFeatures: kvmFeatureEax('ASYNC_PF', 'ASYNC_PF_INT', 'STEAL_TIME') },
        guest: {
          idle: 'hlt',
          main: function* (g) {
            for (const leaf of [0x40000000, KVM_CPUID_FEATURES, 0x12345]) {
              const r = (yield { op: 'cpuid', leaf }) as CpuidResult;
              g.note('cpuid', { ...r });
            }
          },
        },
      });
      w.run(100_000);
      return w.guest.notes('cpuid');
    };
    const [sig, feat, other] = run('current');
    const bytes = [sig!.ebx, sig!.ecx, sig!.edx].flatMap((d) => [0, 8, 16, 24].map((s) => ((d as number) >>> s) & 0xff));
    expect(String.fromCharCode(...bytes)).toBe('KVMKVMKVM\0\0\0');
    expect(sig!.eax).toBe(KVM_CPUID_FEATURES);
    expect(feat!.eax).toBe(kvmFeatureEax('ASYNC_PF', 'ASYNC_PF_INT', 'STEAL_TIME'));
    expect(other).toEqual({ eax: 0, ebx: 0, ecx: 0, edx: 0 });
    expect(run('linux-4.19')[1]!.eax).toBe(kvmFeatureEax('ASYNC_PF', 'STEAL_TIME'));
  });

  test('each exit costs exitCostNs', () => {
    const w = makeWorld({ cpl: 0, vm: { exitCostNs: 5000 }, guest: { idle: 'hlt', main: function* (g) { yield { op: 'cpuid', leaf: 0 }; g.note('a'); yield { op: 'cpuid', leaf: 0 }; g.note('b'); yield { op: 'rdtsc' }; } } });
    w.run(100_000);
    const tsc = w.guest.retired.find((r) => r.insn.op === 'rdtsc')!.result as number;
    expect(tsc).toBe(2 * (5000 + 1));
  });

  test('HLT blocks until an interrupt; the HLT retires when the vCPU runs again', () => {
    const w = makeWorld({
      cpl: 0,
      guest: {
        idle: 'hlt',
        handlers: { 0x40: function* () { yield { op: 'wrmsr', msr: X86_MSR.X2APIC_EOI, value: 0n }; } },
        main: function* (g) {
          yield { op: 'sti_hlt' };
          g.note('woke');
        },
      },
    });
    w.kvm.setMsr(0, X86_MSR.X2APIC_SPIV, SPIV_ON);
    w.sim.scheduleAt(50_000, 40, () => void w.v.lapic!.accept('fixed', 0x40), 'irq');
    w.run(100_000);
    expect(w.ev('kvm_vcpu_block', { why: 'hlt' })[0]!.t).toBeLessThan(50_000);
    expect(w.ev('kvm_vcpu_wakeup')[0]!.t).toBe(50_000);
    expect(w.guest.notes('woke')).toHaveLength(1);
    // The interrupt frame returns after the HLT.
    expect(w.guest.retired.filter((r) => r.insn.op === 'sti_hlt')).toHaveLength(1);
  });

  test('triple fault: the vCPU shuts down; RESET brings it back', () => {
    const w = makeWorld({ cpl: 0, guest: { missingGates: [X86_EXCEPTION.UD, X86_EXCEPTION.GP, X86_EXCEPTION.DF], main: function* () { yield { op: 'ud2' }; } } });
    w.run(10_000);
    expect(w.ev('kvm_shutdown', { why: 'triple_fault' })).toHaveLength(1);
    expect(w.v.thread).toBe('stopped');
    w.kvm.vcpuReset(0);
    w.run(10_000);
    expect(w.ev('kvm_vcpu_reset')).toHaveLength(1);
    expect(w.v.thread).not.toBe('stopped');
  });

  test('two #GPs queued by the host become #DF; a third exception on #DF is a triple fault', () => {
    const w = makeWorld({ start: false });
    w.v.queueException({ vector: X86_EXCEPTION.GP, errorCode: 0 });
    w.v.queueException({ vector: X86_EXCEPTION.GP, errorCode: 0 });
    expect(w.v.pendingException).toEqual({ vector: X86_EXCEPTION.DF, errorCode: 0 });
    w.v.queueException({ vector: X86_EXCEPTION.UD });
    expect(w.v.tripleFaultPending).toBe(true);
    // Benign on benign: the newer replaces the pending one.
    const w2 = makeWorld({ start: false });
    w2.v.queueException({ vector: X86_EXCEPTION.UD });
    w2.v.queueException({ vector: X86_EXCEPTION.MC });
    expect(w2.v.pendingException).toEqual({ vector: X86_EXCEPTION.MC });
  });

  test('an access beyond guest RAM is unassigned MMIO: reads 0, writes dropped', () => {
    const w = makeWorld({ cpl: 0, paging: false, guest: { idle: 'hlt', main: function* (g) { g.note('r', { v: yield { op: 'load', gva: (MEM_PAGES * PAGE_SIZE + 8) as Gva, size: 4 } }); } } });
    w.run(10_000);
    expect(w.guest.notes('r')).toEqual([{ v: 0 }]);
    expect(w.ev('kvm_mmio')).toHaveLength(1);
  });
});

describe('request order inside an entry', () => {
  test('APF_HALT aborts the entry; APF_READY stays pending for the next one', () => {
    const w = makeWorld({ start: false, cpl: 0, memory: { pages: [{ gfn: DATA_GFN, count: 2, backing: 'swapped' }] }, guest: { main: touch(dataGpa(1)) } });
    enableModern(w);
    // Both requests pending at the first entry.
    w.v.cpu.cpl = 3;
    faultinPfn(w.v, dataGpa(0), DATA_GFN, 0, false);
    w.v.pendingException = null;
    w.v.cpu.cpl = 0;
    w.v.makeRequest('apf_halt', { gfn: DATA_GFN, why: 'undeliverable' });
    expect(w.v.requests.has('apf_ready')).toBe(true);
    w.kvm.start();
    w.run(1);
    expect(w.v.apf.halted).toBe(false); // woken at once: the done list (wake-all) is non-empty
    const seq = w.rec.records.map((r) => r.event);
    expect(seq.indexOf('kvm_async_pf_halt')).toBeLessThan(seq.indexOf('kvm_async_pf_ready'));
    expect(seq.indexOf('kvm_async_pf_unhalt')).toBeLessThan(seq.indexOf('kvm_async_pf_ready'));
  });
});

/** ≤v5.7 guest #PF handler: reason 2 → page ready, 1 → not present (retry), 0 → ordinary. */
const legacyPf: Handler = function* (_f, g) {
  const reason = yield { op: 'load', gva: AREA as Gva, size: 4 };
  yield { op: 'store', gva: AREA as Gva, size: 4, value: 0 };
  const cr2 = yield { op: 'read_cr', cr: 2 };
  g.note(reason === 2 ? 'ready' : reason === 1 ? 'not_present' : 'pf', { token: cr2 });
};

describe('whole protocol per era', () => {
  test.each(['linux-3.0', 'linux-4.19'] as const)('%s: page ready is a #PF with reason 2 (wake-all first)', (profile) => {
    const w = makeWorld({
      profile,
      memory: { pages: [{ gfn: DATA_GFN, backing: 'swapped' }] },
      guest: {
        main: function* (g) {
          yield { op: 'load', gva: dataGpa(0) as Gva, size: 4 };
          g.note('touched');
          for (let i = 0; i < 3; i++) yield { op: 'cpuid', leaf: 0 };
        },
        handlers: { [PF_VECTOR]: legacyPf },
      },
    });
    w.kvm.setMsr(0, X86_MSR.X2APIC_SPIV, SPIV_ON);
    w.kvm.setMsr(0, MSR_KVM_ASYNC_PF_EN, BigInt(AREA) | 1n);
    w.run(2_000_000);
    const token = w.ev('kvm_async_pf_not_present')[0]!.token;
    expect(w.guest.notes('not_present')).toEqual([{ token }]);
    expect(w.guest.notes('ready').map((n) => n.token)).toEqual([KVM_APF_WAKE_ALL_TOKEN, token]);
    expect(w.guest.notes('touched')).toHaveLength(1);
    expect(w.ev('kvm_write_guest').every((r) => r.field === 'reason')).toBe(true);
    expect(w.ev('kvm_async_pf_doublefault')).toHaveLength(1);
    // Only v3.0 still took a page reference in the worker (f2e106692d51 dropped it in v3.13).
    if (profile === 'linux-3.0') expect(w.ev('kvm_async_pf_completed')[0]).toHaveProperty('pfn');
    else expect(w.ev('kvm_async_pf_completed')[0]).not.toHaveProperty('pfn');
  });

  test.each(['linux-5.8', 'linux-5.13', 'linux-6.6', 'current'] as const)('%s: interrupt-based page ready with ACK', (profile) => {
    const w = makeWorld({
      profile,
      memory: { pages: [{ gfn: DATA_GFN, backing: 'swapped' }] },
      guest: { main: touch(dataGpa(0)), handlers: { [PF_VECTOR]: apfPfHandler(), [HYPERVISOR_CALLBACK_VECTOR]: pageReadyHandler() } },
    });
    enableModern(w);
    w.run(2_000_000);
    const token = w.ev('kvm_async_pf_not_present')[0]!.token;
    expect(w.guest.notes('pf')).toEqual([{ flags: 1, cr2: token, cpl: 3 }]);
    expect(w.guest.notes('page_ready').map((n) => n.token)).toEqual([KVM_APF_WAKE_ALL_TOKEN, token]);
    expect(w.guest.notes('touched')).toHaveLength(1);
    expect(w.ev(profile === 'current' ? 'kvm_async_pf_repeated_fault' : 'kvm_async_pf_doublefault')).toHaveLength(1);
  });

  test('a v5.9+ guest on a v4.19 host gets no async PF at all (no INT MSR)', () => {
    const w = makeWorld({
      profile: 'linux-4.19',
      cpl: 0,
      memory: { pages: [{ gfn: DATA_GFN, backing: 'swapped' }] },
      guest: {
        fixup: [X86_EXCEPTION.GP],
        main: function* (g) {
          yield { op: 'wrmsr', msr: X86_MSR.X2APIC_SPIV, value: SPIV_ON };
          yield { op: 'wrmsr', msr: 0x4b564d06, value: 0xf3n };
          yield { op: 'wrmsr', msr: MSR_KVM_ASYNC_PF_EN, value: BigInt(AREA) | 9n };
          g.note('setup done');
        },
      },
    });
    w.run(100_000);
    expect(w.ev('kvm_msr', { exception: true })).toHaveLength(2);
    expect(w.kvm.getMsr(0, MSR_KVM_ASYNC_PF_EN)).toBe(0n);
  });
});

describe('nested (spec §5)', () => {
  test.each([true, false])('L2 miss with DELIVERY_AS_PF_VMEXIT: #PF VM-exit to L1 with the token (nested_payload %s)', (payload) => {
    const w = makeWorld({
      toggles: { nested_payload: payload },
      memory: { pages: [{ gfn: DATA_GFN, backing: 'swapped' }] },
      guest: {
        main: touch(dataGpa(0)),
        onVmexit: (exit, g) => {
          g.note('vmexit', { q: exit.exitQualification });
        },
        handlers: { [HYPERVISOR_CALLBACK_VECTOR]: pageReadyHandler() },
      },
      start: false,
    });
    enableModern(w, 0, { vmexit: true });
    w.v.cpu.guestMode = true;
    w.kvm.start();
    w.run(1_000_000);
    const token = w.ev('kvm_async_pf_not_present')[0]!.token;
    expect(w.guest.notes('vmexit')).toEqual([{ q: token }]);
    expect(w.ev('kvm_nested_apf_vmexit')[0]).toMatchObject({ token, form: payload ? 'payload' : 'nested_apf_token' });
    // Page ready goes to L1 as an ordinary interrupt.
    expect(w.ev('kvm_async_pf_ready', { token, notified: true })).toHaveLength(1);
    expect(w.v.stats.nestedVmexits).toBe(1);
  });

  test('L2 kernel-mode miss without SEND_ALWAYS: artificial halt of the L1 vCPU (CPL checked first)', () => {
    const w = makeWorld({ start: false, cpl: 0, memory: { pages: [{ gfn: DATA_GFN, backing: 'swapped' }] } });
    enableModern(w, 0, { vmexit: true });
    w.v.cpu.guestMode = true;
    faultinPfn(w.v, dataGpa(0), DATA_GFN, 0, false);
    expect(w.ev('kvm_async_pf_not_present')[0]).toMatchObject({ injected: false, halt: true });
  });

  test('linux-4.19: guest mode without the opt-in is refused by can_do (synchronous)', () => {
    const w = makeWorld({ profile: 'linux-4.19', start: false, memory: { pages: [{ gfn: DATA_GFN, backing: 'swapped' }] } });
    w.kvm.setMsr(0, X86_MSR.X2APIC_SPIV, SPIV_ON);
    w.kvm.setMsr(0, MSR_KVM_ASYNC_PF_EN, BigInt(AREA) | 1n);
    w.v.cpu.guestMode = true;
    expect(faultinPfn(w.v, dataGpa(0), DATA_GFN, 0, false)).toBe('cannot_do');
    w.kvm.setMsr(0, MSR_KVM_ASYNC_PF_EN, BigInt(AREA) | 5n);
    expect(faultinPfn(w.v, dataGpa(0), DATA_GFN, 0, false)).toBe('async');
    expect(w.v.pendingException).toMatchObject({ nested: 'nested_apf_token' });
  });
});
