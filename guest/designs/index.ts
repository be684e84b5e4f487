/**
 * The guest halves of the async-PF designs (shared-abi/designs.ts, docs/designs.md), as
 * `ApfHandlers` replacements layered over the profile's defaults (docs/handlers.md) plus three entry
 * hooks called from entry.ts: #VE (`ve`), the #MC of a failed token (`mc`, guest/designs/mce.ts) and
 * the real #PF on a present page (`retry_pf`). `current` adds nothing.
 *
 * A failed page-in is remembered per token (`failedTokens`); the waiting task, once woken, is sent
 * SIGBUS instead of retrying the access (error_flag, mc).
 */
import type { TrapFrame } from '../../shared-abi/arch';
import { ASYNC_PF_IMPOSSIBLE_ERROR_CODE, KVM_PV_REASON_PAGE_ERROR, type DesignName } from '../../shared-abi/designs';
import { insn, type Code } from '../code';
import type { ApfApi, ApfHandlers } from '../handlers';
import type { GuestKernel } from '../kernel';
import { SIGBUS } from './mce';

const failed = new WeakMap<GuestKernel, Set<number>>();

/** Tokens whose page-in the host reported as failed and whose waiter has not seen it yet. */
export function failedTokens(k: GuestKernel): Set<number> {
  let s = failed.get(k);
  if (s === undefined) {
    s = new Set();
    failed.set(k, s);
  }
  return s;
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
    const s = failedTokens(k);
    if (s.has(token)) {
      s.delete(token);
      yield* deliverError(k, api, token, tf);
    }
  };
}

/** Replacement handlers of a design (none for `current`). */
export function designHandlers(k: GuestKernel, design: DesignName): Partial<ApfHandlers> {
  switch (design) {
    case 'error_code':
      // Not-present is recognised by the #PF error code alone: no flags read, no flags to lose.
      return {
        *pfHook(api, tf, cr2) {
          const ec = tf.event.kind === 'exception' ? (tf.event.errorCode ?? 0) : 0;
          if (ec !== ASYNC_PF_IMPOSSIBLE_ERROR_CODE) return false;
          if (api.toggles.apf_panics && !api.interruptsWereEnabled(tf)) yield* api.panic('Host injected async #PF in interrupt disabled region');
          if (api.toggles.apf_panics && !api.userMode(tf)) yield* api.panic('Host injected async #PF in kernel mode');
          const token = cr2 ?? (yield* api.readCr2());
          api.trace('apf_design_entry', { design, token, entry: 'pf_error_code' });
          yield* api.handlers.wait(api, token >>> 0, tf);
          return true;
        },
      };
    case 've':
      // Not-present arrives as #VE (veEntry); a #PF is always a real one.
      return {
        *pfHook() {
          return yield* noAsync();
        },
      };
    case 'error_flag':
      return {
        *pageReady(api, tf) {
          if (yield* api.enabled()) {
            const flags = yield* api.apfLoad('flags');
            if ((flags & KVM_PV_REASON_PAGE_ERROR) !== 0) {
              const token = yield* api.apfLoad('token');
              yield* api.apfStore('flags', 0);
              failedTokens(k).add(token >>> 0);
              api.trace('apf_design_entry', { design, token, entry: 'page_ready_error_flag' });
            }
          }
          yield* api.defaults.pageReady(api, tf);
        },
        wait: waitWithError(k),
      };
    case 'mc':
      return { wait: waitWithError(k) };
    default:
      return {};
  }
}

function* noAsync(): Code<boolean> {
  yield* [];
  return false;
}

/** #VE (vector 20, design `ve`): the token is in the information word; release it, then wait. */
export function* veEntry(k: GuestKernel, tf: TrapFrame): Code {
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
