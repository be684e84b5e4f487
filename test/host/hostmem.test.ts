/** Host memory: backing states, latencies, contents across eviction, LRU limit, scheduled evictions. */
import { PAGE_SIZE } from '../../shared-abi/addr';
import { X86_EXCEPTION } from '../../shared-abi/vectors';
import { Simulation } from '../../sim/engine';
import { GuestMemory } from '../../sim/memory';
import { HostMemory, SWAP_POISON_BYTE } from '../../host/hostmem';
import { faultinPfn } from '../../host/mmu';
import { AREA, DATA_GFN, dataGpa, enableModern, makeWorld, touch } from './world';

function mem(config: ConstructorParameters<typeof HostMemory>[2], seed = 3) {
  const sim = new Simulation({ seed });
  const gm = new GuestMemory(64 * PAGE_SIZE);
  const hm = new HostMemory(sim, gm, config);
  return { sim, gm, hm };
}

describe('backing and the EPT', () => {
  test('mapped iff resident; non-resident pages hold poison, contents come back byte for byte', () => {
    const { sim, gm, hm } = mem({ pages: [{ gfn: 5, count: 2, backing: 'swapped' }, { gfn: 9, backing: 'remote' }] });
    for (let i = 0; i < PAGE_SIZE; i += 4) gm.writeU32(5 * PAGE_SIZE + i, (i * 2654435761) >>> 0);
    const before = gm.pageChecksum(5);
    hm.start();
    expect([hm.isMapped(4, false), hm.isMapped(5, true), hm.isMapped(9, false)]).toEqual([true, false, false]);
    expect(gm.readU8(5 * PAGE_SIZE + 100)).toBe(SWAP_POISON_BYTE);
    const done: boolean[] = [];
    hm.pageIn(5, 'sync', 'host', 0, (ok) => done.push(ok));
    sim.run();
    expect(done).toEqual([true]);
    expect(hm.isMapped(5, false)).toBe(true);
    expect(gm.pageChecksum(5)).toBe(before);
    // Evict and bring back again: same bytes.
    hm.evict([5]);
    expect(gm.pageChecksum(5)).not.toBe(before);
    hm.pageIn(5, 'sync', 'host', 0, () => undefined);
    sim.run();
    expect(gm.pageChecksum(5)).toBe(before);
  });

  test('trace: evict and fault-in carry the same checksum', () => {
    const w = makeWorld({ cpl: 3, ifFlag: false, guest: { main: touch(dataGpa(0)) }, start: false });
    for (let i = 0; i < 64; i++) w.mem.writeU8(dataGpa(0) + i, i);
    w.kvm.start();
    w.kvm.evict([DATA_GFN]);
    w.run(1_000_000);
    const ev = w.ev('host_page_evict')[0]!;
    const fin = w.ev('host_page_fault_in')[0]!;
    expect(fin.checksum).toBe(ev.checksum);
    expect(fin).toMatchObject({ gfn: DATA_GFN, ok: true, backing: 'swapped', why: 'sync' });
    expect(w.mem.readU8(dataGpa(0) + 63)).toBe(63);
  });

  test('latencies: fixed per backing, uniform within bounds, exponential capped; deterministic per seed', () => {
    const draws = (seed: number) => {
      const { hm } = mem({}, seed);
      return {
        u: Array.from({ length: 50 }, () => hm.draw({ kind: 'uniform', min: 10, max: 20 })),
        e: Array.from({ length: 50 }, () => hm.draw({ kind: 'exponential', mean: 1000, max: 1500 })),
      };
    };
    const a = draws(1);
    expect(a.u.every((x) => x >= 10 && x <= 20 && Number.isInteger(x))).toBe(true);
    expect(a.e.every((x) => x >= 0 && x <= 1500 && Number.isInteger(x))).toBe(true);
    expect(draws(1)).toEqual(a);
    expect(draws(2)).not.toEqual(a);
    const { sim, hm } = mem({ pages: [{ gfn: 1, backing: 'swapped' }, { gfn: 2, backing: 'remote' }, { gfn: 3, backing: 'failing' }], remoteLatency: { kind: 'fixed', ns: 7000 } });
    hm.start();
    const at: Record<number, number> = {};
    for (const g of [1, 2, 3]) hm.pageIn(g, 'sync', 'host', 0, () => void (at[g] = sim.now));
    sim.run();
    expect(at).toEqual({ 1: 100_000, 2: 7000, 3: 100_000 });
  });

  test('concurrent fault-ins of one frame share a single page-in', () => {
    const { sim, hm } = mem({ pages: [{ gfn: 1, backing: 'swapped' }] });
    hm.start();
    const t: number[] = [];
    hm.pageIn(1, 'worker', 'worker', 0, () => t.push(sim.now));
    sim.schedule(40_000, 10, () => void hm.pageIn(1, 'sync', 'host', 1, () => t.push(sim.now)), 'second');
    sim.run();
    expect(t).toEqual([100_000, 100_000]);
    expect(hm.stats.faultIns).toBe(1);
  });

  test('failing: the fault-in reports an error; afterwards the non-blocking lookup fails at once', () => {
    const { sim, hm } = mem({ pages: [{ gfn: 1, backing: 'failing' }] });
    hm.start();
    expect(hm.lookupNoWait(1)).toBe('needs_io');
    const r: boolean[] = [];
    hm.pageIn(1, 'sync', 'host', 0, (ok) => r.push(ok));
    sim.run();
    expect(r).toEqual([false]);
    expect(hm.lookupNoWait(1)).toBe('error');
    expect(hm.isMapped(1, false)).toBe(false);
  });

  test('remote pages become resident, then swap like any other page', () => {
    const { sim, hm } = mem({ pages: [{ gfn: 1, backing: 'remote' }] });
    hm.start();
    hm.pageIn(1, 'sync', 'host', 0, () => undefined);
    sim.run();
    expect(hm.backingOf(1)).toBe('resident');
    hm.evict([1]);
    expect(hm.backingOf(1)).toBe('swapped');
  });
});

