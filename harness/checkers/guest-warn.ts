/**
 * guest-warn: the guest kernel printed no WARN. A WARN is the kernel saying one of its own
 * assumptions broke (an unchecked MSR access, unexpected async-PF flags, a lock unlocked twice);
 * a scenario that means to provoke one expects this checker to fire.
 */
import { defineChecker, eventSet } from './types';

/**
 * Messages the kernel logs through the same record that are not WARN()s in Linux (pr_warn /
 * pr_emerg / pr_info lines about the environment): an MSR access the exception table fixed up, an
 * interrupt on a vector with no handler, a task moved off a CPU that went offline.
 */
const NOT_A_WARN = /unchecked MSR access error|No irq handler for vector|unexpected interrupt on vector|no longer affine to cpu/;

export const guestWarn = defineChecker({
  name: 'guest-warn',
  description: 'no guest WARN (unless the scenario expects one)',
  invariant: 'No `warn` record from the guest kernel that is a WARN() in Linux (unchecked MSR access, unhandled vector and affinity-break messages are not).',
  options: {},
  events: eventSet(['warn']),
  create(_opts, report) {
    const seen = new Set<string>();
    return {
      onRecord(rec) {
        if (rec.event !== 'warn' || rec.src !== 'guest') return;
        const msg = rec.message;
        if (NOT_A_WARN.test(msg)) return;
        if (seen.has(msg)) return;
        seen.add(msg);
        report(rec.t, rec.cpu, `guest WARN: ${msg}`);
      },
      finish() {},
    };
  },
});
