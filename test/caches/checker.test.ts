/**
 * stale-translation on synthetic traces: quiet on writes through the current translation (and on
 * writes of a host that never traced translations), fires on each kind of stale write; then the
 * scenario-format side of the cache work: memslot layouts and the memslot actions are validated.
 */
import { check, rec } from '../harness/helpers';
import { scenarioFromValue, ScenarioError } from '../../harness/scenario/load';

const HVA = 0x7f00_0000_0000;
const P = 0x1000;
/** The layout of scenarios/caches on 16 MiB: slot 1 holds gfn 0x10-0x1f. */
const layout = [
  rec(0, -1, 'host_ram_alloc', { hva: HVA, count: 0x1000, hfn: 0 }),
  rec(0, -1, 'kvm_set_memory_region', { slot: 0, change: 'create', gfn: 0, count: 0x10, hva: HVA, gen: 0 }),
  rec(0, -1, 'kvm_set_memory_region', { slot: 1, change: 'create', gfn: 0x10, count: 0x10, hva: HVA + 0x10 * P, gen: 0 }),
  rec(0, -1, 'kvm_set_memory_region', { slot: 2, change: 'create', gfn: 0x20, count: 0xfe0, hva: HVA + 0x20 * P, gen: 0 }),
];
const write = (t: number, hfn: number, gen: number, extra: Record<string, unknown> = {}) =>
  rec(t, 0, 'kvm_write_guest', { gpa: 0x10004, len: 4, value: 0x1000, field: 'token', ok: true, hfn, gen, slot: 1, ...extra });
const migrate = (t: number) => rec(t, -1, 'host_page_migrate', { gfn: 0x10, hva: HVA + 0x10 * P, old_hfn: 0x10, new_hfn: 0x1000, ok: true, why: 'requested' });
const slot1 = (t: number, change: 'create' | 'delete' | 'move' | 'resize' | 'existing', gen: number, gfn = 0x10, hva = HVA + 0x10 * P) => rec(t, -1, 'kvm_set_memory_region', { slot: 1, change, gfn, count: 0x10, hva, gen });

describe('stale-translation', () => {
  it('stays quiet on writes through the current translation', () => {
    expect(check('stale-translation', [...layout, write(10, 0x10, 0), migrate(20), write(30, 0x1000, 0)])).toEqual([]);
    expect(check('stale-translation', [...layout, slot1(20, 'move', 1, 0x100000), slot1(25, 'move', 2), write(30, 0x10, 2)])).toEqual([]);
  });

  it('ignores failed writes, and writes of a host that never traced translations (identity)', () => {
    expect(check('stale-translation', [...layout, migrate(20), write(30, -1, 0, { ok: false })])).toEqual([]);
    expect(check('stale-translation', [rec(10, 0, 'kvm_write_guest', { gpa: 0x10004, len: 4, value: 1, field: 'token', ok: true })])).toEqual([]);
  });

  it('fires on a write into the frame a migrated page left', () => {
    const v = check('stale-translation', [...layout, migrate(20), write(30, 0x10, 0)]);
    expect(v.map((x) => x.message)).toEqual([
      'host wrote token 0x1000 for cpu0 at gpa 0x10004 through host frame 0x10 (a translation of generation 0), but gpa 0x10004 is backed by host frame 0x1000 ' +
        '(migrated from host frame 0x10 at t=20ns); the frame written was left by a page migration at t=20ns: the guest never sees this write',
    ]);
  });

  it('fires on a write to a GPA that is no longer RAM (slot deleted, or unplugged)', () => {
    expect(check('stale-translation', [...layout, slot1(20, 'delete', 1), write(30, 0x10, 0)])[0]!.message).toMatch(/gpa 0x10004 is no longer guest RAM$/);
    const unplug = [...layout, slot1(20, 'delete', 1), rec(20, -1, 'host_ram_free', { hva: HVA + 0x10 * P, count: 0x10 }), write(30, 0x10, 0)];
    expect(check('stale-translation', unplug)[0]!.message).toMatch(/no longer guest RAM: that frame was freed when the VMM unmapped its memory at t=20ns$/);
  });

  it('fires on a write through a memslot that changed since the translation was taken, even to the right frame', () => {
    const v = check('stale-translation', [...layout, slot1(20, 'move', 1, 0x100000), slot1(25, 'move', 2), write(30, 0x10, 0)]);
    expect(v[0]!.message).toMatch(/through host frame 0x10 \(a translation of generation 0\), but memslot 1 was moved at generation 2 \(t=25ns\): the cached memslot no longer exists/);
    // A change to another slot does not make the translation stale.
    const other = rec(20, -1, 'kvm_set_memory_region', { slot: 2, change: 'resize', gfn: 0x20, count: 0x10, hva: HVA + 0x20 * P, gen: 1 });
    expect(check('stale-translation', [...layout, other, write(30, 0x10, 0)])).toEqual([]);
  });

  it('fires on a write into memory the VMM replaced (re-added over new pages)', () => {
    const readd = [
      ...layout,
      slot1(20, 'delete', 1),
      rec(21, -1, 'host_ram_alloc', { hva: HVA + 0x2000 * P, count: 0x10, hfn: 0x1000 }),
      slot1(21, 'create', 2, 0x10, HVA + 0x2000 * P),
      rec(21, -1, 'host_ram_free', { hva: HVA + 0x10 * P, count: 0x10 }),
    ];
    expect(check('stale-translation', [...readd, write(30, 0x1000, 2)])).toEqual([]);
    expect(check('stale-translation', [...readd, write(30, 0x10, 0)])[0]!.message).toMatch(
      /backed by host frame 0x1000 \(memslot 1 created at t=21ns\); the frame written was freed when the VMM unmapped its memory at t=21ns/,
    );
  });
});

