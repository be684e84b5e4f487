/** Per-CPU timers on the LAPIC TSC deadline: queueing, reprogramming (tickless idle), expiry. */
import { X86_MSR } from '../shared-abi/msr';
import type { Code } from './code';
import type { GuestKernel, PerCpu } from './kernel';
import { kwrmsr } from './msr';
import type { KTimer } from './task';

export function addTimer(pc: PerCpu, t: KTimer): void {
  pc.timers.push(t);
  pc.timers.sort((a, b) => a.expires - b.expires || a.seq - b.seq);
}

function nextDeadline(pc: PerCpu): number {
  let d = pc.tickDeadline;
  for (const t of pc.timers) {
    if (t.cancelled) continue;
    if (t.expires < d) d = t.expires;
    break;
  }
  return d;
}

/** Program this CPU's TSC deadline for the next timer or tick (0 when there is none). */
export function* reprogramTimer(k: GuestKernel): Code {
  const pc = k.cpu();
  while (pc.timers.length > 0 && pc.timers[0]!.cancelled) pc.timers.shift();
  const next = nextDeadline(pc);
  const want = next === Infinity ? 0 : Math.max(Math.round(next), k.sim.now + 1);
  if (want === pc.programmed) return;
  if (want !== 0 && pc.programmed !== 0 && pc.programmed <= want) return; // an earlier deadline is armed; its handler reprograms
  pc.programmed = want;
  yield* kwrmsr(k, X86_MSR.IA32_TSC_DEADLINE, BigInt(want));
}

/** Run the expired timers of this CPU (timer interrupt context). */
export function* runTimers(k: GuestKernel): Code {
  const pc = k.cpu();
  for (;;) {
    const t = pc.timers[0];
    if (t === undefined || t.expires > k.sim.now) return;
    pc.timers.shift();
    if (t.cancelled) continue;
    t.cancelled = true;
    const c = t.fn();
    if (c !== undefined) yield* c;
  }
}
