/**
 * The guest's x2APIC driver: every LAPIC access is a WRMSR to the x2APIC MSR range (SDM facts,
 * see the host's in-kernel LAPIC): SPIV software enable (bit 8) with spurious vector 0xff, EOI,
 * the LVT timer in TSC-deadline mode with IA32_TSC_DEADLINE in virtual ns, and IPIs through ICR
 * (vector 7:0, delivery mode 10:8, destination in 63:32). The encodings, and EOI and IPIs through
 * the kernel's checked MSR accessor (msr.ts); the LAPIC bring-up is in lifecycle.ts.
 */
import { X86_MSR } from '../shared-abi/msr';
import { LINUX_VECTOR } from '../shared-abi/vectors';
import { insn, type Code } from './code';
import type { GuestKernel } from './kernel';
import { kwrmsr } from './msr';

/** SPIV bit 8: APIC software enable. */
export const APIC_SPIV_ENABLE = 1 << 8;
/** LVT mask bit. */
export const APIC_LVT_MASKED = 1 << 16;
/** LVT timer mode bits 18:17 = 10: TSC-deadline. */
export const APIC_LVT_TSC_DEADLINE = 2 << 17;
/** ICR delivery modes (bits 10:8). */
export const ICR_FIXED = 0;
export const ICR_NMI = 4;
export const ICR_INIT = 5;
export const ICR_STARTUP = 6;
/**
 * The SIPI vector of the model's real-mode trampoline (its page number): Linux places the
 * trampoline in low memory at boot; the model's guest code does not depend on the value.
 */
export const TRAMPOLINE_SIPI_VECTOR = 0x9a;

export const LOCAL_TIMER_VECTOR = LINUX_VECTOR.LOCAL_TIMER_VECTOR;
export const RESCHEDULE_VECTOR = LINUX_VECTOR.RESCHEDULE_VECTOR;
export const CALL_FUNCTION_VECTOR = LINUX_VECTOR.CALL_FUNCTION_VECTOR;
export const SPURIOUS_APIC_VECTOR = LINUX_VECTOR.SPURIOUS_APIC_VECTOR;

/** Software-disable the LAPIC (lapic_shutdown / disable_local_APIC), used from NMI context. */
export function* lapicDisable(): Code {
  yield insn.wrmsr(X86_MSR.X2APIC_SPIV, BigInt(SPURIOUS_APIC_VECTOR));
}

/** ICR value for an IPI. */
export function icrValue(dest: number, mode: number, vector: number): bigint {
  return (BigInt(dest) << 32n) | BigInt(((mode & 7) << 8) | (vector & 0xff));
}

/** EOI: ack the interrupt being serviced. */
export function* eoi(k: GuestKernel): Code {
  yield* kwrmsr(k, X86_MSR.X2APIC_EOI, 0n);
}

/** A fixed-mode IPI with `vector` to CPU `dest` (addressed by its x2APIC id). */
export function* sendIpi(k: GuestKernel, dest: number, vector: number): Code {
  k.count('ipi_sent');
  yield* kwrmsr(k, X86_MSR.X2APIC_ICR, icrValue(k.apicId(dest), ICR_FIXED, vector));
}

/** smp_send_reschedule. */
export function* sendReschedule(k: GuestKernel, dest: number): Code {
  k.count('resched_ipi_sent');
  yield* sendIpi(k, dest, RESCHEDULE_VECTOR);
}
