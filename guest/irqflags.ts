/** IRQ flags: irqs_disabled, local_irq_save/restore (RFLAGS.IF through cli/sti). */
import { insn, type Code } from './code';
import type { GuestKernel } from './kernel';

/** irqs_disabled(): RFLAGS.IF of this CPU (what pushf would read). */
export const irqsDisabled = (k: GuestKernel): boolean => !k.cpu().vcpu.ifFlag;

/** local_irq_save: pushf; cli. Returns whether IRQs were on. */
export function* localIrqSave(k: GuestKernel): Code<boolean> {
  const was = k.cpu().vcpu.ifFlag;
  yield insn.cli();
  return was;
}

export function* localIrqRestore(_k: GuestKernel, was: boolean): Code {
  if (was) yield insn.sti();
}
