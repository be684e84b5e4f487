/**
 * guest-warn: the guest kernel printed no WARN. A WARN is the kernel saying one of its own
 * assumptions broke (an unchecked MSR access, unexpected async-PF flags, a lock unlocked twice);
 * a scenario that means to provoke one expects this checker to fire.
 */
import { defineChecker, eventSet, str } from './types';

export const guestWarn = defineChecker({
  name: 'guest-warn',
  description: 'no guest WARN (unless the scenario expects one)',
  invariant: 'No `warn` record from the guest kernel.',
  options: {},
  create(_opts, report) {
    const seen = new Set<string>();
    return {
      events: eventSet(['warn']),
      onRecord(rec) {
        if (rec.event !== 'warn' || rec.src !== 'guest') return;
        const msg = str(rec, 'message') ?? 'WARN';
        if (seen.has(msg)) return;
        seen.add(msg);
        report(rec.t, rec.cpu, `guest WARN: ${msg}`);
      },
      finish() {},
    };
  },
});
