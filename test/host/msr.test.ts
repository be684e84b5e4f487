/**
 * The async-PF MSR matrix (spec §3.2–§3.4): every profile × EN/INT/ACK × reserved bits × CPUID
 * gating (enforcement on/off) × userspace LAPIC × the "stored before mapped" quirk × wake-all on
 * enable × ACK re-scan. Expectations come from the spec's tables, written out here, not from the
 * implementation's profile data.
 */
import { HOST_PROFILES, type HostProfileName } from '../../host/config';
import { kvmFeatureEax, type KvmFeatureName } from '../../shared-abi/cpuid';
import {
  KVM_ASYNC_PF_DELIVERY_AS_INT,
  KVM_ASYNC_PF_DELIVERY_AS_PF_VMEXIT,
  KVM_ASYNC_PF_ENABLED,
  MSR_KVM_ASYNC_PF_ACK,
  MSR_KVM_ASYNC_PF_EN,
  MSR_KVM_ASYNC_PF_INT,
  X86_MSR,
} from '../../shared-abi/msr';
import { GP_VECTOR, HYPERVISOR_CALLBACK_VECTOR } from '../../shared-abi/vectors';
import { archSetupAsyncPf } from '../../host/x86/apf';
import { AREA, DATA_GFN, dataGpa, enModern, makeWorld, MEM_PAGES, rdmsr, SPIV_ON, wrmsr, type World } from './world';
import { PAGE_SIZE } from '../../shared-abi/addr';

/** The spec's per-era facts (§1.2 reserved masks, §1.1 INT/ACK existence, §1.4 enforcement ~v5.10, §3.2 step 5 Sept 2020). */
const ERA: Record<HostProfileName, { mask: number; intAck: boolean; enforcement: boolean; rejectNoLapic: boolean; pvMask: bigint; userspaceZero?: true }> = {
  'linux-3.0': { mask: 0x3c, intAck: false, enforcement: false, rejectNoLapic: false, pvMask: KVM_ASYNC_PF_ENABLED },
  'linux-4.19': { mask: 0x38, intAck: false, enforcement: false, rejectNoLapic: false, pvMask: KVM_ASYNC_PF_ENABLED },
  'linux-5.8': { mask: 0x30, intAck: true, enforcement: false, rejectNoLapic: false, pvMask: KVM_ASYNC_PF_ENABLED | KVM_ASYNC_PF_DELIVERY_AS_INT },
  'linux-5.13': { mask: 0x30, intAck: true, enforcement: true, rejectNoLapic: true, pvMask: KVM_ASYNC_PF_ENABLED | KVM_ASYNC_PF_DELIVERY_AS_INT },
  'linux-6.6': { mask: 0x30, intAck: true, enforcement: true, rejectNoLapic: true, pvMask: KVM_ASYNC_PF_ENABLED | KVM_ASYNC_PF_DELIVERY_AS_INT },
  // 44dd0f5732b4 (v6.12): userspace reads a hidden PV MSR as 0 (and may write 0 to it).
  current: { mask: 0x30, intAck: true, enforcement: true, rejectNoLapic: true, pvMask: KVM_ASYNC_PF_ENABLED | KVM_ASYNC_PF_DELIVERY_AS_INT, userspaceZero: true },
};

interface Env {
  readonly features?: readonly KvmFeatureName[];
  readonly enforce?: boolean;
  readonly lapic?: 'in-kernel' | 'userspace';
}

function world(profile: HostProfileName, env: Env = {}): World {
  return makeWorld({
    profile,
    start: false,
    vm: {
      kvmFeatures: kvmFeatureEax(...(env.features ?? ['ASYNC_PF', 'ASYNC_PF_VMEXIT', 'ASYNC_PF_INT'])),
      enforcePvCpuid: env.enforce ?? false,
      lapic: env.lapic ?? 'in-kernel',
    },
  });
}

const en = (bits: bigint, gpa = AREA): bigint => BigInt(gpa) | bits;

