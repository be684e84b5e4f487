/**
 * page-integrity: a page's contents survive eviction and fault-in byte for byte (the host's
 * checksum at page-in equals the one at eviction), and what a task reads from a word is what it
 * last wrote there.
 */
import { at, defineChecker, eventSet, hex } from './types';
import { bool } from '../scenario/scalars';

export const pageIntegrity = defineChecker({
  name: 'page-integrity',
  description: 'every page intact after eviction and fault-in; reads return what was written',
  invariant:
    'For every gfn, the checksum at host_page_fault_in equals the checksum at its last host_page_evict; and a task reading a word it ' +
    'wrote earlier reads back the value it wrote.',
  options: { data: bool('data').optional().meta({ description: 'Also compare task reads with the task\'s earlier writes (default true).' }) },
  events: eventSet(['host_page_evict', 'host_page_fault_in', 'task_access', 'task_exit']),
  create(opts, report) {
    const checkData = opts.data ?? true;
    const evicted = new Map<number, { checksum: number; t: number }>();
    const written = new Map<string, { value: number; t: number }>();
    return {
      onRecord(rec) {
        switch (rec.event) {
          case 'host_page_evict': {
            evicted.set(rec.gfn, { checksum: rec.checksum, t: rec.t });
            return;
          }
          case 'host_page_fault_in': {
            const { gfn, checksum: sum } = rec;
            if (!rec.ok) return;
            const before = evicted.get(gfn);
            if (before === undefined) return;
            evicted.delete(gfn);
            if (before.checksum !== sum) {
              report(rec.t, rec.cpu, `gfn ${hex(gfn)} came back different: checksum ${hex(before.checksum)} at eviction (${at(before.t)}), ${hex(sum)} after fault-in`);
            }
            return;
          }
          case 'task_access': {
            if (!checkData) return;
            const { task, gva, value } = rec;
            const key = `${task}@${gva}`;
            if (rec.write) {
              written.set(key, { value, t: rec.t });
              return;
            }
            const w = written.get(key);
            if (w !== undefined && w.value !== value) {
              report(rec.t, rec.cpu, `task ${task} read ${hex(value)} at gva ${hex(gva)}, but it wrote ${hex(w.value)} there at ${at(w.t)}`);
            }
            return;
          }
          case 'task_exit': {
            const { task } = rec;
            for (const k of written.keys()) if (k.startsWith(task + '@')) written.delete(k);
            return;
          }
        }
      },
      finish() {},
    };
  },
});
