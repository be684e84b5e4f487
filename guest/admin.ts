/**
 * Administrative requests from outside the guest (the harness's injected events), delivered by a
 * "management console" device: the request lands in the device's mailbox and the device raises
 * MGMT_VECTOR on the CPU that must act. The interrupt handler queues the work in the right
 * context on the right CPU (lifecycle.ts).
 */

/** The management console device's interrupt vector (a device vector in Linux's 0x20-0xef range). */
export const MGMT_VECTOR = 0x40;

export const ADMIN_ACTIONS = [
  'offline',
  'online',
  'suspend',
  'resume',
  'reboot',
  'kexec',
  'crash',
  'apf_disable',
  'apf_enable',
  'lapic_disable',
  'lapic_enable',
] as const;

/**
 * - `offline` / `online`: CPU hot-unplug / hotplug of the named CPU (online is driven from another
 *   online CPU with an INIT IPI).
 * - `suspend` / `resume`: system suspend (non-boot CPUs offlined, syscore suspend on CPU 0) and
 *   wake-up (always handled on CPU 0).
 * - `reboot`, `kexec`: the reboot notifier path started on the named CPU; `crash`: panic + kdump
 *   shutdown on the named CPU.
 * - `apf_disable` / `apf_enable`: kvm_pv_disable_apf / kvm_guest_cpu_init on the named CPU.
 * - `lapic_disable` / `lapic_enable`: software-disable / enable the named CPU's LAPIC (SPIV).
 */
export type AdminAction = (typeof ADMIN_ACTIONS)[number];

export function isAdminAction(s: string): s is AdminAction {
  return (ADMIN_ACTIONS as readonly string[]).includes(s);
}
