/**
 * The host side of the guest address space and its caches in isolation: host-physical memory and its allocator, memslots and
 * their changes (the EPT follows them), host page migration and unplug, and the APF area cache's
 * life cycle (init on EN with the era's length, check-and-refresh on use, MMU-notifier
 * invalidation, the LRU and long-term pins), plus the rule that none of it shows on the trace of
 * a VM whose memory never changes.
 */
import { PAGE_SIZE, type Gva } from '../../shared-abi/addr';
import { encodeAsyncPfEn, MSR_KVM_ASYNC_PF_EN } from '../../shared-abi/msr';
import { SLAT_MMIO, SLAT_VIOLATION } from '../../sim/cpu/mmu';
import { Simulation } from '../../sim/engine';
import { Priority } from '../../sim/queue';
import { GuestMemory } from '../../sim/memory';
import { TraceRecorder } from '../../sim/trace';
import { HostMemory } from '../../host/hostmem';
import { HostPhysMemory } from '../../host/hostphys';
import { MemslotError } from '../../host/memslots';
import { faultinPfn } from '../../host/mmu';
import { AREA, DATA_GFN, dataGpa, enableModern, makeWorld, MEM_PAGES, type World } from '../host/world';

const THREE_SLOTS = [{ gfn: 0, count: 0x100 }, { gfn: 0x100, count: 0x10 }, { gfn: 0x110, count: MEM_PAGES - 0x110 }];
const SPARE = MEM_PAGES; // first spare host frame of the fixture

function hostMem(config: ConstructorParameters<typeof HostMemory>[2] = {}) {
  const sim = new Simulation({ seed: 1 });
  const rec = new TraceRecorder(sim.trace);
  const gm = new GuestMemory(64 * PAGE_SIZE);
  const hm = new HostMemory(sim, gm, config);
  return { sim, rec, gm, hm, events: () => rec.records.map((r) => r.event) };
}

describe('host-physical memory', () => {
  test('RAM frames are the guest memory; spare frames come after it, allocated lowest first, freed frames reused first', () => {
    const gm = new GuestMemory(4 * PAGE_SIZE);
    const p = new HostPhysMemory(gm, 3);
    expect([p.ramFrames, p.frames, p.size]).toEqual([4, 7, 7 * PAGE_SIZE]);
    p.writeU32(2 * PAGE_SIZE + 8, 0xfeed);
    expect(gm.readU32(2 * PAGE_SIZE + 8)).toBe(0xfeed);
    expect([p.allocFrame(), p.allocFrame()]).toEqual([4, 5]);
    p.writeU64(5 * PAGE_SIZE, 7n);
    p.copyFrame(5, 6);
    expect(p.readU64(6 * PAGE_SIZE)).toBe(7n);
    p.freeFrame(2);
    expect(p.allocFrame()).toBe(2);
    expect(p.allocFrame()).toBe(6);
    expect(p.allocFrame()).toBe(-1);
    expect(() => new HostPhysMemory(gm, 0).readU8(4 * PAGE_SIZE)).toThrow(/no spare host frames/);
  });
});

