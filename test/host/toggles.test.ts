/**
 * One scenario per toggle of HOST_TOGGLES, run with the toggle on and off on an otherwise
 * unchanged profile: each test fails if the toggle stops changing behaviour the way spec §7 says.
 */
import { HOST_TOGGLES, type HostToggle } from '../../host/config';
import { postSetCr0 } from '../../host/x86/run';
import { faultinPfn } from '../../host/mmu';
import { KVM_APF_WAKE_ALL_TOKEN } from '../../shared-abi/apf';
import { PAGE_SIZE, type Gva } from '../../shared-abi/addr';
import { CR0_PE, CR0_PG } from '../../shared-abi/arch';
import { encodeAsyncPfEn, MSR_KVM_ASYNC_PF_ACK, MSR_KVM_ASYNC_PF_EN, MSR_KVM_ASYNC_PF_INT, X86_MSR } from '../../shared-abi/msr';
import { HYPERVISOR_CALLBACK_VECTOR, PF_VECTOR, X86_EXCEPTION } from '../../shared-abi/vectors';
import type { Handler } from '../support/scripted-guest';
import { AREA, DATA_GFN, dataGpa, enableModern, makeWorld, pageReadyHandler, SPIV_ON, type World } from './world';

const swapped = (ns = 100_000, count = 8) => ({ pages: [{ gfn: DATA_GFN, count, backing: 'swapped' as const }], swapLatency: { kind: 'fixed' as const, ns } });
const fault = (w: World, i = 0) => faultinPfn(w.v, dataGpa(i), DATA_GFN + i, 0, false);
const lastNotPresent = (w: World) => w.ev('kvm_async_pf_not_present').at(-1)!;
type Opts = Parameters<typeof makeWorld>[0];

function unit(toggle: HostToggle, on: boolean, o: Opts = {}): World {
  const w = makeWorld({ start: false, memory: swapped(), ...o, toggles: { ...o?.toggles, [toggle]: on } });
  enableModern(w);
  return w;
}

/**
 * Legacy-guest #PF handler (≤v5.7 ABI): reason 2 = page ready (noted); reason 1 = not present
 * (noted, then the faulting instruction is skipped as if another task ran); 0 = ordinary #PF.
 */
const legacyPf: Handler = function* (_frame, g) {
  const reason = yield { op: 'load', gva: AREA as Gva, size: 4 };
  yield { op: 'store', gva: AREA as Gva, size: 4, value: 0 };
  const cr2 = yield { op: 'read_cr', cr: 2 };
  if (reason === 2) g.note('ready', { token: cr2 });
  else if (reason === 1) {
    g.note('not_present', { token: cr2 });
    g.skipFaultingInsn();
  }
};

test('every toggle has a scenario here', () => {
  const covered: HostToggle[] = [
    'pending_exception_gate', 'no_df_cancellation', 'can_deliver_cleanup', 'interrupt_page_ready', 'page_ready_needs_not_present',
    'reject_without_lapic', 'lapic_enabled_check', 'nonzero_token', 'paging_check', 'nested_payload',
    'protected_state_cpl0', 'keep_queue_on_cr0_pg', 'honour_send_always', 'cpl0_needs_send_always',
    'gfn_cache_refresh', 'gfn_cache_unpinned', 'userspace_zero_pv_msr',
  ];
  expect([...covered].sort()).toEqual(Object.keys(HOST_TOGGLES).sort());
});

describe('pending_exception_gate (2a266f23550b)', () => {
  test.each([true, false])('%s', (on) => {
    const w = unit('pending_exception_gate', on);
    w.v.queueException({ vector: X86_EXCEPTION.GP, errorCode: 0 });
    expect(fault(w)).toBe(on ? 'cannot_do' : 'async');
  });
});

