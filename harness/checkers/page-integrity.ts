/**
 * page-integrity: a page's contents survive eviction and fault-in byte for byte (the host's
 * checksum at page-in equals the one at eviction), and what a task reads from a word is what it
 * last wrote there.
 */
import { at, defineChecker, eventSet, flag, hex, num, str } from './types';
import { bool } from '../scenario/scalars';

export const pageIntegrity = defineChecker({
  name: 'page-integrity',
  description: 'every page intact after eviction and fault-in; reads return what was written',
  invariant:
    'For every gfn, the checksum at host_page_fault_in equals the checksum at its last host_page_evict; and a task reading a word it ' +
    'wrote earlier reads back the value it wrote.',
  options: { data: bool('data').optional().meta({ description: 'Also compare task reads with the task\'s earlier writes (default true).' }) },
  create(opts, report) {
    const checkData = opts.data ?? true;
    const evicted = new Map<number, { checksum: number; t: number }>();
    const written = new Map<string, { value: number; t: number }>();
    return {
      events: eventSet(['host_page_evict', 'host_page_fault_in', 'task_access', 'task_exit']),
      onRecord(rec) {
        switch (rec.event) {
          case 'host_page_evict': {
            const gfn = num(rec, 'gfn');
            const sum = num(rec, 'checksum');
            if (gfn !== undefined && sum !== undefined) evicted.set(gfn, { checksum: sum, t: rec.t });
            return;
          }
          case 'host_page_fault_in': {
            const gfn = num(rec, 'gfn');
            const sum = num(rec, 'checksum');
            if (gfn === undefined || sum === undefined || flag(rec, 'ok') === false) return;
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
            const task = str(rec, 'task');
            const gva = num(rec, 'gva');
            const value = num(rec, 'value');
            if (task === undefined || gva === undefined || value === undefined) return;
            const key = `${task}@${gva}`;
            if (flag(rec, 'write') === true) {
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
            const task = str(rec, 'task');
            if (task === undefined) return;
            for (const k of written.keys()) if (k.startsWith(task + '@')) written.delete(k);
            return;
          }
        }
      },
      finish() {},
    };
  },
});
