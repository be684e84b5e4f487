/**
 * The kernel's MSR accessors: wrmsrl/rdmsrl with an exception-table entry, so a #GP from the
 * host (an MSR it does not know, a reserved bit) is fixed up and warned about instead of oopsing.
 */
import type { Insn } from '../shared-abi/arch';
import { insn, underFixup, type Code, type Fixed } from './code';
import type { GuestKernel } from './kernel';

export type { Fixed } from './code';

/** Execute `i` on the running frame with an exception-table entry (see `underFixup`). */
export function withFixup(k: GuestKernel, i: Insn): Code<Fixed> {
  return underFixup(k.runningFrame(), i);
}

/** wrmsrl: a #GP is fixed up by the exception table (warning "unchecked MSR access error"). */
export function* kwrmsr(k: GuestKernel, msr: number, value: bigint): Code<boolean> {
  const r = yield* withFixup(k, insn.wrmsr(msr, value));
  return r.ok;
}

/** rdmsrl with the exception-table fixup: null after a #GP. */
export function* krdmsr(k: GuestKernel, msr: number): Code<bigint | null> {
  const r = yield* withFixup(k, insn.rdmsr(msr));
  if (!r.ok) return null;
  return typeof r.value === 'bigint' ? r.value : BigInt(Number(r.value ?? 0));
}