describe('no_df_cancellation (84b09f33a5de reverting 9a6e7c39810e) and the #DF the cancellation claimed to fix', () => {
  /**
   * Page B completes while the guest computes (≤v5.7 workers do not kick), then the guest
   * touches page A: not-present(A) is queued, and the end-of-iteration completion check finds B.
   */
  const scenario = (profile: 'linux-3.0' | 'linux-4.19', toggles: Partial<Record<HostToggle, boolean>>): World => {
    const w = makeWorld({
      profile,
      toggles,
      start: false,
      memory: swapped(50_000, 2),
      guest: {
        main: function* (g) {
          yield { op: 'load', gva: dataGpa(1) as Gva, size: 4 }; // B: not present, "another task runs"
          yield { op: 'compute', ns: 200_000 };
          yield { op: 'load', gva: dataGpa(0) as Gva, size: 4 }; // A
          g.note('A done');
          // Exits, so that ≤v5.7 completion checks (end of each run-loop iteration) keep running.
          for (let i = 0; i < 5; i++) yield { op: 'cpuid', leaf: 0 };
          yield { op: 'compute', ns: 100_000 };
          yield { op: 'cpuid', leaf: 0 };
        },
        handlers: { [PF_VECTOR]: legacyPf },
      },
    });
    w.kvm.setMsr(0, X86_MSR.X2APIC_SPIV, SPIV_ON);
    w.kvm.setMsr(0, MSR_KVM_ASYNC_PF_EN, BigInt(AREA) | 1n);
    w.kvm.start();
    w.run(2_000_000);
    return w;
  };
  const tokenOf = (w: World, gfn: number) => w.ev('kvm_async_pf_not_present').find((r) => r.gva === dataGpa(gfn - DATA_GFN))!.token;

  test('linux-3.0 (no pending-exception gate): page-ready #PF on top of not-present #PF → #DF', () => {
    const w = scenario('linux-3.0', {});
    expect(w.ev('kvm_multiple_exception', { prev: PF_VECTOR, vector: PF_VECTOR, result: 'double_fault' })).toHaveLength(1);
    expect(w.guest.vectors()).toContain(X86_EXCEPTION.DF);
  });

  test('linux-4.19: the gate makes the cancellation unreachable; B waits, nothing is lost', () => {
    const w = scenario('linux-4.19', {});
    expect(w.ev('kvm_async_pf_df_cancel')).toHaveLength(0);
    expect(w.guest.vectors()).not.toContain(X86_EXCEPTION.DF);
    const a = tokenOf(w, DATA_GFN);
    const b = tokenOf(w, DATA_GFN + 1);
    expect(w.guest.notes('ready').map((n) => n.token)).toEqual(expect.arrayContaining([b, a]));
  });

  test.each([true, false])('linux-4.19 without the gate, the cancellation present: %s', (on) => {
    const w = scenario('linux-4.19', { pending_exception_gate: false, no_df_cancellation: !on });
    const a = tokenOf(w, DATA_GFN);
    const b = tokenOf(w, DATA_GFN + 1);
    if (on) {
      // Regression of the revert: A's not-present and B's page-ready are both dropped (no token check).
      expect(w.ev('kvm_async_pf_df_cancel')).toEqual([expect.objectContaining({ token: b, pending_token: a })]);
      expect(w.guest.notes('ready').map((n) => n.token)).not.toContain(b);
      expect(w.guest.notes('not_present').map((n) => n.token)).not.toContain(a);
      expect(w.guest.vectors()).not.toContain(X86_EXCEPTION.DF);
    } else {
      expect(w.ev('kvm_async_pf_df_cancel')).toHaveLength(0);
      expect(w.guest.vectors()).toContain(X86_EXCEPTION.DF);
    }
  });
});