describe('memslots and the EPT', () => {
  test('default: one slot, identity, nothing on the trace', () => {
    const { hm, events } = hostMem();
    hm.start();
    expect([hm.translate(5, false), hm.translate(64, false), hm.space.generation, hm.space.traced]).toEqual([5, SLAT_MMIO, 0, false]);
    expect(events()).toEqual([]);
  });

  test('an explicit layout is traced from the start; frames outside every slot are not RAM', () => {
    const { hm, rec } = hostMem({ memslots: [{ gfn: 0, count: 8 }, { gfn: 16, count: 48 }] });
    hm.start();
    expect(rec.records.map((r) => [r.event, r.slot ?? r.hfn, r.gfn ?? r.count])).toEqual([
      ['host_ram_alloc', 0, 64],
      ['kvm_set_memory_region', 0, 0],
      ['kvm_set_memory_region', 1, 16],
    ]);
    expect([hm.translate(7, false), hm.translate(8, false), hm.translate(16, false)]).toEqual([7, SLAT_MMIO, 16]);
    expect(() => hostMem({ memslots: [{ gfn: 0, count: 8 }, { gfn: 4, count: 8 }] })).toThrow(/overlaps memslot 0/);
    expect(() => hostMem({ memslots: [{ gfn: 60, count: 8 }] })).toThrow(/inside guest RAM/);
  });

  test('delete, re-add, move, resize: each changes the generation; the EPT follows', () => {
    const { hm, rec } = hostMem({ memslots: [{ gfn: 0, count: 16 }, { gfn: 16, count: 16 }, { gfn: 32, count: 32 }] });
    hm.start();
    const s = hm.space;
    s.deleteSlot(1);
    expect([hm.translate(20, false), s.generation]).toEqual([SLAT_MMIO, 1]);
    expect(() => s.deleteSlot(1)).toThrow(MemslotError);
    s.readdSlot(1, false);
    expect([hm.translate(20, false), s.generation]).toEqual([20, 2]);
    s.moveSlot(1, 0x100000);
    expect([hm.translate(20, false), hm.translate(0x100004, false), s.generation]).toEqual([SLAT_MMIO, 20, 3]);
    expect(() => s.moveSlot(1, 40)).toThrow(/overlaps memslot 2/);
    s.moveSlot(1, 16);
    s.resizeSlot(1, 8);
    expect([hm.translate(23, false), hm.translate(24, false), s.generation]).toEqual([23, SLAT_MMIO, 5]);
    expect(() => s.resizeSlot(1, 32)).toThrow(/overlaps memslot 2/);
    s.resizeSlot(1, 16);
    expect(() => s.resizeSlot(2, 64)).toThrow(/beyond the host memory/);
    expect(rec.records.filter((r) => r.event === 'kvm_set_memory_region' && r.gen !== 0).map((r) => [r.change, r.gen])).toEqual([
      ['delete', 1],
      ['create', 2],
      ['move', 3],
      ['move', 4],
      ['resize', 5],
      ['resize', 6],
    ]);
  });

  test('re-add over new memory: contents copied (a swapped page stays swapped and comes back intact), old frames freed', () => {
    const { sim, hm, gm, rec } = hostMem({ memslots: [{ gfn: 0, count: 16 }, { gfn: 16, count: 4 }, { gfn: 20, count: 44 }], pages: [{ gfn: 17, backing: 'swapped' }] });
    gm.writeU32(16 * PAGE_SIZE + 12, 0x1111);
    gm.writeU32(17 * PAGE_SIZE + 12, 0x2222);
    hm.start();
    hm.space.deleteSlot(1);
    hm.space.readdSlot(1, true);
    expect(hm.translate(16, false)).toBe(64); // the first spare frame
    expect(hm.phys.readU32(hm.translate(16, false) * PAGE_SIZE + 12)).toBe(0x1111);
    expect(hm.translate(17, false)).toBe(SLAT_VIOLATION);
    hm.pageIn(17, 'sync', 'host', 0, () => undefined);
    sim.run();
    expect(hm.phys.readU32(hm.translate(17, false) * PAGE_SIZE + 12)).toBe(0x2222);
    expect(rec.records.find((r) => r.event === 'host_ram_free')).toMatchObject({ count: 4 });
    expect(hm.phys.isFree(16)).toBe(true);
  });

  test('hot-unplug: deleted and freed; it comes back only over new (zeroed) memory; a page-in in flight fails', () => {
    const { sim, hm, gm } = hostMem({ memslots: [{ gfn: 0, count: 16 }, { gfn: 16, count: 4 }, { gfn: 20, count: 44 }], pages: [{ gfn: 18, backing: 'swapped' }] });
    gm.writeU32(16 * PAGE_SIZE, 0x5555);
    hm.start();
    const done: boolean[] = [];
    hm.pageIn(18, 'worker', 'worker', 0, (ok) => done.push(ok));
    hm.space.unplugSlot(1);
    sim.run();
    expect(done).toEqual([false]);
    expect([hm.translate(16, false), hm.phys.isFree(16)]).toEqual([SLAT_MMIO, true]);
    expect(() => hm.space.readdSlot(1, false)).toThrow(/re-add it with new backing/);
    hm.space.readdSlot(1, true);
    expect(hm.phys.readU32(hm.translate(16, false) * PAGE_SIZE)).toBe(0);
    expect(hm.backingOf(18)).toBe('resident');
  });

  test('page migration: same gfn, new frame, contents copied; refused for a swapped page, without a free frame, for a gfn that is not RAM', () => {
    const { hm, gm, rec } = hostMem({ pages: [{ gfn: 9, backing: 'swapped' }], spareFrames: 1 });
    gm.writeU32(5 * PAGE_SIZE + 4, 0xabcd);
    hm.start();
    expect(hm.space.migrate(5)).toBe('migrated');
    expect(hm.translate(5, false)).toBe(64);
    expect(hm.phys.readU32(64 * PAGE_SIZE + 4)).toBe(0xabcd);
    expect(hm.space.migrate(6)).toBe('migrated'); // takes frame 5, which the first migration freed
    expect(hm.translate(6, false)).toBe(5);
    expect(hm.space.migrate(9)).toBe('not_resident');
    expect(() => hm.space.migrate(64)).toThrow(/not guest RAM/);
    // The first change of a default layout puts the layout on the trace first.
    expect(rec.records.slice(0, 3).map((r) => [r.event, r.change])).toEqual([
      ['host_ram_alloc', undefined],
      ['kvm_set_memory_region', 'existing'],
      ['host_page_migrate', undefined],
    ]);
    expect(rec.records.filter((r) => r.event === 'host_page_migrate').map((r) => [r.ok, r.why])).toEqual([
      [true, 'requested'],
      [true, 'requested'],
      [false, 'not_resident'],
    ]);
    const none = hostMem({ spareFrames: 0 });
    none.hm.start();
    expect(none.hm.space.migrate(5)).toBe('no_free_frame');
    expect(none.hm.translate(5, false)).toBe(5);
  });
});

