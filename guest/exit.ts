/** do_exit: the task's last trip through schedule(). */
import { GuestCodeError, insn, type Code } from './code';
import type { GuestKernel } from './kernel';
import { schedule } from './sched';

/** do_exit. */
export function* doExit(k: GuestKernel, code: number): Code<never> {
  const t = k.current();
  if (t.locksHeld.length > 0) k.warn(`BUG: ${t.name}/${t.id} is exiting with locks held: ${t.locksHeld.join(', ')}`);
  t.exitCode = code;
  k.emit(k.cpu().id, 'task_exit', { task: t.name, code });
  yield insn.sti();
  t.preemptCount = 0;
  t.rcuDepth = 0;
  t.state = 'dead';
  yield* schedule(k);
  throw new GuestCodeError(`task ${t.name} ran after do_exit`);
}