describe.each(HOST_PROFILES.map((p) => [p] as const))('MSR matrix: %s', (profile) => {
  const era = ERA[profile];

  describe('MSR_KVM_ASYNC_PF_EN reserved bits', () => {
    // bits 2..5 individually, plus ENABLED so a write that passes is a real enable
    test.each([2, 3, 4, 5])('bit %i', (bit) => {
      const w = world(profile);
      const ok = w.kvm.setMsr(0, MSR_KVM_ASYNC_PF_EN, en(KVM_ASYNC_PF_ENABLED | (1n << BigInt(bit))));
      expect(ok).toBe(((era.mask >> bit) & 1) === 0);
      // A refused write changes nothing (the check precedes the store).
      if (!ok) expect(w.kvm.getMsr(0, MSR_KVM_ASYNC_PF_EN)).toBe(0n);
    });

    test('address bits 63:6 are not reserved', () => {
      const w = world(profile);
      expect(w.kvm.setMsr(0, MSR_KVM_ASYNC_PF_EN, en(KVM_ASYNC_PF_ENABLED, AREA + 0x40))).toBe(true);
      expect(w.kvm.getMsr(0, MSR_KVM_ASYNC_PF_EN)).toBe(en(KVM_ASYNC_PF_ENABLED, AREA + 0x40));
    });
  });

  describe('CPUID gating', () => {
    test.each([false, true])('EN without KVM_FEATURE_ASYNC_PF, enforcement %s', (enforce) => {
      const w = world(profile, { enforce, features: ['ASYNC_PF_INT', 'ASYNC_PF_VMEXIT'] });
      const refused = enforce && era.enforcement;
      expect(w.kvm.setMsr(0, MSR_KVM_ASYNC_PF_EN, en(KVM_ASYNC_PF_ENABLED))).toBe(!refused);
      // A refused userspace read fails, or reads 0 on hosts with 44dd0f5732b4.
      expect(w.kvm.getMsr(0, MSR_KVM_ASYNC_PF_EN)).toBe(refused ? (era.userspaceZero ? 0n : undefined) : en(KVM_ASYNC_PF_ENABLED));
    });

    test.each([false, true])('DELIVERY_AS_PF_VMEXIT without KVM_FEATURE_ASYNC_PF_VMEXIT, enforcement %s', (enforce) => {
      const w = world(profile, { enforce, features: ['ASYNC_PF', 'ASYNC_PF_INT'] });
      const reserved = ((era.mask >> 2) & 1) === 1;
      const refused = reserved || (enforce && era.enforcement);
      expect(w.kvm.setMsr(0, MSR_KVM_ASYNC_PF_EN, en(KVM_ASYNC_PF_ENABLED | KVM_ASYNC_PF_DELIVERY_AS_PF_VMEXIT))).toBe(!refused);
    });

    test.each([false, true])('DELIVERY_AS_INT and INT/ACK without KVM_FEATURE_ASYNC_PF_INT, enforcement %s', (enforce) => {
      const w = world(profile, { enforce, features: ['ASYNC_PF', 'ASYNC_PF_VMEXIT'] });
      const gated = enforce && era.enforcement;
      expect(w.kvm.setMsr(0, MSR_KVM_ASYNC_PF_EN, en(KVM_ASYNC_PF_ENABLED | KVM_ASYNC_PF_DELIVERY_AS_INT))).toBe(era.intAck && !gated);
      expect(w.kvm.setMsr(0, MSR_KVM_ASYNC_PF_INT, 0xf3n)).toBe(era.intAck && !gated);
      const hidden = era.intAck && gated && era.userspaceZero === true ? 0n : undefined;
      expect(w.kvm.getMsr(0, MSR_KVM_ASYNC_PF_INT)).toBe(era.intAck && !gated ? 0xf3n : hidden);
      expect(w.kvm.setMsr(0, MSR_KVM_ASYNC_PF_ACK, 1n)).toBe(era.intAck && !gated);
      expect(w.kvm.getMsr(0, MSR_KVM_ASYNC_PF_ACK)).toBe(era.intAck && !gated ? 0n : hidden);
    });
  });

  describe('MSR_KVM_ASYNC_PF_INT', () => {
    test.each([0, 1, 31, 32, 0xf3, 0xff])('vector %i is accepted unvalidated', (vec) => {
      const w = world(profile);
      expect(w.kvm.setMsr(0, MSR_KVM_ASYNC_PF_INT, BigInt(vec))).toBe(era.intAck);
      if (era.intAck) {
        expect(w.v.apf.vec).toBe(vec);
        expect(w.kvm.getMsr(0, MSR_KVM_ASYNC_PF_INT)).toBe(BigInt(vec));
      }
    });

    test.each([8, 31, 63])('reserved bit %i', (bit) => {
      const w = world(profile);
      expect(w.kvm.setMsr(0, MSR_KVM_ASYNC_PF_INT, 0xf3n | (1n << BigInt(bit)))).toBe(false);
      expect(w.v.apf.vec).toBe(0);
    });
  });

  describe('MSR_KVM_ASYNC_PF_ACK', () => {
    test('reads 0; bit 0 clears pageready_pending; other bits ignored', () => {
      const w = world(profile);
      w.v.apf.pageReadyPending = true;
      expect(w.kvm.setMsr(0, MSR_KVM_ASYNC_PF_ACK, 0xfen)).toBe(era.intAck);
      expect(w.v.apf.pageReadyPending).toBe(true);
      expect(w.kvm.setMsr(0, MSR_KVM_ASYNC_PF_ACK, 0xffff_ffff_ffff_ffffn)).toBe(era.intAck);
      expect(w.v.apf.pageReadyPending).toBe(!era.intAck);
      expect(w.kvm.getMsr(0, MSR_KVM_ASYNC_PF_ACK)).toBe(era.intAck ? 0n : undefined);
    });
  });

  describe('userspace LAPIC', () => {
    test('EN/INT refused (Sept 2020) or accepted (older); EN=0 always succeeds', () => {
      const w = world(profile, { lapic: 'userspace' });
      const bits = era.intAck ? KVM_ASYNC_PF_ENABLED | KVM_ASYNC_PF_DELIVERY_AS_INT : KVM_ASYNC_PF_ENABLED;
      expect(w.kvm.setMsr(0, MSR_KVM_ASYNC_PF_EN, en(bits))).toBe(!era.rejectNoLapic);
      expect(w.kvm.getMsr(0, MSR_KVM_ASYNC_PF_EN)).toBe(era.rejectNoLapic ? 0n : en(bits));
      expect(w.kvm.setMsr(0, MSR_KVM_ASYNC_PF_EN, 0n)).toBe(true);
      if (era.intAck) expect(w.kvm.setMsr(0, MSR_KVM_ASYNC_PF_INT, 0xf3n)).toBe(!era.rejectNoLapic);
      // x2APIC registers do not exist without an in-kernel LAPIC.
      expect(w.kvm.setMsr(0, X86_MSR.X2APIC_SPIV, SPIV_ON)).toBe(false);
    });
  });

  describe('the value is stored before the address is validated', () => {
    test('EN with a GPA outside guest RAM: #GP, but RDMSR returns the new value', () => {
      const w = world(profile);
      const bits = era.pvMask;
      const bad = en(bits, MEM_PAGES * PAGE_SIZE);
      expect(w.kvm.setMsr(0, MSR_KVM_ASYNC_PF_EN, bad)).toBe(false);
      expect(w.kvm.getMsr(0, MSR_KVM_ASYNC_PF_EN)).toBe(bad);
      expect(w.v.apf.area).toBeNull();
      expect(w.ev('kvm_async_pf_wakeup_all')).toHaveLength(0);
      // The last 64-byte slot before the end still maps (4 or 8 bytes fit).
      expect(w.kvm.setMsr(0, MSR_KVM_ASYNC_PF_EN, en(bits, MEM_PAGES * PAGE_SIZE - 64))).toBe(true);
    });

    test('a failed mapping makes every later struct write fail (halt, never inject)', () => {
      const w = world(profile, {});
      w.kvm.setMsr(0, X86_MSR.X2APIC_SPIV, SPIV_ON);
      expect(w.kvm.setMsr(0, MSR_KVM_ASYNC_PF_EN, en(era.pvMask | 2n, MEM_PAGES * PAGE_SIZE))).toBe(false);
      w.v.cpu.cpl = 3;
      archSetupAsyncPf(w.v, dataGpa(0), DATA_GFN, 0);
      expect(w.v.pendingException).toBeNull();
      expect(w.ev('kvm_write_guest', { ok: true })).toHaveLength(0);
    });
  });

  describe('wake-all on every successful enable', () => {
    test('queued unless the done list is non-empty', () => {
      const w = world(profile);
      const bits = era.pvMask;
      expect(w.kvm.setMsr(0, MSR_KVM_ASYNC_PF_EN, en(bits))).toBe(true);
      expect(w.ev('kvm_async_pf_wakeup_all', { queued: true })).toHaveLength(1);
      expect(w.v.asyncPf.done).toHaveLength(1);
      expect(w.v.asyncPf.queued).toBe(1);
      // Re-enable while the first wake-all is still on `done`: nothing new is queued.
      expect(w.kvm.setMsr(0, MSR_KVM_ASYNC_PF_EN, en(bits))).toBe(true);
      expect(w.ev('kvm_async_pf_wakeup_all', { queued: false, why: 'done_not_empty' })).toHaveLength(1);
      expect(w.v.asyncPf.done).toHaveLength(1);
      // Disable (clears everything), enable again: queued again.
      expect(w.kvm.setMsr(0, MSR_KVM_ASYNC_PF_EN, 0n)).toBe(true);
      expect(w.v.asyncPf.done).toHaveLength(0);
      expect(w.kvm.setMsr(0, MSR_KVM_ASYNC_PF_EN, en(bits))).toBe(true);
      expect(w.ev('kvm_async_pf_wakeup_all', { queued: true })).toHaveLength(2);
    });

    test('a failed wake-all allocation is ignored by the EN write', () => {
      const w = world(profile);
      w.kvm.failNextWakeupAllAlloc();
      expect(w.kvm.setMsr(0, MSR_KVM_ASYNC_PF_EN, en(era.pvMask))).toBe(true);
      expect(w.ev('kvm_async_pf_wakeup_all', { queued: false, why: 'alloc_fail' })).toHaveLength(1);
      expect(w.v.asyncPf.queued).toBe(0);
    });
  });
});