describe('the vCPU accesses the host frame behind the GPA', () => {
  test('after a migration the guest reads what it wrote, from the new frame, and its stores go there', () => {
    const gpa = dataGpa(0);
    const w = makeWorld({
      start: false,
      guest: {
        main: function* (g) {
          yield { op: 'store', gva: gpa as Gva, size: 4, value: 0x1234 };
          yield { op: 'compute', ns: 10_000 };
          g.note('read', { value: yield { op: 'load', gva: gpa as Gva, size: 4 } });
          yield { op: 'store', gva: (gpa + 4) as Gva, size: 4, value: 0x5678 };
        },
      },
    });
    w.kvm.start();
    w.sim.schedule(5_000, Priority.Host, () => void w.kvm.migratePages([DATA_GFN]), 'test.migrate');
    w.run(100_000);
    expect(w.guest.notes('read')).toEqual([{ value: 0x1234 }]);
    const frame = w.kvm.hostMem.translate(DATA_GFN, true);
    expect(frame).toBe(SPARE);
    expect(w.kvm.hostMem.phys.readU32(frame * PAGE_SIZE + 4)).toBe(0x5678);
    expect(w.mem.readU32(gpa + 4)).toBe(0); // the frame the page left
  });
});

const traced = (o: Parameters<typeof makeWorld>[0] = {}): World => makeWorld({ start: false, ...o, memory: { memslots: THREE_SLOTS, ...o.memory } });

