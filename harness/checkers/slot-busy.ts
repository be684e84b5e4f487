/**
 * slot-busy: the host writes a page-ready token only into a free slot (token field 0), and a
 * not-present reason only when the guest has consumed the previous one. The guest frees the
 * token slot by writing 0 (`apf_token_clear`) and consumes flags with a read-and-reset at #PF
 * entry (`kvm_read_and_reset_apf_flags`).
 */
import { at, defineChecker, eventSet, hex } from './types';

interface Slot {
  value: number;
  t: number;
}

export const slotBusy = defineChecker({
  name: 'slot-busy',
  description: 'no page-ready written while the token slot is busy (nor flags over unread flags)',
  invariant:
    'The host writes a non-zero token only when the token slot is free (the guest wrote 0 since the last token), and a non-zero ' +
    'flags/reason only when the guest has read-and-reset the previous one.',
  options: {},
  events: eventSet(['kvm_write_guest', 'apf_token_clear', 'kvm_async_pf_ack', 'kvm_read_and_reset_apf_flags', 'bare_exception', 'kvm_async_pf_enable']),
  create(_opts, report) {
    const tokens = new Map<number, Slot>();
    const flags = new Map<number, Slot>();
    // Guests that trace their token clears (the guest kernel) are checked strictly; a guest that
    // does not (the bare-metal script) is taken at its word when it ACKs.
    let tracesClears = false;
    return {
      onRecord(rec) {
        switch (rec.event) {
          case 'kvm_write_guest': {
            // A failed write (-EFAULT: no usable area) changed nothing in the slot.
            if (!rec.ok) return;
            const { field, value } = rec;
            const slots = field === 'token' ? tokens : flags;
            if (value === 0) {
              slots.delete(rec.cpu);
              return;
            }
            const cur = slots.get(rec.cpu);
            if (cur !== undefined) {
              report(
                rec.t,
                rec.cpu,
                field === 'token'
                  ? `host wrote page-ready token ${hex(value)} on cpu${rec.cpu} while the slot still held ${hex(cur.value)} (written at ${at(cur.t)}, not yet cleared by the guest): that event is lost`
                  : `host wrote ${field}=${value} on cpu${rec.cpu} while ${field}=${cur.value} from ${at(cur.t)} was still unread: the earlier event is lost`,
              );
            }
            slots.set(rec.cpu, { value, t: rec.t });
            return;
          }
          case 'apf_token_clear':
            tracesClears = true;
            tokens.delete(rec.cpu);
            return;
          case 'kvm_async_pf_ack':
            if (!tracesClears) tokens.delete(rec.cpu);
            return;
          case 'kvm_read_and_reset_apf_flags':
            flags.delete(rec.cpu);
            return;
          case 'bare_exception':
            if (rec.vector === 14) flags.delete(rec.cpu);
            return;
          case 'kvm_async_pf_enable':
            tokens.delete(rec.cpu);
            flags.delete(rec.cpu);
            return;
        }
      },
      finish() {},
    };
  },
});
