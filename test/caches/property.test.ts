/**
 * Random sequences of memslot changes, page migrations and unplugs, with the APF area written
 * through its cache in between:
 * - every RAM page keeps its contents wherever it goes (move, migration, re-add over new memory),
 *   and the EPT, the cache and the trace agree on where it is;
 * - with refresh-on-use, stale-translation never fires over the whole trace, and no write lands
 *   anywhere but the frame the guest reads the area from;
 * - with the cache never invalidated, every write the checker lets through is still correct.
 */
import fc from 'fast-check';
import { PAGE_SIZE } from '../../shared-abi/addr';
import { APF_TOKEN_OFFSET } from '../../shared-abi/layout';
import { SLAT_MMIO, SLAT_VIOLATION } from '../../sim/cpu/mmu';
import { MemslotError } from '../../host/memslots';
import { apfWrite } from '../../host/x86/apf';
import { CHECKERS, CheckerSet } from '../../harness/checkers';
import { enableModern, makeWorld, MEM_PAGES } from '../host/world';
import { cases } from '../support/scale';

const SLOTS = [{ gfn: 0, count: 8 }, { gfn: 8, count: 8 }, { gfn: 16, count: 16 }, { gfn: 32, count: MEM_PAGES - 32 }];
const MARK = 0x5a000000;

type Op =
  | { readonly do: 'delete' | 'unplug'; readonly slot: number }
  | { readonly do: 'readd'; readonly slot: number; readonly newBacking: boolean }
  | { readonly do: 'move'; readonly slot: number; readonly gfn: number }
  | { readonly do: 'resize'; readonly slot: number; readonly count: number }
  | { readonly do: 'migrate'; readonly gfn: number }
  | { readonly do: 'write' };

const slot = fc.integer({ min: 0, max: 2 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ do: fc.constantFrom('delete' as const, 'unplug' as const), slot }),
  fc.record({ do: fc.constant('readd' as const), slot, newBacking: fc.boolean() }),
  fc.record({ do: fc.constant('move' as const), slot, gfn: fc.constantFrom(0, 8, 16, 24, 0x1000, 0x2000, 0x100000) }),
  fc.record({ do: fc.constant('resize' as const), slot, count: fc.integer({ min: 1, max: 16 }) }),
  fc.record({ do: fc.constant('migrate' as const), gfn: fc.integer({ min: 0, max: 40 }) }),
  fc.constant({ do: 'write' as const }),
);

/** A host page of the model: an id (aliasing slots share it) and the mark its contents carry (-1: not checked, 0: zeroed). */
interface ModelPage {
  readonly id: number;
  readonly mark: number;
}

/** The model: per slot, its first gfn, its size and the host pages from its first one to the end of its memory. */
interface ModelSlot {
  gfn: number;
  count: number;
  live: boolean;
  unplugged: boolean;
  block: ModelPage[];
}