describe('can_deliver_cleanup (June 2019)', () => {
  test.each([true, false])('HLT pass-through, undeliverable fault: sync when on, halt when off (%s)', (on) => {
    const w = unit('can_deliver_cleanup', on, { vm: { hltPassthrough: true }, cpl: 0 });
    const r = fault(w);
    if (on) expect(r).toBe('cannot_do');
    else {
      expect(r).toBe('async');
      expect(lastNotPresent(w)).toMatchObject({ injected: false, halt: true });
    }
  });

  test.each([true, false])('guest mode without DELIVERY_AS_PF_VMEXIT: halt when on, sync when off (%s)', (on) => {
    const w = unit('can_deliver_cleanup', on);
    w.v.cpu.guestMode = true;
    expect(fault(w)).toBe(on ? 'async' : 'cannot_do');
    if (on) expect(lastNotPresent(w)).toMatchObject({ halt: true });
  });

  test.each([true, false])('a failed flags write: halt when on, neither inject nor halt when off (%s)', (on) => {
    const w = unit('can_deliver_cleanup', on, { memory: { pages: [{ gfn: DATA_GFN, backing: 'swapped' }, { gfn: 1, backing: 'failing' }] } });
    fault(w);
    expect(w.v.pendingException).toBeNull();
    expect(w.v.requests.has('apf_halt')).toBe(on);
  });
});

describe('interrupt_page_ready (v5.8)', () => {
  test.each([true, false])('%s', (on) => {
    const w = makeWorld({ start: false, toggles: { interrupt_page_ready: on } });
    w.kvm.setMsr(0, X86_MSR.X2APIC_SPIV, SPIV_ON);
    expect(w.kvm.setMsr(0, MSR_KVM_ASYNC_PF_INT, 0xf3n)).toBe(on);
    expect(w.kvm.setMsr(0, MSR_KVM_ASYNC_PF_EN, BigInt(AREA) | (on ? 9n : 1n))).toBe(true);
    w.v.asyncPf.checkCompletion();
    if (on) {
      expect(w.mem.readU32(AREA + 4)).toBe(KVM_APF_WAKE_ALL_TOKEN);
      expect(w.v.lapic!.irr.get(0xf3)).toBe(true);
      expect(w.v.pendingException).toBeNull();
    } else {
      expect(w.mem.readU32(AREA)).toBe(2);
      expect(w.v.pendingException).toMatchObject({ vector: PF_VECTOR, cr2: KVM_APF_WAKE_ALL_TOKEN });
    }
  });
});

describe('page_ready_needs_not_present (June 2020)', () => {
  test.each([true, false])('%s', (on) => {
    const w = unit('page_ready_needs_not_present', on, { cpl: 0 });
    w.v.asyncPf.checkCompletion();
    w.mem.writeU32(AREA + 4, 0);
    fault(w); // halted: never injected
    w.sim.run();
    w.v.asyncPf.checkCompletion();
    expect(w.ev('kvm_async_pf_ready').at(-1)).toMatchObject({ token: 0x1000, notified: !on });
    expect(w.mem.readU32(AREA + 4)).toBe(on ? 0 : 0x1000);
  });
});

describe('reject_without_lapic (Sept 2020)', () => {
  test.each([true, false])('%s', (on) => {
    const w = makeWorld({ start: false, toggles: { reject_without_lapic: on, lapic_enabled_check: false }, vm: { lapic: 'userspace' } });
    const ok = w.kvm.setMsr(0, MSR_KVM_ASYNC_PF_EN, BigInt(AREA) | 9n);
    expect(ok).toBe(!on);
    w.v.asyncPf.checkCompletion();
    // Without the fix, delivering the wake-all dereferences the missing LAPIC.
    expect(w.ev('kvm_host_oops')).toHaveLength(on ? 0 : 1);
  });
});