describe('EN semantics on v5.8+ hosts', () => {
  test.each(['linux-5.8', 'linux-5.13', 'linux-6.6', 'current'] as const)('%s: ENABLED without DELIVERY_AS_INT is the disable path', (profile) => {
    const w = world(profile);
    expect(w.kvm.setMsr(0, MSR_KVM_ASYNC_PF_EN, en(KVM_ASYNC_PF_ENABLED))).toBe(true);
    expect(w.ev('kvm_async_pf_disable')).toHaveLength(1);
    expect(w.ev('kvm_async_pf_clear_queue', { reason: 'disable' })).toHaveLength(1);
    expect(w.ev('kvm_async_pf_wakeup_all')).toHaveLength(0);
    expect(w.kvm.getMsr(0, MSR_KVM_ASYNC_PF_EN)).toBe(en(KVM_ASYNC_PF_ENABLED));
  });

  test.each(['linux-3.0', 'linux-4.19'] as const)('%s: ENABLED alone enables', (profile) => {
    const w = world(profile);
    expect(w.kvm.setMsr(0, MSR_KVM_ASYNC_PF_EN, en(KVM_ASYNC_PF_ENABLED | 2n))).toBe(true);
    expect(w.ev('kvm_async_pf_enable', { send_always: true })).toHaveLength(1);
    expect(w.ev('kvm_async_pf_wakeup_all', { queued: true })).toHaveLength(1);
  });

  test('the cached mapping is 8 bytes from v5.8 and 4 bytes before', () => {
    expect((() => {
      const w = world('linux-4.19');
      w.kvm.setMsr(0, MSR_KVM_ASYNC_PF_EN, en(KVM_ASYNC_PF_ENABLED));
      return w.v.apf.area;
    })()).toEqual({ gpa: AREA, len: 4 });
    const w = world('current');
    w.kvm.setMsr(0, MSR_KVM_ASYNC_PF_EN, enModern());
    expect(w.v.apf.area).toEqual({ gpa: AREA, len: 8 });
  });
});

