/**
 * A scripted stand-in for the real machine: it emits the trace of one async page fault the way
 * the host and guest do (enable, not-present, wait, page-in, page-ready, ACK, wake, exit), with a
 * seed-dependent page-in latency. Used to test the runner and the CLI without host/ and guest/.
 *
 * Knobs, read from the scenario's first task name: "hang" never finishes (budget), "panic"
 * panics at 50us, "lose" never sends the page-ready (apf-answered and hung-task fire).
 */
import type { Simulation } from '../../sim/engine';
import { Priority } from '../../sim/queue';
import { forwardEmit, type TraceFields, type TraceSource } from '../../sim/trace';
import type { Machine, MachineFactory } from '../../harness/machine-api';
import type { Action, Scenario } from '../../harness/scenario/types';

export const fakeMachine: MachineFactory = (scenario: Scenario, sim: Simulation): Machine => {
  const mode = scenario.tasks[0]?.name ?? 'ok';
  let done = false;
  let panic: string | undefined;
  const emit = (src: TraceSource, cpu: number, event: string, fields: TraceFields = {}): void => forwardEmit(sim.trace, src, cpu, event, fields);
  const at = (t: number, fn: () => void): void => void sim.scheduleAt(t, Priority.Host, fn, 'fake');
  const T = 0x1001;
  return {
    sim,
    start() {
      at(0, () => {
        emit('guest', 0, 'kvm_guest_cpu_init', { msr_en: 0x10009n, vector: 0xf3, send_always: false });
        emit('host', 0, 'kvm_async_pf_enable', { msr_en_val: 0x10009n, gpa: 0x10000, send_always: false, delivery_as_int: true, pf_vmexit: false });
        emit('guest', 0, 'task_new', { task: mode });
        emit('guest', 0, 'sched_switch', { prev: 'swapper/0', next: mode, prev_state: 'R' });
      });
      at(1_000, () => {
        emit('host', 0, 'kvm_try_async_get_page', { gva: 0x7f0000001000, gfn: 0x500 });
        emit('host', 0, 'kvm_async_pf_not_present', { token: T, gva: 0x7f0000001000, injected: true, halt: false });
        emit('host', 0, 'kvm_write_guest', { gpa: 0x10000, len: 4, value: 1, field: 'flags' });
        emit('host', 0, 'kvm_inj_exception', { exception: 14, has_error: true, error_code: 0, address: T, async: true });
        emit('guest', 0, 'kvm_read_and_reset_apf_flags', { flags: 1 });
        emit('guest', 0, 'kvm_async_pf_task_wait_schedule', { token: T, task: mode });
      });
      if (mode === 'panic') at(50_000, () => {
        panic = 'Host injected async #PF in kernel mode';
        emit('guest', 0, 'panic', { message: panic });
      });
      if (mode === 'hang') {
        const tick = (): void => void sim.schedule(1_000_000, Priority.Hardware, tick, 'fake tick');
        tick();
        return;
      }
      if (mode === 'lose') {
        at(3_000_000, () => emit('guest', 0, 'task_new', { task: 'other' }));
        at(3_000_001, () => (done = true));
        return;
      }
      const latency = 50_000 + sim.prng.stream('fake').int(0, 100_000);
      at(1_000 + latency, () => {
        emit('worker', 0, 'kvm_async_pf_completed', { address: 0x7f0000500000, gva: 0x7f0000001000, ok: true });
        emit('host', 0, 'kvm_async_pf_ready', { token: T, gva: 0x7f0000001000, notified: true });
        emit('host', 0, 'kvm_write_guest', { gpa: 0x10004, len: 4, value: T, field: 'token' });
        emit('host', 0, 'kvm_apic_accept_irq', { apicid: 0, dm: 'fixed', vec: 0xf3, coalesced: false });
        emit('host', 0, 'kvm_inj_virq', { irq: 0xf3 });
        emit('guest', 0, 'sysvec_kvm_asyncpf_interrupt', { token: T });
        emit('guest', 0, 'kvm_async_pf_task_wake', { token: T, found: true, dummy: false });
        emit('guest', 0, 'apf_token_clear', { token: T });
        emit('guest', 0, 'apf_ack', {});
        emit('host', 0, 'kvm_async_pf_ack', {});
        emit('guest', 0, 'kvm_async_pf_task_woken', { token: T, task: mode, waited_ns: latency });
        emit('guest', 0, 'task_access', { task: mode, gva: 0x7f0000001000, write: true, value: 42 });
        emit('guest', 0, 'task_exit', { task: mode, code: 0 });
        done = true;
      });
    },
    done: () => done,
    panicMessage: () => panic,
    shutdown: () => false,
    destroyed: () => false,
    perform(action: Action) {
      if (action.do === 'nmi') emit('host', action.cpu, 'kvm_nmi');
      else if (action.do === 'crash') {
        panic = 'crash requested';
        emit('guest', 0, 'panic', { message: panic });
      }
    },
    pageName: (gfn) => (gfn === 0x500 ? `${mode}:0x7f0000001000` : undefined),
  };
};
