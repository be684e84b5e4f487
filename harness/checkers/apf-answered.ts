/**
 * apf-answered: every async #PF the host injects ("page not present", token T) is answered by
 * exactly one "page ready" for T, or by a wake-all on that vCPU, or is dropped by one of the
 * documented paths (APF disable, vCPU INIT/RESET, CR0.PG change on old hosts, teardown, the guest
 * kernel going away). Also: no "page ready" for a token whose not-present was never injected
 * (the guest finds no sleeper and leaks a dummy node), none for a token already answered, and
 * the 2017 #DF cancellation must not drop two different events.
 */
import type { TraceRecordOf } from '../trace/consumer';
import { ABRUPT_OUTCOMES, APF_DROP_EVENTS, apfDrop, at, defineChecker, eventSet, hex, isKernelGone, KERNEL_GONE, WAKE_ALL } from './types';

type State =
  | { readonly s: 'outstanding' }
  | { readonly s: 'ready'; readonly t: number }
  | { readonly s: 'wake-all'; readonly t: number }
  | { readonly s: 'dropped'; readonly t: number; readonly why: string }
  | { readonly s: 'halted' }
  /** Outstanding on a CPU the guest's crash path stopped without disabling APF: an answer is allowed, none is required. */
  | { readonly s: 'orphaned'; readonly t: number }
  | { readonly s: 'cancelled'; readonly t: number };

interface Fault {
  readonly token: number;
  readonly cpu: number;
  readonly t: number;
  readonly gva: number;
  state: State;
}

