/** panic(): stop the other CPUs with NMIs and halt with IRQs off; and the halted-CPU loop. */
import { X86_MSR } from '../shared-abi/msr';
import { insn, type Code } from './code';
import type { GuestKernel } from './kernel';
import { icrValue, ICR_NMI } from './lapic';
import { kwrmsr } from './msr';

/**
 * panic(): record the message, stop the other CPUs with NMIs, and loop with IF=0 forever.
 */
export function* kernelPanic(k: GuestKernel, message: string): Code<never> {
  const first = k.panicked() === null;
  yield insn.cli();
  k.recordPanic(message);
  const me = k.cpu();
  if (first) {
    for (const c of k.cpus) {
      if (c.id !== me.id && (c.online || c.state === 'dying' || c.state === 'suspended')) {
        yield* kwrmsr(k, X86_MSR.X2APIC_ICR, icrValue(k.apicId(c.id), ICR_NMI, 0));
      }
    }
  }
  return yield* haltForever(k, 'stopped');
}

/** cli; hlt forever (a stopped or dead CPU). */
export function* haltForever(k: GuestKernel, state: 'stopped' | 'offline'): Code<never> {
  yield insn.cli();
  const pc = k.cpu();
  pc.state = state;
  pc.tickDeadline = Infinity;
  for (;;) yield insn.hlt();
}
