/**
 * The guest halves of the async-PF designs (shared-abi/designs.ts, docs/designs.md), one strategy
 * object per design, made once per kernel (`GuestKernel.design`): `ApfHandlers` replacements
 * layered over the profile's defaults (docs/handlers.md), plus what the entry code asks of the
 * design: the #VE entry (`ve`), whether a #PF on a present user page reports a failed page-in
 * (`retry_pf`), whether an action-optional #MC carries a failed token (`mc`, guest/designs/mce.ts).
 * `current` adds nothing.
 *
 * A failed page-in is remembered per token (`failedTokens`, the kernel's own set); the waiting
 * task, once woken, is sent SIGBUS instead of retrying the access (error_flag, mc).
 */
import type { TrapFrame } from '../../shared-abi/arch';
import { ASYNC_PF_IMPOSSIBLE_ERROR_CODE, KVM_PV_REASON_PAGE_ERROR, type DesignName } from '../../shared-abi/designs';
import { insn, type Code } from '../code';
import type { ApfApi, ApfHandlers } from '../handlers';
import type { GuestKernel } from '../kernel';
import { SIGBUS } from '../signal';

/** The guest half of one design, for one kernel. */
export interface GuestDesign {
  readonly name: DesignName;
  /** Tokens whose page-in the host reported as failed and whose waiter has not seen it yet. */
  readonly failedTokens: Set<number>;
  /** Replacement handlers over the profile's defaults (none for `current`). */
  handlers(k: GuestKernel): Partial<ApfHandlers>;
  /** The #VE entry, when the design delivers "not present" as #VE. */
  readonly veEntry?: (k: GuestKernel, tf: TrapFrame) => Code;
  /** A #PF on a present user page is the host's report of a failed page-in (SIGBUS, not SIGSEGV). */
  readonly presentUserPfIsPageError: boolean;
  /** An action-optional #MC reports a failed page-in whose token is in the APF token slot. */
  readonly asyncMachineCheck: boolean;
}

/** The error reached the waiter: SIGBUS for a user fault; a kernel waiter cannot return an error (panic). */
function* deliverError(k: GuestKernel, api: ApfApi, token: number, tf: TrapFrame): Code {
  const t = k.current();
  if (api.userMode(tf)) {
    api.trace('apf_page_error', { token, task: t.name, action: 'sigbus' });
    k.emit(k.cpu().id, 'signal', { task: t.name, sig: 'SIGBUS' });
    t.killed = SIGBUS;
    return;
  }
  api.trace('apf_page_error', { token, task: t.name, action: 'panic' });
  yield* api.panic('async page fault: page is malfunctioning (kernel waiter)');
}

/** wait, then the error if the host reported one for this token. */
function waitWithError(k: GuestKernel): ApfHandlers['wait'] {
  return function* (api, token, tf) {
    yield* api.defaults.wait(api, token, tf);
    const s = k.design.failedTokens;
    if (s.has(token)) {
      s.delete(token);
      yield* deliverError(k, api, token, tf);
    }
  };
}

function* noAsync(): Code<boolean> {
  yield* [];
  return false;
}

/** #VE (vector 20, design `ve`): the token is in the information word; release it, then wait. */
function* veEntry(k: GuestKernel, tf: TrapFrame): Code {
  const api = k.apfApi();
  const token = (yield* api.apfLoad('flags')) >>> 0;
  yield* api.apfStore('flags', 0);
  api.trace('apf_design_entry', { design: 've', token, entry: 've' });
  if (token === 0) {
    api.warnOnce('#VE without a token');
    return;
  }
  if (api.toggles.apf_panics && !api.userMode(tf)) yield* api.panic('Host injected #VE in kernel mode');
  yield* api.handlers.wait(api, token, tf);
  yield insn.cli();
}

type DesignBehaviour = Omit<GuestDesign, 'name' | 'failedTokens'>;

const PLAIN = { presentUserPfIsPageError: false, asyncMachineCheck: false } as const;

const DESIGNS: { readonly [D in DesignName]: DesignBehaviour } = {
  current: { ...PLAIN, handlers: () => ({}) },
  // Not-present is recognised by the #PF error code alone: no flags read, no flags to lose.
  error_code: {
    ...PLAIN,
    handlers: () => ({
      *pfHook(api, tf, cr2) {
        const ec = tf.event.kind === 'exception' ? (tf.event.errorCode ?? 0) : 0;
        if (ec !== ASYNC_PF_IMPOSSIBLE_ERROR_CODE) return false;
        if (api.toggles.apf_panics && !api.interruptsWereEnabled(tf)) yield* api.panic('Host injected async #PF in interrupt disabled region');
        if (api.toggles.apf_panics && !api.userMode(tf)) yield* api.panic('Host injected async #PF in kernel mode');
        const token = cr2 ?? (yield* api.readCr2());
        api.trace('apf_design_entry', { design: 'error_code', token, entry: 'pf_error_code' });
        yield* api.handlers.wait(api, token >>> 0, tf);
        return true;
      },
    }),
  },
  // Not-present arrives as #VE (veEntry); a #PF is always a real one.
  ve: {
    ...PLAIN,
    handlers: () => ({
      *pfHook() {
        return yield* noAsync();
      },
    }),
    veEntry,
  },
  error_flag: {
    ...PLAIN,
    handlers: (k) => ({
      *pageReady(api, tf) {
        if (yield* api.enabled()) {
          const flags = yield* api.apfLoad('flags');
          if ((flags & KVM_PV_REASON_PAGE_ERROR) !== 0) {
            const token = yield* api.apfLoad('token');
            yield* api.apfStore('flags', 0);
            k.design.failedTokens.add(token >>> 0);
            api.trace('apf_design_entry', { design: 'error_flag', token, entry: 'page_ready_error_flag' });
          }
        }
        yield* api.defaults.pageReady(api, tf);
      },
      wait: waitWithError(k),
    }),
  },
  // A failed page-in arrives as an action-optional #MC (guest/designs/mce.ts).
  mc: { ...PLAIN, asyncMachineCheck: true, handlers: (k) => ({ wait: waitWithError(k) }) },
  // The guest's retry of a failed page gets a real #PF on the present page.
  retry_pf: { ...PLAIN, presentUserPfIsPageError: true, handlers: () => ({}) },
};

/** The guest half of `name`, for one kernel (its failed-token set is that kernel's). */
export function guestDesign(name: DesignName): GuestDesign {
  return { name, failedTokens: new Set(), ...DESIGNS[name] };
}
