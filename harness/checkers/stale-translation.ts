/**
 * stale-translation: the host never writes guest memory through a stale translation
 * (docs/caches.md). From the trace alone it rebuilds the guest address space — memslots
 * (`kvm_set_memory_region`), the VMM's memory and its host frames (`host_ram_alloc`,
 * `host_ram_free`), page migrations (`host_page_migrate`) — and checks every successful
 * `kvm_write_guest` that names the translation it went through (`hfn`, `gen`, `slot`; the host adds
 * them once it traces translations):
 * - its GPA is still guest RAM;
 * - the host frame written is the one the GPA is backed by now (not the frame a migrated page left,
 *   nor memory the VMM replaced or unplugged);
 * - the translation was taken after the last change of the memslot the GPA lies in (a cache from
 *   before a delete / move / resize / re-add points at a memslot that no longer exists: KVM would
 *   mark the page dirty in a freed slot).
 * Writes without those fields come from a host whose address space never changed: identity.
 */
import { PAGE_SIZE } from '../../shared-abi/addr';
import { at, defineChecker, eventSet, hex } from './types';

interface Slot {
  readonly gfn: number;
  readonly count: number;
  /** hva >> 12 of the slot's first page. */
  readonly hvaPage: number;
}

interface Change {
  readonly gen: number;
  readonly t: number;
  readonly what: string;
}

const pageOf = (hva: number): number => Math.floor(hva / PAGE_SIZE);

export const staleTranslation = defineChecker({
  name: 'stale-translation',
  description: 'no host write into guest memory through a stale translation (memslots, migrated or unplugged pages)',
  invariant:
    'Every successful kvm_write_guest that names its translation (hfn, gen) writes the host frame its GPA is backed by at that moment ' +
    '(as the kvm_set_memory_region, host_ram_alloc/free and host_page_migrate records left the address space), through a translation ' +
    'taken after the last change of the memslot the GPA lies in.',
  options: {},
  events: eventSet(['host_ram_alloc', 'host_ram_free', 'host_page_migrate', 'kvm_set_memory_region', 'kvm_write_guest']),
  create(_opts, report) {
    const slots = new Map<number, Slot>();
    const lastChange = new Map<number, Change>();
    /** hva page -> host frame, for memory the VMM maps. */
    const ram = new Map<number, number>();
    /** What last happened to a host frame or hva page, for messages. */
    const frameNote = new Map<number, string>();
    const pageNote = new Map<number, string>();

    const slotOf = (gfn: number): [number, Slot] | undefined => {
      for (const [id, s] of slots) if (gfn >= s.gfn && gfn < s.gfn + s.count) return [id, s];
      return undefined;
    };

    return {
      onRecord(rec) {
        if (rec.src !== 'host') return;
        switch (rec.event) {
          case 'host_ram_alloc': {
            const { hva, count, hfn } = rec;
            for (let i = 0; i < count; i++) ram.set(pageOf(hva) + i, hfn + i);
            return;
          }
          case 'host_ram_free': {
            const { hva, count } = rec;
            for (let i = 0; i < count; i++) {
              const p = pageOf(hva) + i;
              const f = ram.get(p);
              if (f !== undefined) frameNote.set(f, `freed when the VMM unmapped its memory at ${at(rec.t)}`);
              ram.delete(p);
              pageNote.set(p, `unmapped at ${at(rec.t)}`);
            }
            return;
          }
          case 'host_page_migrate': {
            const { hva, new_hfn: to, old_hfn: from } = rec;
            if (!rec.ok) return;
            ram.set(pageOf(hva), to);
            pageNote.set(pageOf(hva), `migrated from host frame ${hex(from)} at ${at(rec.t)}`);
            frameNote.set(from, `left by a page migration at ${at(rec.t)}`);
            return;
          }
          case 'kvm_set_memory_region': {
            const { slot: id, change, gfn, count, hva, gen } = rec;
            if (change === 'delete') slots.delete(id);
            else slots.set(id, { gfn, count, hvaPage: pageOf(hva) });
            lastChange.set(id, { gen, t: rec.t, what: change === 'existing' || change === 'create' ? 'created' : change === 'delete' ? 'deleted' : `${change}d` });
            return;
          }
          case 'kvm_write_guest': {
            // `hfn` and `gen` are there once translations are traced (memslots configured or changed);
            // before that the area is identity-mapped and there is nothing stale to write through.
            const { hfn, gpa, value } = rec;
            if (!rec.ok || hfn === undefined) return;
            const gen = rec.gen ?? 0;
            const what =
              `host wrote ${rec.field} ${hex(value)} for cpu${rec.cpu} at gpa ${hex(gpa)} ` +
              `through host frame ${hex(hfn)} (a translation of generation ${gen})`;
            const gfn = Math.floor(gpa / PAGE_SIZE);
            const hit = slotOf(gfn);
            const note = frameNote.get(hfn);
            if (hit === undefined) {
              report(rec.t, rec.cpu, `${what}, but gpa ${hex(gpa)} is no longer guest RAM${note === undefined ? '' : `: that frame was ${note}`}`);
              return;
            }
            const [id, s] = hit;
            const page = s.hvaPage + (gfn - s.gfn);
            const cur = ram.get(page);
            if (cur === undefined) {
              report(rec.t, rec.cpu, `${what}, but the memory behind gpa ${hex(gpa)} was ${pageNote.get(page) ?? 'never mapped'}`);
            } else if (cur !== hfn) {
              const ch = lastChange.get(id);
              const why = pageNote.get(page) ?? (ch !== undefined && ch.gen > gen ? `memslot ${id} ${ch.what} at ${at(ch.t)}` : undefined);
              report(
                rec.t,
                rec.cpu,
                `${what}, but gpa ${hex(gpa)} is backed by host frame ${hex(cur)}${why === undefined ? '' : ` (${why})`}${note === undefined ? '' : `; the frame written was ${note}`}: the guest never sees this write`,
              );
            } else {
              const ch = lastChange.get(id);
              if (ch !== undefined && ch.gen > gen) {
                report(rec.t, rec.cpu, `${what}, but memslot ${id} was ${ch.what} at generation ${ch.gen} (${at(ch.t)}): the cached memslot no longer exists`);
              }
            }
            return;
          }
          default:
        }
      },
      finish() {},
    };
  },
});