describe('ACK: synchronous re-scan inside the WRMSR', () => {
  test('each ACK dequeues the next completion once the guest cleared the token slot', () => {
    const w = makeWorld({ start: false, memory: { pages: [{ gfn: DATA_GFN, count: 2, backing: 'swapped' }] } });
    const v = w.v;
    w.kvm.setMsr(0, X86_MSR.X2APIC_SPIV, SPIV_ON);
    w.kvm.setMsr(0, MSR_KVM_ASYNC_PF_INT, BigInt(HYPERVISOR_CALLBACK_VECTOR));
    w.kvm.setMsr(0, MSR_KVM_ASYNC_PF_EN, enModern());
    // The wake-all goes out first: slot = ~0, pageready_pending.
    v.asyncPf.checkCompletion();
    expect(w.mem.readU32(AREA + 4)).toBe(0xffffffff);
    expect(v.apf.pageReadyPending).toBe(true);
    // Two faults (user mode, IF=1), each delivered as not-present.
    for (const i of [0, 1]) {
      expect(archSetupAsyncPf(v, dataGpa(i), DATA_GFN + i, 0)).toBe('queued');
      v.pendingException = null; // as if delivered
    }
    w.sim.run();
    expect(v.asyncPf.done).toHaveLength(2);
    // Slot still busy: nothing dequeued.
    expect(v.asyncPf.checkCompletion()).toBe(0);
    const tokens = v.asyncPf.done.map((x) => x.arch.token);
    // The guest consumes the wake-all and ACKs: the first completion goes out inside the ACK.
    w.mem.writeU32(AREA + 4, 0);
    const before = w.ev('kvm_async_pf_ready').length;
    expect(w.kvm.setMsr(0, MSR_KVM_ASYNC_PF_ACK, 1n)).toBe(true);
    expect(w.ev('kvm_async_pf_ready').slice(before).map((r) => r.token)).toEqual([tokens[0]]);
    expect(w.mem.readU32(AREA + 4)).toBe(tokens[0]);
    expect(v.apf.pageReadyPending).toBe(true);
    // ACK without clearing the slot: re-scan finds it busy.
    expect(w.kvm.setMsr(0, MSR_KVM_ASYNC_PF_ACK, 1n)).toBe(true);
    expect(v.asyncPf.done).toHaveLength(1);
    w.mem.writeU32(AREA + 4, 0);
    expect(w.kvm.setMsr(0, MSR_KVM_ASYNC_PF_ACK, 1n)).toBe(true);
    expect(w.mem.readU32(AREA + 4)).toBe(tokens[1]);
    expect(v.asyncPf.done).toHaveLength(0);
    expect(v.asyncPf.queued).toBe(0);
  });
});

