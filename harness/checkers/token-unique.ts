/**
 * token-unique: no APF token is handed out while an earlier fault with the same token is still
 * outstanding anywhere in the VM, and token 0 (which means "slot free") is never handed out.
 */
import { APF_DROP_EVENTS, apfDrop, at, defineChecker, eventSet, hex, WAKE_ALL } from './types';

export const tokenUnique = defineChecker({
  name: 'token-unique',
  description: 'no token outstanding twice in the VM; token 0 never used',
  invariant:
    'A token is outstanding from its kvm_async_pf_not_present until its page-ready or a documented drop; no second fault may get the same ' +
    'token in that window (in any vCPU), and no fault may get token 0, which the guest and host read as "slot free".',
  options: {},
  events: eventSet(['kvm_async_pf_not_present', 'kvm_async_pf_enable', 'kvm_async_pf_disable', 'kvm_async_pf_ready'], APF_DROP_EVENTS),
  create(_opts, report) {
    const live = new Map<number, { cpu: number; t: number }>();
    /** vCPUs whose page-ready goes through the token slot (enabled with DELIVERY_AS_INT): there 0 means "free". */
    const slotDelivery = new Set<number>();
    const dropCpu = (cpu: number): void => {
      for (const [tok, v] of live) if (cpu < 0 || v.cpu === cpu) live.delete(tok);
    };
    return {
      onRecord(rec) {
        switch (rec.event) {
          case 'kvm_async_pf_not_present': {
            const { token } = rec;
            if (token === 0 && slotDelivery.has(rec.cpu)) {
              report(
                rec.t,
                rec.cpu,
                `token 0 handed out on cpu${rec.cpu}: the token slot uses 0 for "free", so its page-ready cannot be told from an empty slot (hosts before the Feb 2022 fix hand out 0 for vCPU 0's first fault and whenever the counter wraps)`,
              );
            }
            const prev = live.get(token);
            if (prev !== undefined) {
              report(rec.t, rec.cpu, `token ${hex(token)} handed out on cpu${rec.cpu} while the fault that got it on cpu${prev.cpu} at ${at(prev.t)} is still outstanding`);
            }
            live.set(token, { cpu: rec.cpu, t: rec.t });
            return;
          }
          case 'kvm_async_pf_enable':
            if (rec.delivery_as_int) slotDelivery.add(rec.cpu);
            else slotDelivery.delete(rec.cpu);
            return;
          case 'kvm_async_pf_disable':
            slotDelivery.delete(rec.cpu);
            return;
          case 'kvm_async_pf_ready': {
            if (rec.token !== WAKE_ALL) live.delete(rec.token);
            return;
          }
          default: {
            const d = apfDrop(rec);
            if (d === undefined) return;
            if (d.kind === 'cpu') dropCpu(d.cpu);
            else for (const tok of d.tokens) live.delete(tok);
          }
        }
      },
      finish() {},
    };
  },
});
