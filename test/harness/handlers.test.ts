/** The harness runs the guest with replaced handlers (docs/handlers.md), and the checkers catch a broken one. */
import { MSR_KVM_ASYNC_PF_ACK } from '../../shared-abi/msr';
import type { ApfApi, ApfHandlers } from '../../guest/handlers';
import type { Code } from '../../guest/code';
import { buildMachine } from '../../harness/machine';
import { runScenario } from '../../harness/runner';
import { scenarioFromValue } from '../../harness/scenario/load';

const forgetfulPageReady: Partial<ApfHandlers> = {
  *pageReady(api: ApfApi): Code {
    yield* api.eoi();
    if (!(yield* api.enabled())) return;
    const token = yield* api.apfLoad('token');
    api.trace('sysvec_kvm_asyncpf_interrupt', { token });
    yield* api.handlers.wake(api, token);
    // BUG: the token slot is never zeroed.
    yield* api.wrmsr(MSR_KVM_ASYNC_PF_ACK, 1n);
  },
};

describe('custom guest handlers through the harness', () => {
  const scenario = scenarioFromValue(
    {
      hostMemory: { pages: [{ page: '0x7f0000001000', backing: 'swapped' }] },
      tasks: [{ name: 'a', program: [{ op: 'touch', page: '0x7f0000001000' }] }],
      budget: { maxTime: '200ms' },
      checkers: { 'hung-task': { timeout: '100ms' } },
    },
    undefined,
    'forgetful',
  );

  it('the stock handlers complete', () => {
    expect(runScenario(scenario).ok).toBe(true);
  });

  it('a page-ready handler that never frees the slot strands the next sleeper, and hung-task says so', () => {
    const r = runScenario(scenario, { machine: (s, sim) => buildMachine(s, sim, { handlers: forgetfulPageReady }) });
    expect(r.ok).toBe(false);
    expect(r.outcome).not.toBe('completed');
    expect(r.violations.map((v) => v.checker)).toContain('hung-task');
  });
});
