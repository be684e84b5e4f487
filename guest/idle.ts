/** The idle task: cpu_idle_loop with tickless idle (sti;hlt), and play_dead for an offlined CPU. */
import { insn, type Code } from './code';
import type { GuestKernel } from './kernel';
import { haltForever } from './panic';
import { schedule } from './sched';
import { reprogramTimer } from './timer';

/** The idle task's program: `prelude` (boot or CPU bring-up), then cpu_idle_loop forever. */
export function* idleProgram(k: GuestKernel, prelude: Code): Code<never> {
  yield* prelude;
  for (;;) {
    if (k.cpu().state === 'dying') yield* playDead(k);
    if (k.idleRead !== null) {
      // Idle-time kernel work with interrupts on (the PAUSE leaves the STI shadow first).
      yield insn.sti();
      yield insn.pause();
      yield insn.load(k.idleRead, 8);
    }
    yield insn.cli();
    let pc = k.cpu();
    pc.tickDeadline = Infinity;
    yield* reprogramTimer(k);
    for (;;) {
      pc = k.cpu();
      if (pc.curr.needResched || pc.queue.length > 0 || pc.state === 'dying') break;
      yield insn.stiHlt();
      yield insn.cli();
    }
    if (pc.state !== 'dying') {
      pc.tickDeadline = k.sim.now + k.tickNs;
      yield* reprogramTimer(k);
    }
    yield insn.sti();
    yield* schedule(k);
  }
}

/** A dead CPU: the idle task parks in cli;hlt until INIT. */
export function* playDead(k: GuestKernel): Code<never> {
  return yield* haltForever(k, 'offline');
}
