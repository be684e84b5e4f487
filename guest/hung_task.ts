/** The hung-task detector: reports a task blocked in TASK_UNINTERRUPTIBLE past the timeout. */
import type { GuestKernel } from './kernel';
import { addTimer } from './timer';

/** Make sure a hung-task check is armed (called when a task enters TASK_UNINTERRUPTIBLE). */
export function armHungTask(k: GuestKernel): void {
  if (k.hungTaskTimeoutNs <= 0 || k.hungArmed) return;
  k.hungArmed = true;
  const period = Math.max(1, Math.round(k.hungTaskTimeoutNs / 4));
  addTimer(k.cpu(), k.newTimer(k.sim.now + period, 'hung_task', () => hungTaskCheck(k)));
}

function hungTaskCheck(k: GuestKernel): void {
  k.hungArmed = false;
  if (k.mode !== 'running') return;
  const now = k.sim.now;
  let pending = false;
  for (const t of k.allTasks) {
    if (t.state !== 'uninterruptible' || t.isIdle || t.onRq) continue;
    const blocked = now - t.sleepStart;
    if (!t.hungReported && blocked >= k.hungTaskTimeoutNs) {
      t.hungReported = true;
      k.count('hung_task');
      k.emit(k.cpu().id, 'hung_task', { task: t.name, blocked_ns: blocked });
      k.warnings.push(`INFO: task ${t.name}:${t.id} blocked for more than ${Math.floor(blocked / 1e9)} seconds.`);
    }
    if (!t.hungReported) pending = true;
  }
  if (pending) armHungTask(k);
}
