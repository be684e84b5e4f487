/**
 * The scenario's memslot layout (`hostMemory.memslots`) and the checks of the actions that name a
 * memslot (`memslot_*`, `hot_unplug`), after parsing (docs/scenario-format.md, docs/caches.md).
 */
import { PAGE_SIZE } from '../../shared-abi/addr';
import { hex } from '../util/units';
import type { Action } from './types';

type Add = (path: readonly (string | number)[], message: string) => void;

export interface MemslotSpec {
  readonly gfn: number;
  readonly count: number;
}

/**
 * The layout with every count filled in (the rest of RAM up to the next slot), or undefined for
 * the default single slot. Slots must lie inside RAM and not overlap.
 */
export function resolveMemslots(input: readonly { gfn: number; count?: number | undefined }[] | undefined, memoryBytes: number, add: Add): MemslotSpec[] | undefined {
  if (input === undefined) return undefined;
  const frames = Math.floor(memoryBytes / PAGE_SIZE);
  if (input.length === 0) add(['hostMemory', 'memslots'], 'expected at least one memslot (leave "memslots" out for one slot over all RAM)');
  const out: MemslotSpec[] = input.map((s, i) => {
    const next = input.filter((o) => o.gfn > s.gfn).reduce((m, o) => Math.min(m, o.gfn), frames);
    const count = s.count ?? next - s.gfn;
    const path = ['hostMemory', 'memslots', i];
    if (s.gfn >= frames) add([...path, 'gfn'], `gfn ${hex(s.gfn)} lies outside guest RAM (${hex(frames)} frames)`);
    else if (count < 1 || s.gfn + count > frames) add([...path, 'count'], `${count} pages from gfn ${hex(s.gfn)} do not fit in guest RAM (${hex(frames)} frames)`);
    return { gfn: s.gfn, count };
  });
  out.forEach((s, i) => {
    out.forEach((o, j) => {
      if (j < i && s.gfn < o.gfn + o.count && o.gfn < s.gfn + s.count) add(['hostMemory', 'memslots', i], `memslot ${i} overlaps memslot ${j}`);
    });
  });
  return out;
}

/** An action that names a memslot must name one of the layout's (`slots` of them). */
export function checkMemslotAction(a: Action, slots: number, path: readonly (string | number)[], add: Add): void {
  if (a.do !== 'memslot_delete' && a.do !== 'memslot_readd' && a.do !== 'memslot_move' && a.do !== 'memslot_resize' && a.do !== 'hot_unplug') return;
  if (a.slot >= slots) add([...path, 'slot'], `memslot ${a.slot} does not exist: the layout has ${slots} memslot${slots === 1 ? '' : 's'} (hostMemory.memslots)`);
  if (a.do === 'memslot_resize' && a.count < 1) add([...path, 'count'], 'a memslot has at least one page');
}
