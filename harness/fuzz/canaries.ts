/**
 * Canaries: deliberately broken guest variants, built with the pluggable handler API
 * (docs/handlers.md), that the fuzzer must catch. A campaign that stays green against a canary
 * means the generators do not reach the race the canary breaks. test/fuzz/canaries.test.ts keeps
 * each one caught within a fixed budget.
 */
import { KVM_APF_WAKE_ALL_TOKEN } from '../../shared-abi/apf';
import type { ApfApi, ApfHandlers } from '../../guest/handlers';
import type { Code } from '../../guest/code';

export interface Canary {
  readonly name: string;
  readonly description: string;
  /** What catches it: the property or checker that fires. */
  readonly caughtBy: string;
  readonly handlers: Partial<ApfHandlers>;
}

/** The page-ready handler forgets the ACK: completions queued behind the first one are never rescanned. */
const noAck: Partial<ApfHandlers> = {
  *pageReady(api: ApfApi): Code {
    if (api.toggles.page_ready_eoi) yield* api.eoi();
    if (!(yield* api.enabled())) return;
    const token = yield* api.apfLoad('token');
    api.trace('sysvec_kvm_asyncpf_interrupt', { token });
    yield* api.handlers.wake(api, token);
    api.trace('apf_token_clear', { token });
    yield* api.apfStore('token', 0);
    // BUG: no `wrmsr(MSR_KVM_ASYNC_PF_ACK, 1)`.
  },
};

/** The wake path finds no sleeper and does nothing: a wake that overtakes its wait is lost. */
const noDummy: Partial<ApfHandlers> = {
  *wake(api: ApfApi, token: number): Code {
    if (token >>> 0 === KVM_APF_WAKE_ALL_TOKEN) {
      yield* api.handlers.wakeAll(api);
      return;
    }
    const b = api.bucket(token);
    yield* api.lockBucket(b);
    const n = api.sleepers.find(token);
    if (n !== undefined) yield* api.handlers.wakeOne(api, n);
    yield* api.unlockBucket(b);
    // BUG: when nobody waits yet, no dummy node is left for the wait that comes later.
    api.trace('kvm_async_pf_task_wake', { token, found: n !== undefined, dummy: false });
  },
};

/** The #PF hook ignores the CR2 read at entry and reads CR2 after the flags (as v5.2 did). */
const lateCr2: Partial<ApfHandlers> = {
  *pfHook(api, tf, _cr2) {
    return yield* api.defaults.pfHook(api, tf, null);
  },
};

export const CANARIES: readonly Canary[] = [
  {
    name: 'no-ack',
    description: 'the page-ready handler never writes MSR_KVM_ASYNC_PF_ACK',
    caughtBy: 'guest-rules (the page-ready handler returns without the ACK) / run-ends / apf-answered (a completion stays on the done list; the task that waits for it hangs)',
    handlers: noAck,
  },
  {
    name: 'no-dummy',
    description: 'kvm_async_pf_task_wake leaves no dummy node when the wake comes before the wait',
    caughtBy: 'no-lost-wakeup',
    handlers: noDummy,
  },
  {
    name: 'late-cr2',
    description: 'the async #PF hook reads CR2 after the flags instead of at entry',
    caughtBy: 'hung-task / run-ends (an NMI that faults in between clobbers CR2: the task waits on a bogus token)',
    handlers: lateCr2,
  },
];

export const CANARY_NAMES: readonly string[] = CANARIES.map((c) => c.name);

export function canaryByName(name: string): Canary {
  const c = CANARIES.find((x) => x.name === name);
  if (c === undefined) throw new RangeError(`unknown canary "${name}" (known: ${CANARY_NAMES.join(', ')})`);
  return c;
}