describe('scenario format: memslots and their actions', () => {
  const base = { tasks: [{ name: 't', program: [{ op: 'compute', for: '1us' }] }], machine: { memory: '1MiB' } };
  const load = (extra: Record<string, unknown>) => scenarioFromValue({ ...base, ...extra }, 'x.json');
  const problems = (extra: Record<string, unknown>): string => {
    try {
      load(extra);
      return '';
    } catch (e) {
      if (e instanceof ScenarioError) return e.message;
      throw e;
    }
  };

  it('fills in counts up to the next slot or the end of RAM', () => {
    const s = load({ hostMemory: { memslots: [{ gfn: '0x10' }, { gfn: 0, count: 8 }] } });
    expect(s.hostMemory.memslots).toEqual([{ gfn: 0x10, count: 0xf0 }, { gfn: 0, count: 8 }]);
    expect(load({}).hostMemory.memslots).toBeUndefined();
  });

  it('rejects slots outside RAM and overlapping slots', () => {
    expect(problems({ hostMemory: { memslots: [{ gfn: '0x100' }] } })).toMatch(/hostMemory\.memslots\[0\]\.gfn: gfn 0x100 lies outside guest RAM/);
    expect(problems({ hostMemory: { memslots: [{ gfn: 0, count: 300 }] } })).toMatch(/do not fit in guest RAM/);
    expect(problems({ hostMemory: { memslots: [{ gfn: 0, count: 16 }, { gfn: 8, count: 16 }] } })).toMatch(/memslots\[1\]: memslot 1 overlaps memslot 0/);
  });

  it('parses the six actions and checks the memslot they name', () => {
    const s = load({
      hostMemory: { memslots: [{ gfn: 0, count: 16 }, { gfn: 16 }] },
      events: [
        { at: '1us', do: 'memslot_delete', slot: 1 },
        { at: '2us', do: 'memslot_readd', slot: 1, newBacking: true },
        { at: '3us', do: 'memslot_move', slot: 1, gfn: '0x100000' },
        { at: '4us', do: 'memslot_resize', slot: 1, count: 8 },
        { at: '5us', do: 'hot_unplug', slot: 1 },
        { at: '6us', do: 'page_migrate', pages: [{ gfn: '0x10', count: 2 }] },
      ],
    });
    expect(s.events.map((e) => e.action)).toEqual([
      { do: 'memslot_delete', slot: 1 },
      { do: 'memslot_readd', slot: 1, newBacking: true },
      { do: 'memslot_move', slot: 1, gfn: 0x100000 },
      { do: 'memslot_resize', slot: 1, count: 8 },
      { do: 'hot_unplug', slot: 1 },
      { do: 'page_migrate', pages: [{ kind: 'gfn', gfn: 0x10, count: 2 }] },
    ]);
    expect(problems({ events: [{ at: '1us', do: 'memslot_delete', slot: 1 }] })).toMatch(/events\[0\]\.slot: memslot 1 does not exist: the layout has 1 memslot/);
    expect(problems({ events: [{ at: '1us', do: 'page_migrate', pages: ['0x7f0000001000'] }] })).toMatch(/no task maps page 0x7f0000001000/);
    expect(problems({ events: [{ at: '1us', do: 'memslot_mvoe', slot: 0 }] })).toMatch(/did you mean "memslot_move"/);
  });
});
