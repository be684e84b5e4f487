/**
 * What each instruction and each hardware action costs in virtual nanoseconds.
 *
 * The numbers are round figures of the right order for a modern x86 core, chosen so that
 * traces read naturally; scenarios that care about timing model it explicitly (compute ops,
 * host latencies). They are constants so that the same scenario always costs the same.
 */
export const COST = {
  /** A register-only instruction (sti, cli, pause, rdtsc, mov to/from CR). */
  simple: 1,
  /** A load or store that hits the TLB. */
  memory: 2,
  /** Extra cost of a TLB miss (a 4-level walk). */
  walk: 20,
  /** Delivering an event through the IDT, or returning with IRET. */
  vector: 50,
  /** SYSCALL / SYSRET. */
  syscall: 30,
} as const;
