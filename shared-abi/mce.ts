/**
 * Architectural x86 machine-check registers (SDM vol. 3B ch. 16; not in the APF spec), as far as a
 * VMM's injected "action required" memory error uses them: QEMU's kvm_mce_inject (on SIGBUS
 * BUS_MCEERR_AR for a guest page) fills one bank and sets MCG_STATUS, then injects #MC (vector 18).
 * The guest's do_machine_check reads them to decide between SIGBUS, an exception-table fixup and a
 * panic. The model has one bank (bank 0).
 */

export const MSR_IA32_MCG_STATUS = 0x17a;
export const MSR_IA32_MC0_STATUS = 0x401;
export const MSR_IA32_MC0_ADDR = 0x402;

/** MCG_STATUS: restart IP valid. */
export const MCG_STATUS_RIPV = 1n << 0n;
/** MCG_STATUS: error IP valid (the interrupted instruction is the one that consumed the error). */
export const MCG_STATUS_EIPV = 1n << 1n;
/** MCG_STATUS: machine check in progress. */
export const MCG_STATUS_MCIP = 1n << 2n;

export const MCI_STATUS_VAL = 1n << 63n;
export const MCI_STATUS_UC = 1n << 61n;
export const MCI_STATUS_EN = 1n << 60n;
export const MCI_STATUS_ADDRV = 1n << 58n;
export const MCI_STATUS_S = 1n << 56n;
export const MCI_STATUS_AR = 1n << 55n;
/** MCACOD of a data-load error (as QEMU's BUS_MCEERR_AR injection uses). */
export const MCI_STATUS_MCACOD_DATA_LOAD = 0x134n;

/** The MCi_STATUS QEMU writes for an action-required (SRAR) memory error. */
export const MCI_STATUS_SRAR =
  MCI_STATUS_VAL | MCI_STATUS_UC | MCI_STATUS_EN | MCI_STATUS_ADDRV | MCI_STATUS_S | MCI_STATUS_AR | MCI_STATUS_MCACOD_DATA_LOAD;

/** Whether a bank's status describes a recoverable action-required error (the guest can kill or fix up). */
export const isSrar = (status: bigint): boolean => (status & (MCI_STATUS_VAL | MCI_STATUS_S | MCI_STATUS_AR)) === (MCI_STATUS_VAL | MCI_STATUS_S | MCI_STATUS_AR);

/** The MCi_STATUS of an action-optional (SRAO) memory error: the page is bad, nothing consumed it yet. */
export const MCI_STATUS_SRAO = MCI_STATUS_VAL | MCI_STATUS_UC | MCI_STATUS_EN | MCI_STATUS_ADDRV | MCI_STATUS_S | 0xc0n;

/** Whether a bank's status describes an action-optional error. */
export const isSrao = (status: bigint): boolean => (status & (MCI_STATUS_VAL | MCI_STATUS_S | MCI_STATUS_AR)) === (MCI_STATUS_VAL | MCI_STATUS_S);