function runOps(ops: readonly Op[], refresh: boolean): { stale: number; wrongWrites: number } {
  const w = makeWorld({ start: false, toggles: { gfn_cache_refresh: refresh }, memory: { memslots: SLOTS, spareFrames: 256 } });
  const markOf = (p: number): number => (p === 1 || (p >= 0x10 && p <= 0x14) ? -1 : MARK + p); // not the area page, nor the page tables
  for (let g = 0; g < MEM_PAGES; g++) if (markOf(g) >= 0) w.mem.writeU32(g * PAGE_SIZE + 64, markOf(g));
  const checkers = new CheckerSet(Object.fromEntries(CHECKERS.map((c) => [c.name, c.name === 'stale-translation'])));
  w.sim.trace.on('record', (r) => checkers.onRecord(r));
  w.kvm.start();
  enableModern(w);
  const hm = w.kvm.hostMem;
  const model: ModelSlot[] = SLOTS.map((s) => {
    const block = Array.from({ length: MEM_PAGES - s.gfn }, (_, i) => ({ id: s.gfn + i, mark: markOf(s.gfn + i) }));
    return { gfn: s.gfn, count: s.count, live: true, unplugged: false, block };
  });
  const gone = new Set<number>();
  let nextId = MEM_PAGES;
  let wrongWrites = 0;
  let value = 1;
  for (const op of ops) {
    try {
      switch (op.do) {
        case 'delete':
          w.kvm.deleteMemslot(op.slot);
          model[op.slot]!.live = false;
          break;
        case 'unplug': {
          w.kvm.hotUnplug(op.slot);
          const m = model[op.slot]!;
          for (const pg of m.block.slice(0, m.count)) gone.add(pg.id);
          Object.assign(m, { live: false, unplugged: true });
          break;
        }
        case 'readd': {
          w.kvm.readdMemslot(op.slot, op.newBacking);
          const m = model[op.slot]!;
          if (op.newBacking) m.block = m.block.slice(0, m.count).map((pg) => ({ id: nextId++, mark: m.unplugged ? 0 : pg.mark }));
          Object.assign(m, { live: true, unplugged: false });
          break;
        }
        case 'move':
          w.kvm.moveMemslot(op.slot, op.gfn);
          model[op.slot]!.gfn = op.gfn;
          break;
        case 'resize':
          w.kvm.resizeMemslot(op.slot, op.count);
          model[op.slot]!.count = op.count;
          break;
        case 'migrate':
          w.kvm.migratePages([op.gfn]);
          break;
        case 'write': {
          // What kvm_arch_async_page_present writes; the guest then reads its slot where the EPT says.
          const ok = apfWrite(w.v, APF_TOKEN_OFFSET, value, 'token');
          const frame = hm.translate(1, false);
          const seen = frame < 0 ? undefined : hm.phys.readU32(frame * PAGE_SIZE + APF_TOKEN_OFFSET);
          if (ok && seen !== value) wrongWrites++;
          value++;
          break;
        }
      }
    } catch (e) {
      if (!(e instanceof MemslotError)) throw e;
    }
    // Every page of a live slot holds its mark where the EPT says it is; memory that is gone is not mapped.
    const wrong: number[] = [];
    for (const m of model) {
      if (!m.live) continue;
      m.block.slice(0, m.count).forEach((pg, i) => {
        const f = hm.translate(m.gfn + i, false);
        if (gone.has(pg.id) ? f !== SLAT_VIOLATION : f < 0 || (pg.mark >= 0 && hm.phys.readU32(f * PAGE_SIZE + 64) !== pg.mark)) wrong.push(m.gfn + i);
      });
    }
    expect(wrong).toEqual([]);
  }
  // Frames outside every live slot are not RAM.
  const covered = (g: number): boolean => model.some((m) => m.live && g >= m.gfn && g < m.gfn + m.count);
  for (const g of [0, 8, 16, 24, 31, 0x1000, 0x100000]) if (!covered(g)) expect(hm.translate(g, false)).toBe(SLAT_MMIO);
  return { stale: checkers.violations.length, wrongWrites };
}

describe('memslot changes, migrations and the APF area cache, at random', () => {
  test('refresh-on-use: contents follow the pages, no stale write, every successful write reaches the guest', () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 25 }), (ops) => {
        expect(runOps(ops, true)).toEqual({ stale: 0, wrongWrites: 0 });
      }),
      { numRuns: cases(60, 200), seed: Number(process.env.APF_PROP_SEED ?? 20261121) },
    );
  });

  test('never invalidated: every write that misses the guest is caught', () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 25 }), (ops) => {
        const r = runOps(ops, false);
        expect(r.stale).toBeGreaterThanOrEqual(r.wrongWrites);
      }),
      { numRuns: cases(60, 200), seed: Number(process.env.APF_PROP_SEED ?? 20261121) },
    );
    // And a sequence that certainly goes stale.
    expect(runOps([{ do: 'migrate', gfn: 1 }, { do: 'write' }], false)).toEqual({ stale: 1, wrongWrites: 1 });
  });
});
