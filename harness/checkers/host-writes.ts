/**
 * host-writes: the host writes into guest memory, on behalf of the APF protocol, only bytes 0–7
 * of the area the vCPU registered in MSR_KVM_ASYNC_PF_EN (flags and token), and nothing at all
 * once APF is disabled, the vCPU was reset, or the guest kernel that registered the area is gone
 * (kexec, reboot without disabling; a crash, for the crashing CPU's area).
 *
 * A crash tears down APF on the crashing CPU only (kvm_crash_shutdown); the NMI shootdown stops the
 * other CPUs with their areas still registered, so the host completing their page-ins there keeps
 * to the ABI and is not reported (the kdump kernel traces it as `kdump_area_changed`).
 */
import { at, defineChecker, eventSet, hex, isKernelGone, KERNEL_GONE } from './types';

type Reg = { readonly on: true; readonly base: number; readonly t: number } | { readonly on: false; readonly why: string; readonly t: number };

export const hostWrites = defineChecker({
  name: 'host-writes',
  description: 'host writes only bytes 0-7 of the registered area, and nothing after a disable',
  invariant:
    'Every kvm_write_guest lies within bytes 0–7 of the area registered by the last successful enable on that vCPU, and none happens ' +
    'while APF is disabled, after INIT/RESET, or after the guest kernel that registered the area kexec\'d or rebooted, or crashed on that CPU ' +
    '(a crash leaves the other CPUs\' areas registered).',
  options: {},
  events: eventSet(['kvm_async_pf_enable', 'kvm_async_pf_disable', 'kvm_vcpu_reset', 'kvm_vcpu_init', 'kvm_write_guest'], KERNEL_GONE),
  create(_opts, report) {
    const regs = new Map<number, Reg>();
    const unregister = (cpu: number, t: number, why: string): void => {
      if (cpu < 0) {
        for (const [c, r] of regs) if (r.on) regs.set(c, { on: false, why, t });
        return;
      }
      regs.set(cpu, { on: false, why, t });
    };
    return {
      onRecord(rec) {
        switch (rec.event) {
          case 'kvm_async_pf_enable': {
            regs.set(rec.cpu, { on: true, base: rec.gpa, t: rec.t });
            return;
          }
          case 'kvm_async_pf_disable':
            unregister(rec.cpu, rec.t, 'APF was disabled');
            return;
          case 'kvm_vcpu_reset':
          case 'kvm_vcpu_init':
            unregister(rec.cpu, rec.t, `the vCPU was reset (${rec.event})`);
            return;
          case 'kvm_write_guest': {
            // A failed write (-EFAULT: the area could not be mapped) reached no guest memory.
            if (rec.ok === false) return;
            const { gpa, len, field } = rec;
            const r = regs.get(rec.cpu);
            if (r === undefined) {
              report(rec.t, rec.cpu, `host wrote ${field} (${len} bytes at gpa ${hex(gpa)}) for cpu${rec.cpu}, which never registered an APF area`);
            } else if (!r.on) {
              report(rec.t, rec.cpu, `host wrote ${field} (${len} bytes at gpa ${hex(gpa)}) for cpu${rec.cpu} after ${r.why} at ${at(r.t)}`);
            } else if (gpa < r.base || gpa + len > r.base + 8) {
              report(
                rec.t,
                rec.cpu,
                `host wrote ${field} at bytes ${gpa - r.base}..${gpa - r.base + len - 1} of the area at ${hex(r.base)}: only bytes 0-7 (flags, token) may be written`,
              );
            }
            return;
          }
          default:
            if (rec.src !== 'guest' || !isKernelGone(rec.event)) return;
            // A crash: only the crashing CPU tore its area down (or, without the fix, left it to the kdump kernel).
            unregister(rec.event === 'crash' ? rec.cpu : -1, rec.t, `the guest kernel that registered the area went away (${rec.event})`);
        }
      },
      finish() {},
    };
  },
});