describe('lapic_enabled_check (2f15d027c05f)', () => {
  test.each([true, false])('%s', (on) => {
    const w = unit('lapic_enabled_check', on);
    w.v.asyncPf.checkCompletion();
    w.mem.writeU32(AREA + 4, 0);
    w.v.lapic!.irr.clear(0xf3);
    fault(w, 0);
    w.v.pendingException = null;
    fault(w, 1);
    w.v.pendingException = null;
    w.kvm.setMsr(0, X86_MSR.X2APIC_SPIV, 0xffn); // the guest disables its LAPIC (kexec, shutdown)
    w.sim.run();
    w.v.asyncPf.checkCompletion();
    if (on) {
      expect(w.v.asyncPf.done).toHaveLength(2);
      expect(w.ev('kvm_apic_irq_dropped')).toHaveLength(0);
      w.kvm.setMsr(0, X86_MSR.X2APIC_SPIV, SPIV_ON);
      w.v.asyncPf.checkCompletion();
      expect(w.v.lapic!.irr.get(0xf3)).toBe(true);
    } else {
      // The token is written and the interrupt lost: the slot stays busy, the second completion is stuck.
      expect(w.ev('kvm_apic_irq_dropped', { vec: 0xf3, why: 'sw_disabled' })).toHaveLength(1);
      expect(w.mem.readU32(AREA + 4)).toBe(0x1000);
      expect(w.v.asyncPf.done).toHaveLength(1);
      w.v.requests.clear();
      w.kvm.setMsr(0, X86_MSR.X2APIC_SPIV, SPIV_ON);
      expect(w.v.requests.has('apf_ready')).toBe(false);
      expect(w.v.lapic!.irr.get(0xf3)).toBe(false);
    }
  });
});

describe('nonzero_token (Feb 2022)', () => {
  test.each([true, false])('%s', (on) => {
    const w = unit('nonzero_token', on);
    w.v.apf.id = 0;
    fault(w);
    expect(lastNotPresent(w).token).toBe(on ? 0x1000 : 0);
  });

  test('token 0 with the fix off: the host sees the unconsumed slot as free and overwrites it', () => {
    const w = unit('nonzero_token', false, { memory: swapped(100, 2) });
    w.v.asyncPf.checkCompletion();
    w.mem.writeU32(AREA + 4, 0);
    w.v.apf.pageReadyPending = false;
    w.v.apf.id = 0;
    fault(w, 0);
    w.v.pendingException = null;
    fault(w, 1);
    w.sim.run();
    w.v.asyncPf.checkCompletion(); // token 0 written, "free" at once: token 0x1000 overwrites it
    expect(w.ev('kvm_write_guest', { field: 'token' }).slice(1).map((r) => r.value)).toEqual([0, 0x1000]);
  });
});

describe('paging_check (Feb 2022)', () => {
  test.each([true, false])('%s', (on) => {
    const w = unit('paging_check', on, { paging: false });
    fault(w);
    expect(lastNotPresent(w)).toMatchObject({ injected: !on, halt: on });
  });
});

describe('nested_payload (~v6.1)', () => {
  test.each([true, false])('%s', (on) => {
    const w = makeWorld({
      start: false,
      memory: swapped(),
      toggles: { nested_payload: on },
      guest: { onVmexit: (exit, g) => g.note('vmexit', { ...exit }) },
    });
    enableModern(w, 0, { vmexit: true });
    w.v.asyncPf.checkCompletion();
    w.v.lapic!.irr.clear(0xf3);
    w.v.cpu.guestMode = true;
    w.v.apf.id = 9;
    fault(w);
    expect(w.v.pendingException).toMatchObject({ vector: PF_VECTOR, errorCode: 0, nested: on ? 'payload' : 'nested_apf_token' });
    expect(w.v.apf.nestedApfToken).toBe(on ? 0 : 0x9000);
    w.kvm.start();
    w.run(10);
    expect(w.ev('kvm_nested_apf_vmexit')).toEqual([expect.objectContaining({ token: 0x9000, form: on ? 'payload' : 'nested_apf_token' })]);
    expect(w.guest.notes('vmexit')).toEqual([{ reason: 'exception', vector: PF_VECTOR, errorCode: 0, exitQualification: 0x9000 }]);
    expect(w.v.cpu.guestMode).toBe(false);
    expect(w.guest.vectors()).not.toContain(PF_VECTOR);
  });
});

describe('protected_state_cpl0 (b9595d1ddef8)', () => {
  test.each([true, false])('%s', (on) => {
    const w = unit('protected_state_cpl0', on, { vm: { protectedState: true }, cpl: 0 });
    fault(w);
    expect(lastNotPresent(w)).toMatchObject({ injected: !on, halt: on });
  });
});