describe('guest-initiated accesses', () => {
  test('a refused WRMSR/RDMSR injects #GP(0) at the instruction; an accepted one retires', () => {
    const w = makeWorld({
      cpl: 0,
      ifFlag: false,
      guest: {
        idle: 'hlt',
        fixup: [GP_VECTOR],
        main: function* (g) {
          yield wrmsr(MSR_KVM_ASYNC_PF_EN, en(KVM_ASYNC_PF_ENABLED | 0x10n));
          const r = yield rdmsr(MSR_KVM_ASYNC_PF_EN);
          g.note('rd', { r });
          yield wrmsr(MSR_KVM_ASYNC_PF_INT, 0x1f3n);
          yield wrmsr(MSR_KVM_ASYNC_PF_INT, 0xf3n);
          const r2 = yield rdmsr(MSR_KVM_ASYNC_PF_INT);
          g.note('rd', { r: r2 });
          yield rdmsr(0x12345678);
        },
      },
    });
    w.run(100_000);
    const gps = w.guest.log.filter((e) => e.kind === 'vector' && e.vector === GP_VECTOR);
    expect(gps).toHaveLength(3);
    for (const e of gps) if (e.kind === 'vector') expect(e.frame.event).toEqual({ kind: 'exception', vector: GP_VECTOR, errorCode: 0 });
    expect(w.guest.notes('rd').map((n) => n.r)).toEqual([0n, 0xf3n]);
    expect(w.ev('kvm_msr', { exception: true }).map((r) => r.ecx)).toEqual([MSR_KVM_ASYNC_PF_EN, MSR_KVM_ASYNC_PF_INT, 0x12345678]);
    expect(w.ev('kvm_inj_exception', { exception: GP_VECTOR, error_code: 0 })).toHaveLength(3);
  });

  test('#GP for WRMSR at CPL 3 comes from the CPU, not the host', () => {
    const w = makeWorld({ cpl: 3, guest: { fixup: [GP_VECTOR], main: function* () { yield wrmsr(MSR_KVM_ASYNC_PF_EN, enModern()); } } });
    w.run(10_000);
    expect(w.guest.vectors()).toContain(GP_VECTOR);
    expect(w.ev('kvm_msr')).toHaveLength(0);
  });
});
