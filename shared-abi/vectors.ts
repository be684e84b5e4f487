/**
 * Interrupt and exception vectors (spec §1.6): the architectural x86 exception vectors the
 * simulation uses, and the Linux x86 interrupt vectors.
 */

/** spec §1.6 (architectural x86): exception vectors the simulation uses. */
export const X86_EXCEPTION = {
  DE: 0,
  NMI: 2,
  UD: 6,
  DF: 8,
  TS: 10,
  NP: 11,
  SS: 12,
  GP: 13,
  PF: 14,
  AC: 17,
  MC: 18,
  CP: 21,
} as const;

/** spec §1.6: the #PF vector, used for "not present" (and ≤ v5.7 "page ready") delivery. */
export const PF_VECTOR = X86_EXCEPTION.PF;
/** spec §1.2/§1.3 (architectural x86): #GP, what a rejected MSR write injects. */
export const GP_VECTOR = X86_EXCEPTION.GP;
/** spec §1.6: error code of an async #PF (delivered with error-code-valid). */
export const ASYNC_PF_ERROR_CODE = 0;

/** Architectural x86 (not in the spec): vectors 0–31 are reserved for exceptions. */
export const NUM_EXCEPTION_VECTORS = 32;

/** Architectural x86 (not in the spec): whether a vector is in the exception range 0–31. */
export const isExceptionVector = (v: number): boolean => Number.isInteger(v) && v >= 0 && v < NUM_EXCEPTION_VECTORS;

/**
 * spec §1.6: Linux x86 interrupt vectors. Only HYPERVISOR_CALLBACK_VECTOR is from the spec; the
 * rest are Linux's irq_vectors.h values, given by the project brief.
 */
export const LINUX_VECTOR = {
  HYPERVISOR_CALLBACK_VECTOR: 0xf3,
  LOCAL_TIMER_VECTOR: 0xec,
  CALL_FUNCTION_VECTOR: 0xfc,
  RESCHEDULE_VECTOR: 0xfd,
  SPURIOUS_APIC_VECTOR: 0xff,
} as const;

/** spec §1.6: the vector a v5.9+ Linux guest programs into MSR_KVM_ASYNC_PF_INT. */
export const HYPERVISOR_CALLBACK_VECTOR = LINUX_VECTOR.HYPERVISOR_CALLBACK_VECTOR;