describe('keep_queue_on_cr0_pg (ab4e41eb9fab)', () => {
  test.each([true, false])('%s', (on) => {
    const w = unit('keep_queue_on_cr0_pg', on);
    fault(w);
    w.v.requests.clear();
    postSetCr0(w.v, CR0_PE | CR0_PG, CR0_PE);
    expect(w.v.asyncPf.queued).toBe(on ? 2 : 0);
    expect(w.v.apf.hash.size).toBe(on ? 1 : 0);
    postSetCr0(w.v, CR0_PE, CR0_PE | CR0_PG);
    expect(w.v.requests.has('apf_ready')).toBe(on);
    // A write that leaves PG alone does nothing.
    w.v.requests.clear();
    postSetCr0(w.v, CR0_PE | CR0_PG, CR0_PE | CR0_PG | 0x10);
    expect(w.ev('kvm_post_set_cr0')).toHaveLength(2);
  });
});

describe('a completion right after an ACK (68c35f89d016 changes nothing on x86)', () => {
  /**
   * A page-ready is un-ACKed while the guest computes; the ACK comes at t=100 and a completion
   * lands 400 ns later, while the vCPU is still leaving the ACK exit. Hosts before and after the
   * barrier fix kick alike: raising the request is already a full barrier on x86.
   */
  test.each(['linux-6.6', 'current'] as const)('%s', (profile) => {
    const w = makeWorld({
      profile,
      start: false,
      memory: swapped(500),
      guest: {
        main: function* () {
          yield { op: 'compute', ns: 2_000_000 };
          yield { op: 'cpuid', leaf: 0 };
          yield { op: 'cpuid', leaf: 0 };
        },
        handlers: { [HYPERVISOR_CALLBACK_VECTOR]: pageReadyHandler() },
      },
    });
    w.kvm.failNextWakeupAllAlloc();
    enableModern(w);
    w.v.apf.pageReadyPending = true;
    fault(w);
    w.v.pendingException = null;
    w.sim.scheduleAt(100, 10, () => void w.kvm.setMsr(0, MSR_KVM_ASYNC_PF_ACK, 1n), 'test.ack');
    w.kvm.start();
    w.run(3_000_000);
    const ready = w.ev('kvm_async_pf_ready', { notified: true });
    expect(ready).toHaveLength(1);
    // The completion kicks the vCPU out of the compute at once.
    expect(ready[0]!.t).toBe(500);
    expect(w.v.stats.preemptions).toBe(1);
  });
});

describe('honour_send_always', () => {
  test.each([true, false])('%s', (on) => {
    const w = makeWorld({ start: false, memory: swapped(), cpl: 0, toggles: { honour_send_always: on } });
    enableModern(w, 0, { sendAlways: true });
    fault(w);
    expect(lastNotPresent(w)).toMatchObject({ injected: on, halt: !on });
  });
});

describe('cpl0_needs_send_always (off: deliberately buggy)', () => {
  test.each([true, false])('injects at CPL 0 regardless: %s', (on) => {
    const w = unit('cpl0_needs_send_always', !on, { cpl: 0 });
    fault(w);
    expect(lastNotPresent(w)).toMatchObject({ injected: on, halt: !on });
  });
});

/** The APF area's page (gfn 1 in the fixture): where the guest reads its token slot now. */
const guestToken = (w: World): number => w.kvm.hostMem.phys.readU32(w.kvm.hostMem.translate(1, false) * PAGE_SIZE + (AREA % PAGE_SIZE) + 4);

