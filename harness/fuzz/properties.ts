/**
 * What a fuzzed run must satisfy, beyond the scenario's own expectations (which for generated
 * scenarios are: the workload completes, every checker stays quiet).
 *
 * - `no-lost-wakeup` (guest): a task never goes to sleep on token T after the guest already
 *   handled a page-ready for T that found nobody waiting: that wake must have left a dummy node
 *   which the wait consumes (spec §4.4, §4.6). Only a wake-all on the CPU that holds the dummy
 *   may remove it first (Linux unlinks dummies there, spec §4.7). (In the simulation the host's
 *   own page-ready still follows an injected cross-vCPU one, so a lost wake-up delays the task
 *   instead of hanging it; this property is how the fuzzer sees it.)
 * - `no-lost-completion` (host, untrusted-guest mode): every work item the host accepted (traced
 *   `kvm_async_pf_not_present`) is, at the end of the run, either dequeued (`kvm_async_pf_ready`,
 *   delivered or not), dropped by a documented path (queue clear on disable, INIT/RESET, CR0.PG,
 *   teardown), or still held on the vCPU's queue or done list; and the host's bookkeeping agrees
 *   (`queued` = queue + wake-alls on done, at most 64, gfn hash size = queue length).
 *
 * Observers only read trace records (and, for the host oracle, the host's state once the run is
 * over); they never change the run.
 */
import type { Kvm } from '../../host/kvm';
import { hex } from '../../shared-abi/addr';
import { ASYNC_PF_PER_VCPU } from '../../shared-abi/apf';
import { X86_EXCEPTION } from '../../shared-abi/vectors';
import { APF_DROP_EVENTS, apfDrop, WAKE_ALL } from '../checkers/types';
import { eventSet, type EventsIn, type TraceConsumer, type TraceEventName } from '../trace/consumer';

export interface PropertyFailure {
  /** Property name: `checker:<name>`, `run-ends`, `no-panic`, `no-error`, `no-lost-wakeup`, `no-lost-completion`, `host-invariants`, `valid-scenario`. */
  readonly property: string;
  readonly message: string;
  readonly t?: number;
  readonly cpu?: number;
}

/** A trace consumer that judges a property once the run is over. */
export interface Observer<E extends TraceEventName = TraceEventName> extends TraceConsumer<E> {
  finish(): PropertyFailure[];
}

export const LOST_WAKEUP_EVENTS = eventSet([
  'kvm_async_pf_task_wake',
  'kvm_async_pf_dummy_consumed',
  'kvm_async_pf_task_wait_schedule',
  'kvm_async_pf_task_wait_halt',
  'kvm_async_pf_task_woken',
  'apf_task_wake_all',
]);

/**
 * no-lost-wakeup, judged from the guest's trace (docs/trace-events.md): `kvm_async_pf_task_wake`
 * with `found: false` is a wake that came before the wait; from then on a task must not go to
 * sleep on that token (`kvm_async_pf_task_wait_schedule` / `_halt`) unless something documented
 * removed the wake's dummy first: a wait consumed it, another wake for the token unlinked it, or a
 * wake-all on the dummy's CPU unlinked it (judged at the end of the run: the wake-all is traced
 * when it finishes, with the number of dummies it unlinked).
 */
