/**
 * Holding a vCPU thread outside the guest: while it waits for a page it needs (in the kernel or in
 * userspace after an exit), or while the VMM has it paused for a migration's switch-over. The same
 * counter `KvmVcpu.stalls` as the synchronous fault-in uses, so the two compose.
 */
import type { KvmVcpu } from '../kvm';
import { preemptBusy, scheduleRun } from '../x86/run';

/** The vCPU thread stops entering the guest until a matching `unstallVcpu`. */
export function stallVcpu(v: KvmVcpu): void {
  v.stalls++;
  // A compute instruction in flight ends now, as on a kick (the thread leaves the guest).
  if (v.thread === 'busy') preemptBusy(v);
  if (v.thread === 'scheduled') {
    if (v.event !== null) v.event.cancel();
    v.event = null;
    v.thread = 'stalled';
  }
  v.entryNeeded = true;
}

/** Undo one `stallVcpu`; the last one lets the thread run again (a blocked, e.g. halted, thread stays blocked). */
export function unstallVcpu(v: KvmVcpu): void {
  if (v.stalls > 0) v.stalls--;
  if (v.stalls > 0 || v.life !== 'alive') return;
  // 'scheduled' without an event: woken while stalled, the entry found it stalled and stopped.
  if (v.thread === 'stalled' || (v.thread === 'scheduled' && v.event === null)) {
    v.entryNeeded = true;
    scheduleRun(v, 0);
  }
}