describe('gfn_cache_refresh (the APF area cache: docs/caches.md)', () => {
  test.each([true, false])('%s', (on) => {
    const w = unit('gfn_cache_refresh', on);
    w.v.asyncPf.checkCompletion(); // the enable's wake-all
    w.mem.writeU32(AREA + 4, 0);
    fault(w);
    const token = lastNotPresent(w).token;
    // Between not-present and page-ready the area's page moves to another host frame.
    expect(w.kvm.migratePages([1])).toEqual(['migrated']);
    const frame = w.kvm.hostMem.translate(1, false);
    expect(frame).not.toBe(1);
    w.sim.run();
    w.v.asyncPf.checkCompletion();
    // Refreshed: the token lands where the guest reads it. Never invalidated: in the old frame, lost.
    expect(guestToken(w)).toBe(on ? token : 0);
    expect(w.ev('kvm_write_guest', { field: 'token' }).at(-1)).toMatchObject({ ok: true, hfn: on ? frame : 1 });
    expect(w.ev('kvm_gfn_cache_refresh')).toHaveLength(on ? 1 : 0);
  });
});

describe('gfn_cache_unpinned (off: the cache holds its page, no migration while cached)', () => {
  test.each([true, false])('pinned: %s', (on) => {
    const w = unit('gfn_cache_unpinned', !on);
    expect(w.kvm.migratePages([1])).toEqual([on ? 'pinned' : 'migrated']);
    expect(w.kvm.hostMem.translate(1, false) === 1).toBe(on);
    expect(w.ev('host_page_migrate').at(-1)).toMatchObject({ ok: !on, why: on ? 'pinned' : 'requested' });
    // The area moves to another page: the cache lets go of gfn 1, and the deferred migration happens.
    expect(w.kvm.setMsr(0, MSR_KVM_ASYNC_PF_EN, encodeAsyncPfEn({ enabled: true, deliveryAsInt: true, gpa: 0x3000 }))).toBe(true);
    expect(w.kvm.hostMem.translate(1, false)).not.toBe(1);
    expect(w.ev('host_page_migrate').at(-1)).toMatchObject({ ok: true, why: on ? 'unpinned' : 'requested' });
  });
});

describe('userspace_zero_pv_msr (44dd0f5732b4): userspace reads, and writes 0 to, a PV MSR the guest CPUID hides', () => {
  // PV CPUID enforced, ASYNC_PF exposed, ASYNC_PF_INT (bit 14) hidden.
  const hidden = (on: boolean): World =>
    makeWorld({ start: false, toggles: { userspace_zero_pv_msr: on }, vm: { enforcePvCpuid: true, kvmFeatures: 1 << 4 } });
  test.each([true, false])('%s', (on) => {
    const w = hidden(on);
    expect(w.kvm.getMsrTraced(0, MSR_KVM_ASYNC_PF_INT)).toBe(on ? 0n : undefined);
    expect(w.ev('kvm_get_msr_host').at(-1)).toMatchObject({ ecx: MSR_KVM_ASYNC_PF_INT, data: 0n, ok: on });
    expect(w.kvm.setMsr(0, MSR_KVM_ASYNC_PF_INT, 0n)).toBe(on);
    expect(w.kvm.setMsr(0, MSR_KVM_ASYNC_PF_ACK, 0n)).toBe(on);
    // A non-zero write is refused either way, and nothing was stored.
    expect(w.kvm.setMsr(0, MSR_KVM_ASYNC_PF_INT, 0xf3n)).toBe(false);
    expect(w.v.apf.msrIntVal).toBe(0n);
    // The exposed MSR is not affected: it reads back what was written.
    expect(w.kvm.getMsr(0, MSR_KVM_ASYNC_PF_EN)).toBe(0n);
  });
  test('a host without interrupt page ready does not advertise INT: refused even with the fix', () => {
    const w = makeWorld({ start: false, toggles: { userspace_zero_pv_msr: true, interrupt_page_ready: false }, vm: { enforcePvCpuid: true, kvmFeatures: 1 << 4 } });
    expect(w.kvm.getMsr(0, MSR_KVM_ASYNC_PF_INT)).toBeUndefined();
    expect(w.kvm.setMsr(0, MSR_KVM_ASYNC_PF_INT, 0n)).toBe(false);
  });
});
