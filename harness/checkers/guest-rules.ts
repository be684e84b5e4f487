/**
 * guest-rules: the guest's async-PF handlers follow the ABI's rules, and a broken rule is named
 * where it is broken, not by the hang or the lost event it causes later:
 * - the kernel's debug checks on its handlers (`apf_handler_rule` records: the page-ready order
 *   token read → slot := 0 → ACK, flags read-and-reset, enabled flag and MSR in step);
 * - the host treated a write of MSR_KVM_ASYNC_PF_EN with the enable bit set as a disable because
 *   DELIVERY_AS_INT was missing (v5.8+ hosts require it): async PF silently off on that vCPU;
 * - a guest wait on a token the host never injected (an ordinary #PF taken for an async one);
 * - guest WARNs (unless the scenario expects them: turn the checker off or expect it to fire).
 */
import { KVM_ASYNC_PF_DELIVERY_AS_INT, KVM_ASYNC_PF_ENABLED } from '../../shared-abi/msr';
import { defineChecker, eventSet, hex } from './types';

export const guestRules = defineChecker({
  name: 'guest-rules',
  description: 'the guest\'s kvm.c handlers keep the ABI\'s rules (page-ready order, flags reset, enable bits, waits on real tokens)',
  invariant:
    'No apf_handler_rule record; no MSR_KVM_ASYNC_PF_EN write with the enable bit whose missing DELIVERY_AS_INT made the host disable async PF; ' +
    'no guest wait on a token the host did not inject.',
  options: {},
  events: eventSet(['apf_handler_rule', 'kvm_async_pf_disable', 'kvm_async_pf_not_present', 'kvm_nested_apf_vmexit', 'kvm_async_pf_task_wait_schedule', 'kvm_async_pf_task_wait_halt']),
  create(_opts, report) {
    /** Tokens the host injected as async #PF (not present), ever. */
    const injected = new Set<number>();
    const seen = new Set<string>();
    const once = (key: string, t: number, cpu: number, message: string): void => {
      if (seen.has(key)) return;
      seen.add(key);
      report(t, cpu, message);
    };
    return {
      onRecord(rec) {
        switch (rec.event) {
          case 'apf_handler_rule':
            once(`rule:${rec.rule}`, rec.t, rec.cpu, rec.message);
            return;
          case 'kvm_async_pf_disable': {
            const en = rec.msr_en_val;
            if ((en & KVM_ASYNC_PF_ENABLED) !== 0n && (en & KVM_ASYNC_PF_DELIVERY_AS_INT) === 0n) {
              once(
                `no-int:${rec.cpu}`,
                rec.t,
                rec.cpu,
                `guest enabled APF (MSR_KVM_ASYNC_PF_EN 0x${en.toString(16)}) without DELIVERY_AS_INT on a host that requires it: the host takes the write as a disable, async PF is off on cpu${rec.cpu} and every fault there is handled synchronously`,
              );
            }
            return;
          }
          case 'kvm_async_pf_not_present':
          case 'kvm_nested_apf_vmexit': {
            injected.add(rec.token >>> 0);
            return;
          }
          case 'kvm_async_pf_task_wait_schedule':
          case 'kvm_async_pf_task_wait_halt': {
            const tok = rec.token;
            if (injected.has(tok >>> 0)) return;
            once(
              `bogus:${tok}`,
              rec.t,
              rec.cpu,
              `task ${rec.task} waits on token ${hex(tok)}, which the host never injected as an async #PF: an ordinary #PF was taken for an async one (stale flags, a late CR2 read or a changed token), and no page-ready will ever carry it`,
            );
            return;
          }
          default:
            return;
        }
      },
      finish() {},
    };
  },
});
