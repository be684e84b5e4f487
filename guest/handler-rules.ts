/**
 * Debug checks on the async-PF handlers (in the spirit of lockdep): the kernel watches the APF
 * area accesses and MSR writes each handler makes and, when a handler returns having broken a rule
 * of the ABI, emits one `apf_handler_rule` record naming the rule. Nothing is emitted while the
 * rules hold, and the checks add no instruction, so a correct handler runs exactly as without them.
 *
 * The rules (spec §4.2, §4.8, §4.3):
 * - page ready: read the token, write 0 to the token slot, then write MSR_KVM_ASYNC_PF_ACK: the
 *   host posts the next completion only into a free slot, and looks again only at an ACK;
 * - flags: kvm_read_and_reset_apf_flags reads the flags and then writes 0 back;
 * - enable: the per-CPU enabled flag is set when MSR_KVM_ASYNC_PF_EN enables APF; disable writes
 *   0 to the MSR as well as clearing the flag.
 */
import { KVM_ASYNC_PF_ENABLED, MSR_KVM_ASYNC_PF_ACK, MSR_KVM_ASYNC_PF_EN } from '../shared-abi/msr';
import type { ApfField, ApfHandlers } from './handlers';
import type { GuestKernel } from './kernel';

/** One APF-relevant access made by a handler. */
export type ApfStep =
  | { readonly op: 'load'; readonly field: ApfField; readonly value: number }
  | { readonly op: 'store'; readonly field: ApfField; readonly value: number }
  | { readonly op: 'wrmsr'; readonly msr: number; readonly value: bigint };

const hex = (v: number | bigint): string => `0x${v.toString(16)}`;

/** A fresh step log on this CPU, and what to restore when the handler returns. */
interface StepLog {
  readonly pc: ReturnType<GuestKernel['cpu']>;
  readonly saved: ApfStep[] | null;
  readonly steps: ApfStep[];
}

/**
 * Starts logging the handler's steps on this CPU. The wrappers below run the handler's code
 * directly under their own `yield*` (no generator in between: every instruction of the handler
 * would resume one more level) and call `endLog` in a `finally`.
 */
function beginLog(k: GuestKernel): StepLog {
  const pc = k.cpu();
  const log: StepLog = { pc, saved: pc.apfSteps, steps: [] };
  pc.apfSteps = log.steps;
  return log;
}

/** The handler may have migrated (a wait that slept): restore on the CPU it started on. */
function endLog(log: StepLog): void {
  log.pc.apfSteps = log.saved;
}

function report(k: GuestKernel, handler: string, rule: string, message: string): void {
  k.emit(k.cpu().id, 'apf_handler_rule', { handler, rule, message });
}

const isAck = (s: ApfStep): boolean => s.op === 'wrmsr' && s.msr === MSR_KVM_ASYNC_PF_ACK;

/** The page-ready handler's order: load token, store 0, ACK. */
function checkPageReady(k: GuestKernel, steps: readonly ApfStep[]): void {
  const l = steps.findIndex((s) => s.op === 'load' && s.field === 'token');
  const first = steps[l];
  if (first === undefined || first.op !== 'load' || first.value === 0) return;
  const tok = hex(first.value);
  const a = steps.findIndex(isAck);
  const z = steps.findIndex((s) => s.op === 'store' && s.field === 'token' && s.value === 0);
  const h = 'pageReady';
  if (a >= 0 && a < l) {
    report(k, h, 'token_read_after_ack', `the page-ready handler read the token (${tok}) after writing MSR_KVM_ASYNC_PF_ACK: the ACK lets the host post the next token, so the read may see that one (read the token, write 0, then ACK)`);
  } else if (z < 0) {
    report(k, h, 'token_slot_not_cleared', `the page-ready handler returned with the token slot still ${tok}: the host cannot post the next page-ready until the guest writes 0`);
  } else if (a < 0) {
    report(k, h, 'no_ack', `the page-ready handler for token ${tok} returned without writing MSR_KVM_ASYNC_PF_ACK: the host looks at its completion queue again only at an ACK, so completions queued behind this one stay there`);
  } else if (a < z) {
    report(k, h, 'ack_before_token_clear', `the page-ready handler wrote MSR_KVM_ASYNC_PF_ACK while the token slot still held ${tok}: at the ACK the host finds the slot busy and posts nothing (write 0 to the token slot first, then ACK)`);
  }
}

