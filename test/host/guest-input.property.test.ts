/**
 * Property: nothing a guest controls makes the host throw — MSR indices and 64-bit values (APF
 * MSRs with any GPA and reserved bits, x2APIC registers, ICR IPIs, timers), the bytes of the
 * shared struct, GPAs inside and outside guest RAM, interrupt vectors 0–255, CR0.PG toggles —
 * together with host-side events (evictions, NMI, SMI, INIT) on every profile. After each run the
 * host's own invariants hold.
 */
import fc from 'fast-check';
import { HOST_PROFILES, HOST_TOGGLES, type HostToggle } from '../../host/config';
import { PAGE_SIZE, type Gva } from '../../shared-abi/addr';
import { CR0_PE, CR0_PG, type Insn } from '../../shared-abi/arch';
import { KVM_MSR, X86_MSR } from '../../shared-abi/msr';
import { X86_EXCEPTION } from '../../shared-abi/vectors';
import { AREA, DATA_GFN, makeWorld, MEM_PAGES } from './world';
import { cases } from '../support/scale';

const MEM = MEM_PAGES * PAGE_SIZE;
const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
const msrIndex = fc.oneof(
  fc.constantFrom(KVM_MSR.ASYNC_PF_EN, KVM_MSR.ASYNC_PF_INT, KVM_MSR.ASYNC_PF_ACK, ...Object.values(KVM_MSR)),
  fc.constantFrom(X86_MSR.IA32_APIC_BASE, X86_MSR.IA32_TSC_DEADLINE, X86_MSR.X2APIC_SPIV, X86_MSR.X2APIC_EOI, X86_MSR.X2APIC_ICR, X86_MSR.X2APIC_LVT_TIMER, 0x838, 0x83f, 0x808),
  fc.integer({ min: 0x800, max: 0x8ff }),
  fc.integer({ min: 0, max: 0xffffffff }),
);
/** EN values: an area anywhere (in RAM, at its end, beyond it, huge), any low bits. */
const enValue = fc
  .tuple(fc.oneof(fc.constantFrom(AREA, MEM - 64, MEM, 2 ** 40), fc.integer({ min: 0, max: MEM / 64 }).map((x) => x * 64), u64.map((v) => Number(v >> 6n) * 64)), fc.integer({ min: 0, max: 63 }))
  .map(([gpa, low]) => (BigInt(Math.min(gpa, 2 ** 52)) & ~0x3fn) | BigInt(low));
const wordGpa = fc.oneof(
  fc.constantFrom(AREA, AREA + 4, AREA + 64),
  fc.integer({ min: DATA_GFN * 1024, max: (DATA_GFN + 10) * 1024 - 1 }).map((x) => x * 4),
  fc.integer({ min: 0, max: MEM / 4 - 1 }).map((x) => x * 4),
  fc.integer({ min: MEM / 4, max: MEM / 2 }).map((x) => x * 4),
);
/** ICR: fixed/NMI mostly, INIT rarely; any shorthand, vector and destination. */
const icrValue = fc
  .tuple(fc.integer({ min: 0, max: 255 }), fc.constantFrom(0, 0, 0, 4, 5, 1, 7), fc.integer({ min: 0, max: 3 }), fc.constantFrom(0, 1, 7, 0xffffffff))
  .map(([vec, dm, sh, dest]) => (BigInt(dest) << 32n) | BigInt(vec | (dm << 8) | (sh << 18)));

const insn: fc.Arbitrary<Insn> = fc.oneof(
  { weight: 4, arbitrary: fc.tuple(msrIndex, u64).map(([msr, value]): Insn => ({ op: 'wrmsr', msr, value })) },
  { weight: 3, arbitrary: enValue.map((value): Insn => ({ op: 'wrmsr', msr: KVM_MSR.ASYNC_PF_EN, value })) },
  { weight: 2, arbitrary: fc.integer({ min: 0, max: 0x3ff }).map((v): Insn => ({ op: 'wrmsr', msr: KVM_MSR.ASYNC_PF_INT, value: BigInt(v) })) },
  { weight: 2, arbitrary: icrValue.map((value): Insn => ({ op: 'wrmsr', msr: X86_MSR.X2APIC_ICR, value })) },
  { weight: 2, arbitrary: msrIndex.map((msr): Insn => ({ op: 'rdmsr', msr })) },
  { weight: 3, arbitrary: fc.tuple(wordGpa, fc.integer({ min: 0, max: 0xffffffff })).map(([g, value]): Insn => ({ op: 'store', gva: g as Gva, size: 4, value })) },
  { weight: 3, arbitrary: wordGpa.map((g): Insn => ({ op: 'load', gva: g as Gva, size: 4 })) },
  { weight: 1, arbitrary: fc.constantFrom<Insn>({ op: 'sti' }, { op: 'cli' }, { op: 'pause' }, { op: 'ud2' }, { op: 'compute', ns: 5000 }) },
  { weight: 1, arbitrary: fc.constantFrom<Insn>({ op: 'write_cr', cr: 0, value: CR0_PE }, { op: 'write_cr', cr: 0, value: CR0_PE | CR0_PG }) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffffffff }).map((leaf): Insn => ({ op: 'cpuid', leaf })) },
);