export function lostWakeupObserver(): Observer<EventsIn<typeof LOST_WAKEUP_EVENTS>> {
  /** Tasks currently asleep per token (wait record seen, woken record not yet). */
  const sleeping = new Map<number, number>();
  /** Early wakes per token, oldest first: where and when. */
  const early = new Map<number, { cpu: number; t: number }[]>();
  /**
   * Sleeps after an early wake, not yet judged: a wake-all on the dummy's CPU may already have
   * unlinked the dummy (it walks 256 buckets and is traced only when it is done), which it
   * confirms by counting the dummies it leaked.
   */
  const suspects: { cpu: number; failure: PropertyFailure }[] = [];
  const shift = (tok: number): void => {
    const list = early.get(tok);
    list?.shift();
    if (list !== undefined && list.length === 0) early.delete(tok);
  };
  return {
    events: LOST_WAKEUP_EVENTS,
    onRecord(rec) {
      switch (rec.event) {
        case 'kvm_async_pf_task_wake': {
          const tok = rec.token >>> 0;
          if (tok === WAKE_ALL) return;
          if (rec.found === false) early.set(tok, [...(early.get(tok) ?? []), { cpu: rec.cpu, t: rec.t }]);
          else if ((sleeping.get(tok) ?? 0) === 0) shift(tok);
          return;
        }
        case 'kvm_async_pf_dummy_consumed':
          shift(rec.token >>> 0);
          return;
        case 'kvm_async_pf_task_wait_schedule':
        case 'kvm_async_pf_task_wait_halt': {
          const tok = rec.token >>> 0;
          const first = early.get(tok)?.[0];
          if (first !== undefined) {
            const { task } = rec;
            suspects.push({
              cpu: first.cpu,
              failure: {
                property: 'no-lost-wakeup',
                t: rec.t,
                cpu: rec.cpu,
                message:
                  `task ${task} sleeps on token ${hex(tok)} at t=${rec.t}ns although page-ready for ${hex(tok)} was handled on cpu${first.cpu} at t=${first.t}ns ` +
                  'before anyone waited: that wake must leave a dummy node for this wait to consume (a lost wake-up)',
              },
            });
            shift(tok);
          }
          sleeping.set(tok, (sleeping.get(tok) ?? 0) + 1);
          return;
        }
        case 'kvm_async_pf_task_woken': {
          const tok = rec.token >>> 0;
          sleeping.set(tok, Math.max(0, (sleeping.get(tok) ?? 0) - 1));
          return;
        }
        case 'apf_task_wake_all': {
          // Linux's wake-all unlinks this CPU's dummies (spec §4.7): their early wakes are gone,
          // and a sleep that came while it ran may have found its dummy already unlinked.
          for (const [t, list] of [...early]) {
            const keep = list.filter((w) => w.cpu !== rec.cpu);
            if (keep.length === 0) early.delete(t);
            else early.set(t, keep);
          }
          let leaked = rec.dummies_leaked;
          for (let i = 0; i < suspects.length && leaked > 0; ) {
            if (suspects[i]?.cpu === rec.cpu) {
              suspects.splice(i, 1);
              leaked--;
            } else i++;
          }
          return;
        }
      }
    },
    finish: () => suspects.slice(0, 3).map((x) => x.failure),
  };
}

/** no-lost-completion and host-invariants: trace bookkeeping plus the host's state at the end. */
const HOST_ORACLE_EVENTS = eventSet(['kvm_async_pf_not_present', 'kvm_async_pf_ready'], APF_DROP_EVENTS);

export function hostOracle(getKvm: () => Kvm | undefined): Observer<EventsIn<typeof HOST_ORACLE_EVENTS>> {
  /** Accepted, unresolved items per `cpu:token`: their acceptance times. */
  const open = new Map<string, number[]>();
  const key = (cpu: number, token: number): string => `${cpu}:${token >>> 0}`;
  const dropCpu = (cpu: number): void => {
    for (const k of [...open.keys()]) if (cpu < 0 || k.startsWith(`${cpu}:`)) open.delete(k);
  };
  return {
    events: HOST_ORACLE_EVENTS,
    onRecord(rec) {
      switch (rec.event) {
        case 'kvm_async_pf_not_present': {
          const k = key(rec.cpu, rec.token);
          open.set(k, [...(open.get(k) ?? []), rec.t]);
          return;
        }
        case 'kvm_async_pf_ready': {
          if (rec.token >>> 0 === WAKE_ALL) return;
          const k = key(rec.cpu, rec.token);
          const list = open.get(k);
          if (list === undefined) return;
          list.shift();
          if (list.length === 0) open.delete(k);
          return;
        }
        default: {
          const d = apfDrop(rec);
          if (d === undefined) return;
          if (d.kind === 'cpu') dropCpu(d.cpu);
          else for (const tok of d.tokens) open.delete(key(rec.cpu, tok));
        }
      }
    },
    finish() {
      const kvm = getKvm();
      if (kvm === undefined) return [];
      const out: PropertyFailure[] = [];
      const snaps = kvm.asyncPfSnapshot();
      for (const pf of snaps) {
        const bad: string[] = [];
        if (pf.queued !== pf.queueLength + pf.doneWakeAlls) bad.push(`queued = ${pf.queued}, but ${pf.queueLength} items are queued and ${pf.doneWakeAlls} wake-alls are done`);
        if (pf.queued > ASYNC_PF_PER_VCPU) bad.push(`queued = ${pf.queued} > ${ASYNC_PF_PER_VCPU}`);
        if (pf.hashSize !== pf.queueLength) bad.push(`the gfn hash holds ${pf.hashSize} gfns for ${pf.queueLength} queued items`);
        if (bad.length > 0) out.push({ property: 'host-invariants', cpu: pf.cpu, message: `cpu${pf.cpu} at the end of the run: ${bad.join('; ')}` });
      }
      for (const [k, times] of open) {
        const [cpuText, tokText] = k.split(':');
        const cpu = Number(cpuText);
        const token = Number(tokText);
        const pf = snaps.find((x) => x.cpu === cpu);
        if (pf === undefined) continue;
        const held = pf.heldTokens.filter((t) => t === token).length;
        if (held < times.length) {
          out.push({
            property: 'no-lost-completion',
            cpu,
            t: times[0],
            message:
              `the host accepted work item ${hex(token)} on cpu${cpu} at t=${times[0] ?? 0}ns and then lost it: no kvm_async_pf_ready, no documented drop, ` +
              'and it is on neither the queue nor the done list at the end of the run',
          });
        }
      }
      return out;
    },
  };
}