describe('memory limit and evictions', () => {
  test('LRU: beyond limitPages the least recently faulted-in pageable page goes to swap', () => {
    const { sim, hm } = mem({ defaultBacking: 'resident', pages: [{ gfn: 10, count: 4, backing: 'swapped' }], limitPages: 2 });
    hm.start();
    for (const g of [10, 11, 12]) {
      hm.pageIn(g, 'sync', 'host', 0, () => undefined);
      sim.run();
    }
    expect([10, 11, 12].map((g) => hm.backingOf(g))).toEqual(['swapped', 'resident', 'resident']);
    expect(hm.stats.lruEvictions).toBe(1);
    // Frames configured resident are not pageable: never victims.
    expect(hm.backingOf(0)).toBe('resident');
    // Pinned frames count against the limit but are never victims.
    hm.pin(11);
    hm.pageIn(13, 'sync', 'host', 0, () => undefined);
    sim.run();
    expect([11, 12, 13].map((g) => hm.backingOf(g))).toEqual(['resident', 'swapped', 'resident']);
  });

  test('scheduled evictions happen at their times; explicit evictions ignore pins', () => {
    const w = makeWorld({ memory: { evictions: [{ t: 5000, gfns: [DATA_GFN, DATA_GFN + 1] }] }, cpl: 3, guest: {} });
    w.run(4999);
    expect(w.kvm.hostMem.isMapped(DATA_GFN, false)).toBe(true);
    w.run(2);
    expect(w.ev('host_page_evict').map((r) => [r.gfn, r.why, r.t])).toEqual([
      [DATA_GFN, 'scheduled', 5000],
      [DATA_GFN + 1, 'scheduled', 5000],
    ]);
    w.kvm.hostMem.pin(2);
    w.kvm.evict([2]);
    expect(w.kvm.hostMem.isMapped(2, false)).toBe(false);
  });

  test('the APF area page is pinned while registered; a host write to a swapped area faults it in at once', () => {
    const w = makeWorld({ start: false, memory: { pages: [{ gfn: DATA_GFN, backing: 'swapped' }] } });
    enableModern(w);
    expect(w.kvm.hostMem.isPinned(AREA / PAGE_SIZE)).toBe(true);
    w.kvm.hostMem.start();
    w.kvm.evict([AREA / PAGE_SIZE]);
    w.v.asyncPf.checkCompletion(); // writes the wake-all token into the area
    expect(w.ev('host_page_fault_in', { gfn: AREA / PAGE_SIZE, why: 'host_access' })).toHaveLength(1);
    expect(w.mem.readU32(AREA + 4)).toBe(0xffffffff);
  });

  test('defaultBacking swapped: the page tables reachable from CR3 stay resident and pinned', () => {
    const w = makeWorld({ cpl: 3, ifFlag: false, memory: { defaultBacking: 'swapped' }, guest: { main: touch(dataGpa(0)) } });
    w.run(1_000_000);
    for (const g of [0x10, 0x11, 0x12, 0x13, 0x14]) {
      expect(w.kvm.hostMem.backingOf(g)).toBe('resident');
      expect(w.kvm.hostMem.isPinned(g)).toBe(true);
    }
    // Only the data page faulted (no walk faults).
    expect(w.ev('kvm_page_fault').map((r) => r.fault_address)).toEqual([dataGpa(0)]);
    expect(w.kvm.hostMem.backingOf(DATA_GFN + 1)).toBe('swapped');
  });

  test('a synchronous fault on a failing page injects #MC', () => {
    const w = makeWorld({ start: false, cpl: 3, ifFlag: false, memory: { pages: [{ gfn: DATA_GFN, backing: 'failing' }] } });
    faultinPfn(w.v, dataGpa(0), DATA_GFN, 0, false);
    w.sim.run();
    expect(w.ev('kvm_async_pf_sync', { ok: false })).toHaveLength(1);
    expect(w.v.pendingException).toEqual({ vector: X86_EXCEPTION.MC });
    expect(w.v.stats.machineChecks).toBe(1);
  });
});