/** kvm_read_and_reset_apf_flags: load, then store 0 when non-zero. */
function checkFlags(k: GuestKernel, steps: readonly ApfStep[]): void {
  const l = steps.findIndex((s) => s.op === 'load' && s.field === 'flags');
  const z = steps.findIndex((s) => s.op === 'store' && s.field === 'flags' && s.value === 0);
  const h = 'readAndResetFlags';
  if (z >= 0 && (l < 0 || z < l)) {
    report(k, h, 'flags_cleared_before_read', 'kvm_read_and_reset_apf_flags wrote 0 to the flags before reading them: the reason the host wrote is lost, so an async #PF is taken for an ordinary one');
    return;
  }
  const load = steps[l];
  if (load !== undefined && load.op === 'load' && load.value !== 0 && z < 0) {
    report(k, h, 'flags_not_reset', `kvm_read_and_reset_apf_flags read flags ${hex(load.value)} and did not write 0 back: the stale value makes the next ordinary #PF look like an async one`);
  }
}

const enWrites = (steps: readonly ApfStep[]): bigint[] => steps.flatMap((s) => (s.op === 'wrmsr' && s.msr === MSR_KVM_ASYNC_PF_EN ? [s.value] : []));

function checkCpuInit(k: GuestKernel, steps: readonly ApfStep[]): void {
  const en = enWrites(steps).at(-1);
  if (en !== undefined && (en & KVM_ASYNC_PF_ENABLED) !== 0n && !k.cpu().apfOn) {
    report(k, 'cpuInit', 'enabled_flag_not_set', `kvm_guest_cpu_init enabled async PF in MSR_KVM_ASYNC_PF_EN (${hex(en)}) but left this CPU's enabled flag clear: the #PF hook and the page-ready handler ignore every async event the host sends`);
  }
}

function checkDisable(k: GuestKernel, steps: readonly ApfStep[], wasOn: boolean): void {
  if (!wasOn || k.cpu().apfOn) return;
  if (!enWrites(steps).some((v) => (v & KVM_ASYNC_PF_ENABLED) === 0n)) {
    report(k, 'disable', 'msr_not_disabled', 'kvm_pv_disable_apf cleared this CPU\'s enabled flag without writing 0 to MSR_KVM_ASYNC_PF_EN: the host keeps injecting async #PFs and page-readies that the CPU now ignores');
  }
}

/** The handlers with the debug checks around the ones that have rules. */
export function withRuleChecks(k: GuestKernel, h: ApfHandlers): ApfHandlers {
  return {
    ...h,
    *pageReady(api, tf) {
      const code = h.pageReady(api, tf);
      const log = beginLog(k);
      try {
        yield* code;
      } finally {
        endLog(log);
      }
      checkPageReady(k, log.steps);
    },
    *readAndResetFlags(api) {
      const code = h.readAndResetFlags(api);
      const log = beginLog(k);
      let value: number;
      try {
        value = yield* code;
      } finally {
        endLog(log);
      }
      checkFlags(k, log.steps);
      return value;
    },
    *cpuInit(api) {
      const code = h.cpuInit(api);
      const log = beginLog(k);
      try {
        yield* code;
      } finally {
        endLog(log);
      }
      checkCpuInit(k, log.steps);
    },
    *disable(api) {
      const wasOn = k.cpu().apfOn;
      const code = h.disable(api);
      const log = beginLog(k);
      try {
        yield* code;
      } finally {
        endLog(log);
      }
      checkDisable(k, log.steps, wasOn);
    },
  };
}
