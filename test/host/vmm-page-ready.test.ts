/**
 * `Kvm.injectPageReady`: the VMM's page-ready for a token of its choosing (the scenario action
 * `page_ready`) goes through the vCPU's cached mapping of its APF area, like KVM's own page-ready
 * write, so it lands where the guest reads its token slot even after the area's page moved.
 */
import { PAGE_SIZE } from '../../shared-abi/addr';
import { AREA, enableModern, makeWorld } from './world';

/** The APF area's page is gfn 1 in the fixture: where the guest reads its token slot now. */
const guestToken = (w: ReturnType<typeof makeWorld>): number =>
  w.kvm.hostMem.phys.readU32(w.kvm.hostMem.translate(1, false) * PAGE_SIZE + (AREA % PAGE_SIZE) + 4);

describe('Kvm.injectPageReady', () => {
  test('writes the token through the cache (after a page migration too) and raises the page-ready vector', () => {
    const w = makeWorld({ start: false });
    enableModern(w);
    expect(w.kvm.migratePages([1])).toEqual(['migrated']);
    expect(w.kvm.hostMem.translate(1, false)).not.toBe(1);
    expect(w.kvm.injectPageReady(0, 0x1234)).toBe(true);
    expect(guestToken(w)).toBe(0x1234);
    // KVM's own write would leave a kvm_write_guest record; the VMM's does not.
    expect(w.ev('kvm_write_guest', { value: 0x1234 })).toHaveLength(0);
    expect(w.v.apf.vec).not.toBe(0);
    expect(w.v.lapic!.irr.get(w.v.apf.vec)).toBeTruthy();
  });

  test('refuses, writing nothing, when the vCPU has no APF area', () => {
    const w = makeWorld({ start: false });
    expect(w.kvm.injectPageReady(0, 0x1234)).toBe(false);
    expect(w.mem.readU32(AREA + 4)).toBe(0);
  });
});