/**
 * Known hazards: outcomes that are what the modelled kernels really do, which the generator
 * cannot rule out by construction. A run that ends in one is reported as such, not as a failure;
 * only the failures the hazard explains are forgiven (`explains`), anything else still fails.
 *
 * - `nmi-in-async-pf-window`: an NMI lands between the delivery of an async #PF and the handler's
 *   read-and-reset of the APF flags, and its handler faults (perf reading a user stack that is not
 *   mapped). The nested #PF finds the flags still set and takes itself for an async #PF injected
 *   with IF=0: the v5.8+ guest panics ("Host injected async #PF in interrupt disabled region"), as
 *   Linux would (exc_page_fault's "Fingers crossed" comment). Signature: that panic, on a CPU that
 *   is inside an NMI handler which took a #PF. Explains: `no-panic`.
 * - `stale-token-after-disable`: the host posts a page-ready (token in the slot, 0xf3 raised) just
 *   before APF is disabled on that CPU (CPU offline, suspend, kvm_pv_disable_apf, a migration
 *   reset). The guest never clears the slot: sysvec_kvm_asyncpf_interrupt skips the token while its
 *   enabled flag is clear, or the interrupt itself is lost when the CPU comes back through INIT.
 *   kvm_guest_cpu_init does not clear the slot either, so after APF is enabled again the host finds
 *   the slot busy and never delivers a page-ready on that CPU again: later sleepers there hang.
 *   Signature: at the end of the run, a CPU re-enabled APF while a token written before a disable
 *   was still in its slot, and nobody cleared it since. Explains: `run-ends` and the hang's echoes
 *   (`checker:hung-task`, `checker:apf-answered`, `checker:interrupts`).
 */
const HAZARD_EVENTS = eventSet([
  'nmi',
  'iret',
  'exception',
  'kvm_write_guest',
  'kvm_async_pf_disable',
  'kvm_vcpu_init',
  'kvm_vcpu_reset',
  'panic',
  'apf_token_clear',
  'kvm_pv_disable_apf',
  'kvm_guest_cpu_init',
]);

export interface HazardObserver extends TraceConsumer<EventsIn<typeof HAZARD_EVENTS>> {
  hazard(): { readonly name: string; readonly explains: ReadonlySet<string> } | undefined;
}

export const NMI_WINDOW_PANIC = 'Host injected async #PF in interrupt disabled region';

export function hazardObserver(): HazardObserver {
  const inNmi = new Map<number, { pf: boolean }>();
  /** Per CPU: the token the host last wrote into the slot (0: cleared), and whether APF was disabled since. */
  const slot = new Map<number, { token: number; disabledSince: boolean; staleReenable: boolean }>();
  let found: { name: string; explains: ReadonlySet<string> } | undefined;
  const disabled = (c: number): void => {
    const sl = slot.get(c);
    if (sl !== undefined && sl.token !== 0) sl.disabledSince = true;
  };
  const set = (name: string, explains: readonly string[]): void => {
    found ??= { name, explains: new Set(explains) };
  };
  return {
    events: HAZARD_EVENTS,
    onRecord(rec) {
      const c = rec.cpu;
      switch (rec.event) {
        // cpu
        case 'nmi':
          inNmi.set(c, { pf: false });
          return;
        case 'iret':
          if (rec.vector === X86_EXCEPTION.NMI) inNmi.delete(c);
          return;
        case 'exception': {
          const n = rec.vector === X86_EXCEPTION.PF ? inNmi.get(c) : undefined;
          if (n !== undefined) n.pf = true;
          return;
        }
        // host
        case 'kvm_write_guest':
          if (rec.field === 'token' && rec.ok) slot.set(c, { token: rec.value, disabledSince: false, staleReenable: false });
          return;
        case 'kvm_async_pf_disable':
        case 'kvm_vcpu_init':
        case 'kvm_vcpu_reset':
          disabled(c);
          return;
        // guest
        case 'panic':
          if (rec.message.includes(NMI_WINDOW_PANIC) && inNmi.get(c)?.pf === true) set('nmi-in-async-pf-window', ['no-panic']);
          return;
        case 'apf_token_clear':
          slot.delete(c);
          return;
        case 'kvm_pv_disable_apf':
          disabled(c);
          return;
        case 'kvm_guest_cpu_init': {
          const sl = slot.get(c);
          if (sl !== undefined && sl.token !== 0 && sl.disabledSince) sl.staleReenable = true;
          return;
        }
      }
    },
    hazard: () => {
      if (found === undefined && [...slot.values()].some((sl) => sl.staleReenable)) {
        set('stale-token-after-disable', ['run-ends', 'checker:hung-task', 'checker:apf-answered', 'checker:interrupts']);
      }
      return found;
    },
  };
}
