/**
 * do_machine_check for the one kind of #MC the model's VMM injects: an action-required memory error
 * (QEMU's kvm_mce_inject after a failed fault-in of a guest page). The handler reads the bank:
 *
 * - no machine check in progress / not SRAR (e.g. a raw #MC): unrecoverable → the caller oopses
 *   ("Fatal machine check"), as before;
 * - user mode: memory_failure + SIGBUS (BUS_MCEERR_AR) for the task;
 * - kernel mode at an instruction with an exception-table entry (copy_from_user): the access is
 *   fixed up and returns -EFAULT (Linux ≥ 6.1, "x86/mce: Recover from poison found while copying
 *   from user space");
 * - kernel mode without a fixup: panic "Machine check from kernel context" (mce_panic).
 */
import type { TrapFrame } from '../../shared-abi/arch';
import { MCG_STATUS_MCIP, MSR_IA32_MC0_ADDR, MSR_IA32_MC0_STATUS, MSR_IA32_MCG_STATUS, isSrao, isSrar } from '../../shared-abi/mce';
import { MSR_KVM_ASYNC_PF_ACK } from '../../shared-abi/msr';
import type { Code, Frame } from '../code';
import type { GuestKernel } from '../kernel';
import { krdmsr, kwrmsr } from '../msr';
import { kernelPanic } from '../panic';
import { SIGBUS } from '../signal';

export const MCE_KERNEL_PANIC = 'Machine check from kernel context: action required, no fixup';

/** 'fatal': not a recoverable error (the caller oopses); 'handled': return from the exception. */
export function* doMachineCheck(k: GuestKernel, tf: TrapFrame, interrupted: Frame): Code<'fatal' | 'handled'> {
  const mcg = (yield* krdmsr(k, MSR_IA32_MCG_STATUS)) ?? 0n;
  if ((mcg & MCG_STATUS_MCIP) === 0n) return 'fatal';
  const status = (yield* krdmsr(k, MSR_IA32_MC0_STATUS)) ?? 0n;
  if (k.design.asyncMachineCheck && isSrao(status)) return yield* asyncMemoryFailure(k);
  if (!isSrar(status)) return 'fatal';
  const addr = Number((yield* krdmsr(k, MSR_IA32_MC0_ADDR)) ?? 0n);
  yield* kwrmsr(k, MSR_IA32_MC0_STATUS, 0n);
  yield* kwrmsr(k, MSR_IA32_MCG_STATUS, 0n);
  k.count('machine_check');
  const t = k.current();
  const cpu = k.cpu().id;
  if (tf.savedCpl === 3) {
    k.emit(cpu, 'machine_check', { task: t.name, gpa: addr, cpl: 3, action: 'sigbus' });
    k.emit(cpu, 'signal', { task: t.name, sig: 'SIGBUS', gpa: addr });
    t.killed = SIGBUS;
    return 'handled';
  }
  if (interrupted.extable && interrupted.pending !== null) {
    k.emit(cpu, 'machine_check', { task: t.name, gpa: addr, cpl: 0, action: 'fixup' });
    k.count('extable_fixup');
    interrupted.fixedUp = true;
    interrupted.skipPending();
    return 'handled';
  }
  k.emit(cpu, 'machine_check', { task: t.name, gpa: addr, cpl: 0, action: 'panic' });
  return yield* kernelPanic(k, MCE_KERNEL_PANIC);
}

/**
 * `mc` design: an action-optional #MC whose token is in the APF token slot reports a failed page-in
 * (it arrives in whatever context runs, IRQs on or off). Remember the token, wake its waiter (which
 * then gets SIGBUS), clear the slot and ACK like a page-ready.
 */
function* asyncMemoryFailure(k: GuestKernel): Code<'handled'> {
  yield* kwrmsr(k, MSR_IA32_MC0_STATUS, 0n);
  yield* kwrmsr(k, MSR_IA32_MCG_STATUS, 0n);
  const api = k.apfApi();
  const token = (yield* api.apfLoad('token')) >>> 0;
  api.trace('apf_design_entry', { design: 'mc', token, entry: 'mce_token' });
  if (token === 0) return 'handled';
  k.design.failedTokens.add(token);
  yield* api.handlers.wake(api, token);
  yield* api.apfStore('token', 0);
  yield* api.wrmsr(MSR_KVM_ASYNC_PF_ACK, 1n);
  return 'handled';
}
