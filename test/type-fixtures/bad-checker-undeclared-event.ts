// A checker dispatching on an event it did not declare in `events` (it would never be delivered).
import { defineChecker, eventSet } from '../../harness/checkers/types';

export const partial = defineChecker({
  name: 'partial',
  description: 'a checker that forgot to declare an event',
  invariant: '',
  options: {},
  events: eventSet(['kvm_async_pf_not_present']),
  create(_opts, report) {
    return {
      onRecord(rec) {
        switch (rec.event) {
          case 'kvm_async_pf_not_present':
            return;
          case 'kvm_async_pf_ready': // error
            return;
        }
        report(rec.t, rec.cpu, 'unreachable');
      },
      finish() {},
    };
  },
});
