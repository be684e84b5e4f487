/**
 * The 64-slot gfn hash (spec §3.1a) against a plain Set under random insert/delete/lookup, with
 * the kernel's preconditions (at most 64 entries — the queue cap —, no duplicate inserts, deletes
 * of present gfns), plus the structural invariant that makes backward-shift deletion correct:
 * every entry is reachable from its home slot without crossing an empty slot.
 */
import fc from 'fast-check';
import { APF_GFN_HASH_SLOTS, apfGfnHashSlot } from '../../shared-abi/apf';
import { hash32Pre47 } from '../../shared-abi/hash';
import { ApfGfnHash, gfnHomeSlot, gfnHomeSlotPre47, type GfnHashFn } from '../../host/x86/gfn_hash';
import { cases } from '../support/scale';

type Cmd = { op: 'add' | 'del' | 'find'; gfn: number };

/** Every entry is reachable from its home slot without crossing an empty slot. */
function reachable(h: ApfGfnHash, home: GfnHashFn): boolean {
  const slots = h.snapshot();
  for (let i = 0; i < slots.length; i++) {
    const g = slots[i]!;
    if (g === -1) continue;
    for (let k = home(g); k !== i; k = (k + 1) % APF_GFN_HASH_SLOTS) if (slots[k] === -1) return false;
  }
  return true;
}

function check(cond: boolean, what: string): void {
  if (!cond) throw new Error(what);
}

function runModel(cmds: readonly Cmd[], home: GfnHashFn): void {
  const h = new ApfGfnHash(home);
  const model = new Set<number>();
  for (const c of cmds) {
    if (c.op === 'add') {
      if (model.has(c.gfn) || model.size >= 64) continue; // the kernel never does this
      check(h.add(c.gfn), `add ${c.gfn}`);
      model.add(c.gfn);
    } else if (c.op === 'del') {
      check(h.delete(c.gfn) === model.has(c.gfn), `delete ${c.gfn}`);
      model.delete(c.gfn);
    }
    check(h.find(c.gfn) === model.has(c.gfn), `find ${c.gfn}`);
    check(h.size === model.size, 'size');
    check(reachable(h, home), 'reachability');
  }
  for (const g of model) check(h.find(g), `find ${g} at the end`);
  expect(new Set(h.entries())).toEqual(model);
}

// Gfns from a small pool collide often; a few large ones exercise the truncation to 32 bits.
const gfnArb = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0, max: 90 }) },
  { weight: 1, arbitrary: fc.constantFrom(0x1_0000_0000, 0x1_0000_0001, 0xffff_ffff, 0xf_ffff_ffff) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 2 ** 40 }) },
);
const cmdArb: fc.Arbitrary<Cmd> = fc.record({ op: fc.constantFrom<Cmd['op']>('add', 'add', 'del', 'find'), gfn: gfnArb });

describe('apf gfn hash', () => {
  test('model: random insert/delete/lookup against a Set (hash_32 ≥ v4.7)', () => {
    fc.assert(fc.property(fc.array(cmdArb, { minLength: 50, maxLength: 300, size: 'max' }), (cmds) => runModel(cmds, gfnHomeSlot)), { seed: 0x5eed, numRuns: cases(100, 300) });
  });

  test('model: same with the pre-v4.7 multiplier (linux-3.0)', () => {
    fc.assert(fc.property(fc.array(cmdArb, { minLength: 50, maxLength: 300, size: 'max' }), (cmds) => runModel(cmds, gfnHomeSlotPre47)), { seed: 0x5eed + 1, numRuns: cases(60, 200) });
  });

  test('model: a fully loaded table (64 entries) drained in random order', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 0, max: 100_000 }), { minLength: 64, maxLength: 64 }), fc.func(fc.integer()), (gfns, order) => {
        const cmds: Cmd[] = gfns.map((gfn) => ({ op: 'add', gfn }));
        const shuffled = [...gfns].sort((a, b) => order(a) - order(b) || a - b);
        for (const gfn of shuffled) cmds.push({ op: 'del', gfn });
        runModel(cmds, gfnHomeSlot);
      }),
      { seed: 42, numRuns: cases(40, 100) },
    );
  });

  test('home slot is hash_32 of the low 32 bits, 6 bits', () => {
    expect(gfnHomeSlot(0x100)).toBe(apfGfnHashSlot(0x100));
    expect(gfnHomeSlot(0x1_0000_0100)).toBe(gfnHomeSlot(0x100));
    expect(gfnHomeSlot(1)).toBe((Math.imul(1, 0x61c88647) >>> 0) >>> 26);
    expect(gfnHomeSlotPre47(5)).toBe(hash32Pre47(5, 6));
  });

  test('linear probing and backward shift on a collision chain', () => {
    const home = (): number => 62; // everything collides at slot 62
    const h = new ApfGfnHash(home);
    [10, 11, 12, 13].forEach((g) => h.add(g));
    expect(h.snapshot().slice(62)).toEqual([10, 11]);
    expect(h.snapshot().slice(0, 3)).toEqual([12, 13, -1]);
    expect(h.slotOf(13)).toBe(1);
    expect(h.delete(10)).toBe(true);
    // 11, 12, 13 shift back by one, wrapping around
    expect(h.snapshot().slice(62)).toEqual([11, 12]);
    expect(h.snapshot().slice(0, 2)).toEqual([13, -1]);
    expect(h.find(13)).toBe(true);
  });

  test('delete of an absent gfn warns and changes nothing; reset empties', () => {
    const h = new ApfGfnHash();
    h.add(7);
    expect(h.delete(8)).toBe(false);
    expect(h.warned).toBe(true);
    expect(h.entries()).toEqual([7]);
    h.reset();
    expect(h.size).toBe(0);
  });

  test('a lookup on a full table stops after 64 probes', () => {
    const h = new ApfGfnHash(() => 0);
    for (let g = 0; g < 64; g++) expect(h.add(g)).toBe(true);
    expect(h.add(999)).toBe(false);
    expect(h.find(999)).toBe(false);
    expect(h.find(63)).toBe(true);
  });
});
