/** The fatal signals the kernel sends (x86 Linux numbers); a task exits with 128 + the number. */
export const SIGILL = 4;
export const SIGBUS = 7;
export const SIGSEGV = 11;
