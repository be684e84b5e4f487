/**
 * x86 exception classes (SDM Vol. 3 §6.15, "Conditions for Generating a Double Fault") and the
 * rule for combining an exception raised while another is being delivered. Used by the CPU when
 * an IDT gate is missing and by the hypervisor when it queues a second exception on top of a
 * pending one (KVM's kvm_multiple_exception).
 */
export type ExceptionClass = 'benign' | 'contributory' | 'page_fault' | 'double_fault';

import { X86_EXCEPTION } from '../../shared-abi/vectors';

// The architectural vectors, under the short names the CPU model uses (the values live in shared-abi).
export const VEC_DE = X86_EXCEPTION.DE;
export const VEC_NMI = X86_EXCEPTION.NMI;
export const VEC_UD = X86_EXCEPTION.UD;
export const VEC_DF = X86_EXCEPTION.DF;
export const VEC_TS = X86_EXCEPTION.TS;
export const VEC_NP = X86_EXCEPTION.NP;
export const VEC_SS = X86_EXCEPTION.SS;
export const VEC_GP = X86_EXCEPTION.GP;
export const VEC_PF = X86_EXCEPTION.PF;
export const VEC_MC = X86_EXCEPTION.MC;

export function exceptionClass(vector: number): ExceptionClass {
  switch (vector) {
    case VEC_DE:
    case VEC_TS:
    case VEC_NP:
    case VEC_SS:
    case VEC_GP:
      return 'contributory';
    case VEC_PF:
      return 'page_fault';
    case VEC_DF:
      return 'double_fault';
    default:
      return 'benign';
  }
}

/** Exceptions that push an error code. */
export function hasErrorCode(vector: number): boolean {
  return vector === VEC_DF || (vector >= VEC_TS && vector <= VEC_PF) || vector === X86_EXCEPTION.AC || vector === X86_EXCEPTION.CP;
}

/**
 * What the CPU does when `second` is raised while delivering `first`:
 * deliver `second` after `first` ('serial'), turn both into #DF ('double_fault'), or shut down
 * ('triple_fault').
 */
export function combineExceptions(first: number, second: number): 'serial' | 'double_fault' | 'triple_fault' {
  const a = exceptionClass(first);
  const b = exceptionClass(second);
  if (a === 'double_fault') return 'triple_fault';
  if (a === 'contributory' && b === 'contributory') return 'double_fault';
  if (a === 'page_fault' && (b === 'contributory' || b === 'page_fault')) return 'double_fault';
  return 'serial';
}
