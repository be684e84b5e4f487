import { HOST_PROFILES, HOST_TOGGLES, type HostToggle } from '../../host/config';
import { HOST_PROFILE_INFO, resolveHostProfile } from '../../host/profiles';
import { KVM_FEATURE } from '../../shared-abi/cpuid';

const TOGGLES = Object.keys(HOST_TOGGLES) as HostToggle[];

describe('host profiles', () => {
  test('every profile resolves, with every toggle set and an info entry', () => {
    for (const p of HOST_PROFILES) {
      const r = resolveHostProfile(p);
      expect(Object.keys(r.toggles).sort()).toEqual([...TOGGLES].sort());
      expect(HOST_PROFILE_INFO[p].version).toBe(r.version);
      expect(HOST_PROFILE_INFO[p].description.length).toBeGreaterThan(10);
    }
  });

  test('era facts', () => {
    const f = (p: (typeof HOST_PROFILES)[number]) => resolveHostProfile(p);
    expect([f('linux-3.0').enReservedMask, f('linux-4.19').enReservedMask, f('current').enReservedMask]).toEqual([0x3cn, 0x38n, 0x30n]);
    expect(HOST_PROFILES.map((p) => f(p).pageReady)).toEqual(['pf', 'pf', 'interrupt', 'interrupt', 'interrupt', 'interrupt']);
    expect(HOST_PROFILES.map((p) => f(p).layout)).toEqual(['v2.6.38', 'v2.6.38', 'v5.8', 'v5.8', 'v5.8', 'v6.7']);
    expect(f('linux-6.6').repeatedFaultTracepoint).toBe('kvm_async_pf_doublefault');
    expect(f('current').repeatedFaultTracepoint).toBe('kvm_async_pf_repeated_fault');
    expect(f('linux-4.19').supportedKvmFeatures & (1 << KVM_FEATURE.ASYNC_PF_INT)).toBe(0);
    expect(f('linux-3.0').supportedKvmFeatures & (1 << KVM_FEATURE.ASYNC_PF_VMEXIT)).toBe(0);
  });

  test('one polarity: every toggle is on in current (true = the fixed kernel) and each can be turned off alone', () => {
    const cur = resolveHostProfile('current').toggles;
    for (const t of TOGGLES) {
      expect([t, cur[t]]).toEqual([t, true]);
      const r = resolveHostProfile('current', { [t]: false });
      for (const u of TOGGLES) expect(r.toggles[u]).toBe(u !== t);
    }
  });

  test('fixes arrive in order: a profile has every fix its predecessor has (except the reverted #DF cancellation)', () => {
    for (let i = 1; i < HOST_PROFILES.length; i++) {
      const a = resolveHostProfile(HOST_PROFILES[i - 1]!).toggles;
      const b = resolveHostProfile(HOST_PROFILES[i]!).toggles;
      for (const t of TOGGLES) if (t !== 'no_df_cancellation' && a[t]) expect([t, b[t]]).toEqual([t, true]);
    }
    expect(resolveHostProfile('linux-4.19').toggles.no_df_cancellation).toBe(false);
    expect(resolveHostProfile('linux-5.8').toggles.no_df_cancellation).toBe(true);
  });

  test('interrupt_page_ready off makes bit 3 reserved', () => {
    expect(resolveHostProfile('current', { interrupt_page_ready: false }).enReservedMask).toBe(0x38n);
  });

  test('unknown toggle names are rejected', () => {
    expect(() => resolveHostProfile('current', { nope: true } as unknown as Partial<Record<HostToggle, boolean>>)).toThrow(/unknown host toggle/);
  });
});
