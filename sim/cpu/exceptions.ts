/**
 * x86 exception classes (SDM Vol. 3 §6.15, "Conditions for Generating a Double Fault") and the
 * rule for combining an exception raised while another is being delivered. Used by the CPU when
 * an IDT gate is missing and by the hypervisor when it queues a second exception on top of a
 * pending one (KVM's kvm_multiple_exception).
 */
export type ExceptionClass = 'benign' | 'contributory' | 'page_fault' | 'double_fault';

export const VEC_DE = 0;
export const VEC_NMI = 2;
export const VEC_UD = 6;
export const VEC_DF = 8;
export const VEC_TS = 10;
export const VEC_NP = 11;
export const VEC_SS = 12;
export const VEC_GP = 13;
export const VEC_PF = 14;
export const VEC_MC = 18;

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
  return vector === VEC_DF || (vector >= VEC_TS && vector <= VEC_PF) || vector === 17 || vector === 21;
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
