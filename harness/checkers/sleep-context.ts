/**
 * sleep-context: the guest never sleeps where it must not: in atomic context (preemption off,
 * spinlock held), with IRQs off, or inside an RCU read-side section. The guest kernel's own
 * self-checks report these as `bug` records (like the kernel's "BUG: scheduling while atomic").
 */
import { defineChecker, eventSet } from './types';

const KIND_TEXT: Readonly<Record<string, string>> = {
  scheduling_while_atomic: 'scheduling while atomic',
  sleeping_in_invalid_context: 'sleeping function called from invalid context (IRQs off)',
  rcu_sleep: 'sleeping inside an RCU read-side critical section',
  sleeping_alloc_in_atomic: 'sleeping allocation in atomic context',
};

export const sleepContext = defineChecker({
  name: 'sleep-context',
  description: 'no guest sleep in atomic, IRQ-off or RCU context',
  invariant: 'No guest task schedules away while preemption is disabled, a spinlock is held, IRQs are off, or in an RCU read-side section.',
  options: {},
  events: eventSet(['bug']),
  create(_opts, report) {
    return {
      onRecord(rec) {
        // Routing delivers `bug` records only; the unrouted reference (checker-routing.test.ts) delivers all.
        if (rec.event !== 'bug') return;
        report(rec.t, rec.cpu, `BUG: ${KIND_TEXT[rec.kind] ?? rec.kind} (task ${rec.task}): ${rec.message}`);
      },
      finish() {},
    };
  },
});