describe('the APF area cache', () => {
  test.each([
    ['current', 8],
    ['linux-5.8', 8],
    ['linux-4.19', 4],
    ['linux-3.0', 4],
  ] as const)('init on the EN write (%s): %i bytes, generation, memslot and frame recorded; the page is held against LRU eviction', (profile, len) => {
    const w = traced({ profile });
    w.kvm.start();
    const en = encodeAsyncPfEn({ enabled: true, deliveryAsInt: profile === 'current' || profile === 'linux-5.8', gpa: AREA });
    expect(w.kvm.setMsr(0, MSR_KVM_ASYNC_PF_EN, en)).toBe(true);
    expect(w.ev('kvm_gfn_cache_init')).toEqual([expect.objectContaining({ gpa: AREA, len, gen: 0, slot: 0, hfn: 1, ok: true })]);
    expect(w.kvm.hostMem.isPinned(1)).toBe(true);
  });

  test('a GPA outside every memslot fails the EN write; a later EN elsewhere drops the old translation and its pin', () => {
    const w = traced();
    w.kvm.start();
    w.kvm.deleteMemslot(1);
    expect(w.kvm.setMsr(0, MSR_KVM_ASYNC_PF_EN, encodeAsyncPfEn({ enabled: true, deliveryAsInt: true, gpa: dataGpa(0) }))).toBe(false);
    expect(w.ev('kvm_async_pf_enable_failed')).toHaveLength(1);
    expect(w.ev('kvm_gfn_cache_init').at(-1)).toMatchObject({ ok: false, hfn: -1, gen: 1 });
    expect(w.v.apf.area).toBeNull();
    enableModern(w);
    expect(w.kvm.hostMem.isPinned(1)).toBe(true);
    expect(w.kvm.setMsr(0, MSR_KVM_ASYNC_PF_EN, encodeAsyncPfEn({ enabled: true, deliveryAsInt: true, gpa: 0x3000 }))).toBe(true);
    expect([w.kvm.hostMem.isPinned(1), w.kvm.hostMem.isPinned(3)]).toEqual([false, true]);
  });

  test('check and refresh on use: a generation change refreshes once; a GPA that no longer resolves fails until the next change', () => {
    const w = traced({ memory: { memslots: [{ gfn: 0, count: 2 }, { gfn: 2, count: MEM_PAGES - 2 }] } });
    w.kvm.start();
    enableModern(w);
    const c = w.v.apf.data;
    w.kvm.moveMemslot(1, 0x200); // another slot: the area's translation is still right, but the generation changed
    expect(c.frame()).toBe(1);
    expect(c.frame()).toBe(1);
    expect(w.ev('kvm_gfn_cache_refresh')).toEqual([expect.objectContaining({ gen: 1, hfn: 1, ok: true, why: 'generation' })]);
    w.kvm.deleteMemslot(0);
    expect([c.frame(), c.frame()]).toEqual([-1, -1]);
    expect(w.ev('kvm_gfn_cache_refresh')).toHaveLength(2);
    expect(w.ev('kvm_gfn_cache_refresh').at(-1)).toMatchObject({ gen: 2, ok: false, hfn: -1 });
    w.kvm.readdMemslot(0);
    expect(c.frame()).toBe(1);
    expect(w.ev('kvm_gfn_cache_refresh').at(-1)).toMatchObject({ gen: 3, ok: true, hfn: 1 });
  });

  test('MMU-notifier invalidation: only when its own page migrates or is unmapped', () => {
    const w = traced();
    w.kvm.start();
    enableModern(w);
    w.kvm.migratePages([2]);
    expect(w.ev('kvm_gfn_cache_invalidate')).toHaveLength(0);
    w.kvm.migratePages([1]);
    expect(w.ev('kvm_gfn_cache_invalidate')).toEqual([expect.objectContaining({ gpa: AREA, why: 'migrate' })]);
    expect(w.v.apf.data.frame()).toBe(w.kvm.hostMem.translate(1, false));
    expect(w.ev('kvm_gfn_cache_refresh').at(-1)).toMatchObject({ why: 'invalidated', ok: true });
  });

  test('the not-present flags and the page-ready token follow the page; each write names its translation', () => {
    const w = traced({ memory: { memslots: THREE_SLOTS, pages: [{ gfn: DATA_GFN, count: 1, backing: 'swapped' }] } });
    enableModern(w);
    w.kvm.start();
    w.v.asyncPf.checkCompletion();
    w.mem.writeU32(AREA + 4, 0);
    expect(faultinPfn(w.v, dataGpa(0), DATA_GFN, 0, false)).toBe('async');
    w.kvm.migratePages([1]);
    w.sim.runFor(200_000);
    w.v.asyncPf.checkCompletion();
    const frame = w.kvm.hostMem.translate(1, false);
    expect(w.ev('kvm_write_guest').map((r) => [r.field, r.hfn, r.gen, r.slot])).toEqual([
      ['token', 1, 0, 0],
      ['flags', 1, 0, 0],
      ['token', frame, 0, 0],
    ]);
  });

  test('pinned (gfn_cache_unpinned off): migration refused while cached; done when the vCPU goes away', () => {
    const w = traced({ toggles: { gfn_cache_unpinned: false } });
    w.kvm.start();
    enableModern(w);
    expect(w.kvm.migratePages([1])).toEqual(['pinned']);
    w.kvm.destroyVcpu(0);
    expect(w.kvm.hostMem.translate(1, false)).toBe(SPARE);
    expect(w.ev('host_page_migrate').map((r) => [r.ok, r.why])).toEqual([
      [false, 'pinned'],
      [true, 'unpinned'],
    ]);
  });

  test('pinned and unplugged: the frame stays allocated while pinned, and is freed when the cache lets go', () => {
    const w = traced({ toggles: { gfn_cache_unpinned: false } });
    w.kvm.start();
    enableModern(w);
    w.kvm.hotUnplug(0);
    expect(w.kvm.hostMem.phys.isFree(1)).toBe(false);
    expect(w.kvm.hostMem.phys.isFree(2)).toBe(true);
    expect(w.v.apf.data.frame()).toBe(-1);
    expect(w.kvm.hostMem.phys.isFree(1)).toBe(true);
  });
});

describe('identity: nothing of this on the trace of a VM whose memory never changes', () => {
  test('no cache records, kvm_write_guest without translation fields', () => {
    const w = makeWorld({ start: false, memory: { pages: [{ gfn: DATA_GFN, count: 1, backing: 'swapped' }] } });
    enableModern(w);
    w.kvm.start();
    faultinPfn(w.v, dataGpa(0), DATA_GFN, 0, false);
    w.sim.runFor(200_000);
    const events = new Set(w.rec.records.map((r) => r.event));
    for (const e of ['kvm_gfn_cache_init', 'kvm_gfn_cache_refresh', 'kvm_set_memory_region', 'host_ram_alloc']) expect(events.has(e)).toBe(false);
    const writes = w.ev('kvm_write_guest');
    expect(writes.length).toBeGreaterThan(0);
    for (const r of writes) expect(Object.keys(r).sort()).toEqual(['cpu', 'event', 'field', 'gpa', 'len', 'ok', 'src', 't', 'value']);
  });
});