export const apfAnswered = defineChecker({
  name: 'apf-answered',
  description: 'every injected not-present gets exactly one page-ready (or a wake-all, or a documented drop)',
  invariant:
    'Each async #PF the host injects (token T) is answered by exactly one page-ready for T, or by a wake-all on that vCPU, or dropped by a ' +
    'documented path (APF disable, INIT/RESET, CR0.PG change on old hosts, vCPU/VM teardown, the guest kernel going away). ' +
    'After a crash the other CPUs\' outstanding faults may still be answered (their APF stays on) and need not be. ' +
    'No page-ready goes to a token that was never injected or was already answered.',
  options: {},
  events: eventSet(['kvm_async_pf_not_present', 'kvm_async_pf_ready', 'kvm_async_pf_df_cancel', 'kvm_async_pf_wakeup_all'], APF_DROP_EVENTS, KERNEL_GONE),
  create(_opts, report) {
    const faults = new Map<number, Fault>();

    const where = (f: Fault): string => `token ${hex(f.token)} (cpu${f.cpu}, gva ${hex(f.gva)}, injected at ${at(f.t)})`;

    const dropCpu = (cpu: number, t: number, why: string): void => {
      for (const f of faults.values()) if (f.state.s === 'outstanding' && (cpu < 0 || f.cpu === cpu)) f.state = { s: 'dropped', t, why };
    };

    // Wake-alls queued per vCPU and not yet seen as a page-ready. v3.0 traces a wake-all's
    // page-ready with token 0 (the tracepoint ran before the token became ~0); such a record is a
    // wake-all when one is queued and no fault with token 0 is outstanding on that vCPU.
    const wakeAllsQueued = new Map<number, number>();
    const isWakeAll = (cpu: number, token: number): boolean => {
      if (token === WAKE_ALL) return true;
      if (token !== 0 || (wakeAllsQueued.get(cpu) ?? 0) === 0) return false;
      const f = faults.get(0);
      return f === undefined || f.cpu !== cpu || f.state.s !== 'outstanding';
    };

    const onReady = (rec: TraceRecordOf<'kvm_async_pf_ready'>): void => {
      const { token, notified } = rec;
      if (isWakeAll(rec.cpu, token)) {
        wakeAllsQueued.set(rec.cpu, Math.max(0, (wakeAllsQueued.get(rec.cpu) ?? 0) - 1));
        if (!notified) return;
        for (const f of faults.values()) if (f.state.s === 'outstanding' && f.cpu === rec.cpu) f.state = { s: 'wake-all', t: rec.t };
        return;
      }
      const f = faults.get(token);
      if (f === undefined) {
        if (notified) report(rec.t, rec.cpu, `page-ready for token ${hex(token)} on cpu${rec.cpu}, but no not-present was ever traced for that token`);
        return;
      }
      switch (f.state.s) {
        case 'outstanding':
          if (notified) f.state = { s: 'ready', t: rec.t };
          else {
            report(rec.t, rec.cpu, `page-ready for ${where(f)} was not delivered (notified=false) although APF was never disabled: its sleeper is never woken`);
            f.state = { s: 'dropped', t: rec.t, why: 'not delivered' };
          }
          return;
        case 'halted':
          if (notified) {
            report(
              rec.t,
              rec.cpu,
              `page-ready for token ${hex(token)} sent although its not-present was never injected (it ended in an artificial halt): ` +
                'the guest finds no sleeper and inserts a dummy node that nobody consumes',
            );
          }
          faults.delete(token);
          return;
        case 'ready':
          if (notified) report(rec.t, rec.cpu, `second page-ready for ${where(f)}: it was already answered at ${at(f.state.t)}`);
          return;
        case 'wake-all':
          // The wake-all woke the sleeper; the item itself still completes once. Accept that one page-ready.
          f.state = { s: 'ready', t: rec.t };
          return;
        case 'dropped':
          if (notified) report(rec.t, rec.cpu, `page-ready for ${where(f)} after it was dropped (${f.state.why} at ${at(f.state.t)})`);
          return;
        case 'orphaned':
          if (notified) f.state = { s: 'ready', t: rec.t };
          return;
        case 'cancelled':
          if (notified) report(rec.t, rec.cpu, `page-ready for token ${hex(token)} whose not-present was cancelled before the guest saw it (#DF cancellation at ${at(f.state.t)})`);
          return;
      }
    };

    return {
      onRecord(rec) {
        switch (rec.event) {
          case 'kvm_async_pf_not_present': {
            const { token, injected } = rec;
            faults.set(token, { token, cpu: rec.cpu, t: rec.t, gva: rec.gva, state: injected ? { s: 'outstanding' } : { s: 'halted' } });
            return;
          }
          case 'kvm_async_pf_ready':
            onReady(rec);
            return;
          case 'kvm_async_pf_wakeup_all':
            if (rec.queued) wakeAllsQueued.set(rec.cpu, (wakeAllsQueued.get(rec.cpu) ?? 0) + 1);
            return;
          case 'kvm_async_pf_df_cancel': {
            const { token, pending_token: pending } = rec;
            if (token !== pending) {
              report(
                rec.t,
                rec.cpu,
                `the 2017 #DF cancellation dropped page-ready ${hex(token)} together with the pending not-present ${hex(pending)}: ` +
                  'different tokens, so both events are lost',
              );
            }
            // Report once; keep both tokens out of the end-of-run accounting.
            const ready = faults.get(token);
            if (ready !== undefined) ready.state = { s: 'cancelled', t: rec.t };
            const np = faults.get(pending);
            if (np !== undefined) np.state = { s: 'cancelled', t: rec.t };
            return;
          }
          default: {
            const d = apfDrop(rec);
            if (d?.kind === 'cpu') dropCpu(d.cpu, rec.t, d.why);
            else if (d?.kind === 'tokens') {
              for (const tok of d.tokens) {
                const f = faults.get(tok);
                if (f !== undefined && (f.state.s === 'outstanding' || f.state.s === 'halted')) f.state = { s: 'dropped', t: rec.t, why: d.why };
              }
            } else if (rec.src === 'guest' && rec.event === 'crash') {
              // kvm_crash_shutdown disables APF on the crashing CPU only; the others stay registered.
              dropCpu(rec.cpu, rec.t, `guest ${rec.event}`);
              for (const f of faults.values()) if (f.state.s === 'outstanding') f.state = { s: 'orphaned', t: rec.t };
            } else if (rec.src === 'guest' && isKernelGone(rec.event)) dropCpu(-1, rec.t, `guest ${rec.event}`);
          }
        }
      },
      finish(end) {
        if (ABRUPT_OUTCOMES.has(end.outcome)) return;
        for (const f of faults.values()) {
          if (f.state.s === 'outstanding') {
            report(end.t, f.cpu, `${where(f)} was never answered: no page-ready, no wake-all, no documented drop by the end of the run`);
          }
        }
      },
    };
  },
});