type HostEvent = { t: number; what: 'evict' | 'nmi' | 'smi' | 'init' | 'reset'; gfn: number };
const hostEvent: fc.Arbitrary<HostEvent> = fc.record({
  t: fc.integer({ min: 0, max: 2_000_000 }),
  what: fc.constantFrom('evict', 'evict', 'nmi', 'smi', 'init', 'reset'),
  gfn: fc.oneof(fc.constant(AREA / PAGE_SIZE), fc.integer({ min: DATA_GFN, max: DATA_GFN + 7 }), fc.integer({ min: 0, max: MEM_PAGES - 1 })),
});
const togglesArb = fc.dictionary(fc.constantFrom(...(Object.keys(HOST_TOGGLES) as HostToggle[])), fc.boolean(), { maxKeys: 4 });

test('random guest-controlled input never makes the host throw', () => {
  fc.assert(
    fc.property(
      fc.constantFrom(...HOST_PROFILES),
      togglesArb,
      fc.array(insn, { minLength: 20, maxLength: 200, size: 'medium' }),
      fc.array(hostEvent, { minLength: 1, maxLength: 8 }),
      fc.boolean(),
      fc.integer({ min: 1, max: 1000 }),
      (profile, toggles, program, events, userspaceLapic, seed) => {
        const setup: Insn[] = [
          { op: 'wrmsr', msr: X86_MSR.X2APIC_SPIV, value: 0x1ffn },
          { op: 'wrmsr', msr: KVM_MSR.ASYNC_PF_INT, value: 0xf3n },
          { op: 'wrmsr', msr: KVM_MSR.ASYNC_PF_EN, value: BigInt(AREA) | (profile === 'linux-3.0' || profile === 'linux-4.19' ? 3n : 11n) },
        ];
        const w = makeWorld({
          profile,
          toggles: toggles as Partial<Record<HostToggle, boolean>>,
          seed,
          cpl: 0,
          ifFlag: true,
          vm: { lapic: userspaceLapic ? 'userspace' : 'in-kernel', enforcePvCpuid: seed % 2 === 0, exitCostNs: 200 },
          memory: {
            pages: [
              { gfn: DATA_GFN, count: 8, backing: 'swapped' },
              { gfn: DATA_GFN + 8, count: 2, backing: 'failing' },
            ],
            swapLatency: { kind: 'uniform', min: 1000, max: 20_000 },
            limitPages: 4,
          },
          guest: {
            idle: 'compute',
            // Fixups so a faulting instruction is skipped instead of retried forever.
            fixup: [X86_EXCEPTION.GP, X86_EXCEPTION.UD, X86_EXCEPTION.PF, X86_EXCEPTION.MC],
            main: function* () {
              for (const i of setup) yield i;
              for (let round = 0; round < 3; round++) for (const i of program) yield i;
            },
            handlers: {
              // Page ready: EOI, read the token, clear it, ACK (the v5.9+ handler).
              0xf3: function* () {
                yield { op: 'wrmsr', msr: X86_MSR.X2APIC_EOI, value: 0n };
                yield { op: 'load', gva: (AREA + 4) as Gva, size: 4 };
                yield { op: 'store', gva: (AREA + 4) as Gva, size: 4, value: 0 };
                yield { op: 'wrmsr', msr: KVM_MSR.ASYNC_PF_ACK, value: 1n };
              },
            },
            onReset: () =>
              function* () {
                for (const i of setup) yield i;
                for (const i of program.slice(0, 10)) yield i;
              },
          },
        });
        for (const e of events) {
          w.sim.scheduleAt(e.t, 40, () => {
            if (e.what === 'evict') w.kvm.evict([e.gfn]);
            else if (e.what === 'nmi') w.kvm.injectNmi(0);
            else if (e.what === 'smi') w.kvm.injectSmi(0, 5000);
            else if (e.what === 'init') w.kvm.vcpuInit(0);
            else w.kvm.vcpuReset(0);
          }, 'test.host-event');
        }
        w.sim.run({ until: 3_000_000 });
        const v = w.v;
        const wakeAlls = v.asyncPf.done.filter((x) => x.wakeupAll).length;
        expect(v.asyncPf.queued).toBe(v.asyncPf.queue.length + wakeAlls);
        expect(v.asyncPf.queued).toBeLessThanOrEqual(64);
        expect(v.apf.hash.size).toBe(v.asyncPf.queue.length);
        expect(v.apf.hash.warned).toBe(false);
        if (w.kvm.toggles.nonzero_token) expect(w.ev('kvm_async_pf_not_present', { token: 0 })).toHaveLength(0);
        // Host writes never leave the registered area's host-writable bytes.
        for (const r of w.ev('kvm_write_guest', { ok: true })) {
          expect((r.gpa as number) % 64).toBeLessThan(w.kvm.profile.layout === 'v2.6.38' ? 4 : 8);
        }
      },
    ),
    { seed: 20240601, numRuns: cases(100, 300) },
  );
});
