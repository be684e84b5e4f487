/**
 * guest-warn: the guest kernel printed no WARN. A WARN is the kernel saying one of its own
 * assumptions broke (an unchecked MSR access, unexpected async-PF flags, a lock unlocked twice);
 * a scenario that means to provoke one expects this checker to fire.
 */
import { defineChecker, eventSet } from './types';

export const guestWarn = defineChecker({
  name: 'guest-warn',
  description: 'no guest WARN (unless the scenario expects one)',
  invariant: 'No `warn` record from the guest kernel.',
  options: {},
  events: eventSet(['warn']),
  create(_opts, report) {
    const seen = new Set<string>();
    return {
      onRecord(rec) {
        if (rec.event !== 'warn' || rec.src !== 'guest') return;
        const msg = rec.message;
        if (seen.has(msg)) return;
        seen.add(msg);
        report(rec.t, rec.cpu, `guest WARN: ${msg}`);
      },
      finish() {},
    };
  },
});
