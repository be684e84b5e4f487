/**
 * nested-state: restoring nested state on a post-copy migration destination works, and says why
 * when it does not (docs/nested.md): KVM_SET_NESTED_STATE fails, KVM_REQ_GET_NESTED_STATE_PAGES
 * fails at the first KVM_RUN (after the restore had "succeeded"), or a thread waits for ever for a
 * page still on the source — named with its vCPU, the page and who should have brought it in.
 */
import { ABRUPT_OUTCOMES, at, defineChecker, dur, eventSet, hex } from './types';

interface Wait {
  readonly cpu: number;
  readonly gfn: number;
  readonly page: string;
  readonly via: string;
  readonly from: string;
  readonly t: number;
}

export const nestedState = defineChecker({
  name: 'nested-state',
  description: 'nested state restored after a post-copy switch-over: no failed restore, no thread stuck on a remote page',
  invariant:
    'Every KVM_SET_NESTED_STATE succeeds and KVM_REQ_GET_NESTED_STATE_PAGES never fails; and at the end of a run that was not cut short, ' +
    'no vCPU or VMM thread still waits for a page that is on the migration source.',
  options: {},
  events: eventSet(['nested_migration', 'postcopy_listener_start', 'postcopy_page_request', 'postcopy_page_served', 'kvm_set_nested_state', 'kvm_get_nested_state_pages', 'kvm_nested_internal_error']),
  create(_opts, report) {
    const waits = new Map<string, Wait>();
    const failedFetch = new Set<number>();
    const internalReported = new Set<string>();
    let listener = '';
    let listenerRunning = false;
    const key = (cpu: number, gfn: number): string => `${cpu}:${gfn}`;
    return {
      onRecord(rec) {
        switch (rec.event) {
          case 'nested_migration':
            if (rec.phase === 'switchover') listener = rec.listener;
            return;
          case 'postcopy_listener_start':
            listenerRunning = true;
            return;
          case 'postcopy_page_request': {
            const { gfn } = rec;
            waits.set(key(rec.cpu, gfn), { cpu: rec.cpu, gfn, page: rec.page, via: rec.via, from: rec.from, t: rec.t });
            return;
          }
          case 'postcopy_page_served': {
            const { gfn } = rec;
            waits.delete(key(rec.cpu, gfn));
            if (!rec.ok) failedFetch.add(gfn);
            return;
          }
          case 'kvm_set_nested_state': {
            if (rec.ok) return;
            const { gfn, page } = rec;
            const why = failedFetch.has(gfn)
              ? 'the source could not send it'
              : 'it is still on the source, the VMM has no userfaultfd listener to wait on, and an ioctl cannot exit to userspace to ask for it the way a vCPU in KVM_RUN can';
            report(rec.t, rec.cpu, `KVM_SET_NESTED_STATE for vCPU ${rec.cpu} failed (-EFAULT) on gfn ${hex(gfn)} (${page}): ${why}. The migration is aborted before the destination runs`);
            return;
          }
          case 'kvm_get_nested_state_pages': {
            if (rec.ok) return;
            const { gfn } = rec;
            internalReported.add(key(rec.cpu, gfn));
            report(
              rec.t,
              rec.cpu,
              `KVM_REQ_GET_NESTED_STATE_PAGES failed at vCPU ${rec.cpu}'s first KVM_RUN: gfn ${hex(gfn)} (${rec.page}) could not be fetched from the source. ` +
                'KVM_SET_NESTED_STATE had already succeeded and the VM was running on the destination, so KVM_EXIT_INTERNAL_ERROR leaves nothing to do but kill it (L1 and its L2 guests are lost)',
            );
            return;
          }
          case 'kvm_nested_internal_error': {
            const { gfn } = rec;
            if (internalReported.has(key(rec.cpu, gfn))) return;
            report(rec.t, rec.cpu, `nested VM entry on vCPU ${rec.cpu} could not map gfn ${hex(gfn)} (${rec.page}): KVM_EXIT_INTERNAL_ERROR, the VM is killed`);
            return;
          }
        }
      },
      finish(end) {
        if (ABRUPT_OUTCOMES.has(end.outcome)) return;
        for (const w of waits.values()) {
          const who = w.from === 'set_nested_state' ? `The VMM's KVM_SET_NESTED_STATE for vCPU ${w.cpu}` : `vCPU ${w.cpu} (in KVM_RUN)`;
          let why: string;
          if (w.via === 'vcpu_exit') why = 'the vCPU exited to request it from the source, and it never came';
          else if (listenerRunning) why = 'the request sits in the userfaultfd listener\'s queue and was never served';
          else if (listener === 'never') why = 'the request is queued to a userfaultfd listener that the VMM never starts';
          else if (listener === 'after_set_nested_state') {
            why = 'the request is queued to the userfaultfd listener, which the VMM starts only after KVM_SET_NESTED_STATE returns, and that ioctl is the one waiting';
          } else why = 'the request is queued to a userfaultfd listener that is not running';
          report(end.t, w.cpu, `${who} has been blocked since ${at(w.t)} (${dur(end.t - w.t)}) on gfn ${hex(w.gfn)} (${w.page}), still on the migration source: ${why}. A hang`);
        }
      },
    };
  },
});
