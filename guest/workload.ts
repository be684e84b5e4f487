/**
 * Workloads: the task programs of guest/program.ts turned into guest code.
 *
 * A user task's stack starts as [user program (CPL 3), ret_from_fork]: the first time it is
 * switched in, ret_from_fork finishes the context switch and IRETs to user mode. User operations
 * are user-mode instructions; `syscall`, `sleep`, `yield` and `exit` are SYSCALLs whose kernel
 * part runs in the syscall entry frame. A kernel thread runs its KernelOps at CPL 0.
 */
import type { Gva } from '../shared-abi/addr';
import type { TrapFrame } from '../shared-abi/arch';
import { Frame, GuestCodeError, asNumber, compute, insn, type Code } from './code';
import { exitPath } from './irqentry';
import type { GuestKernel } from './kernel';
import type { KernelOp, UserOp } from './program';
import { doExit } from './exit';
import { withFixup } from './msr';
import { preemptCountAdd, preemptCountSub, preemptDisable, preemptEnable } from './preempt';
import { finishTaskSwitch, schedule } from './sched';
import { sleepFor } from './sleep';
import { spinLock, spinUnlock } from './spinlock';
import type { Task } from './task';

/** Syscall numbers (x86-64 Linux where one exists; 500 is the scenario's "syscall with a body"). */
export const NR = { sched_yield: 24, nanosleep: 35, clone: 56, exit: 60, workload: 500 } as const;

/** Default value a write `touch` stores: unique per task and access. */
function nextValue(t: Task): number {
  t.accessSeq++;
  return ((t.id << 20) + t.accessSeq) >>> 0;
}

/** The initial stack of a user task: its program, and ret_from_fork on top. */
export function userTaskStack(k: GuestKernel, t: Task): Frame[] {
  const tf: TrapFrame = { event: { kind: 'syscall', nr: NR.clone }, savedCpl: 3, savedIf: true, seq: 0, t: k.sim.now };
  return [new Frame('program', t.name, userProgram(k, t)), new Frame('entry', 'ret_from_fork', retFromFork(k, tf), tf)];
}

function* retFromFork(k: GuestKernel, tf: TrapFrame): Code {
  yield* finishTaskSwitch(k);
  yield insn.cli();
  yield* exitPath(k, tf);
  yield insn.iret(tf);
}

function* userProgram(k: GuestKernel, t: Task): Code<never> {
  yield* runUserOps(k, t, t.program as readonly UserOp[]);
  t.syscallOp = { op: 'exit', code: 0 };
  yield insn.syscall(NR.exit);
  throw new Error(`task ${t.name} returned from exit`);
}

function* access(k: GuestKernel, t: Task, gva: Gva, write: boolean, value: number | undefined, kernel: boolean): Code {
  const v = write ? (value ?? nextValue(t)) >>> 0 : 0;
  const cpu = (): number => k.executing?.id ?? t.cpu;
  k.runningFrame().onRetire = (r) => {
    k.emit(cpu(), 'task_access', { task: t.name, gva, write, value: write ? v : asNumber(r, 'touch'), kernel });
  };
  if (write) yield insn.store(gva, v, 4);
  else yield insn.load(gva, 4);
}

function* runUserOps(k: GuestKernel, t: Task, ops: readonly UserOp[]): Code {
  for (const op of ops) {
    switch (op.op) {
      case 'touch':
        yield* access(k, t, (op.page + (op.offset ?? 0)) as Gva, op.write === true, op.value, false);
        break;
      case 'compute':
        yield* compute(op.ns);
        break;
      case 'syscall':
        t.syscallOp = op;
        yield insn.syscall(NR.workload);
        break;
      case 'sleep':
        t.syscallOp = op;
        yield insn.syscall(NR.nanosleep);
        break;
      case 'yield':
        t.syscallOp = op;
        yield insn.syscall(NR.sched_yield);
        break;
      case 'loop':
        for (let i = 0; i < op.times; i++) yield* runUserOps(k, t, op.body);
        break;
      case 'exit':
        t.syscallOp = op;
        yield insn.syscall(NR.exit);
        break;
    }
  }
}

/** entry_SYSCALL_64: the kernel part of a user task's system call. */
export function* syscallEntry(k: GuestKernel, tf: TrapFrame): Code {
  const t = k.current();
  const op = t.syscallOp;
  t.syscallOp = null;
  yield insn.sti();
  // Syscall dispatch: the sys_call_table load (also ends the STI shadow before the body runs).
  yield insn.load(k.cpu().percpuGva(24), 8);
  if (op !== null) {
    switch (op.op) {
      case 'syscall':
        yield* runKernelOps(k, op.body);
        break;
      case 'sleep':
        yield* sleepFor(k, op.ns, 'interruptible', 'nanosleep');
        break;
      case 'yield':
        k.count('sched_yield');
        yield* schedule(k);
        break;
      case 'exit':
        yield* doExit(k, op.code ?? 0);
        break;
      default:
        break;
    }
  }
  const cur = k.current();
  if ((cur.preemptCount & 0xff) !== 0 || cur.locksHeld.length > 0) {
    k.bug('preempt_count_leak', `BUG: ${cur.name}/${cur.id} returning to user space with preempt_count 0x${cur.preemptCount.toString(16)} and locks held: ${cur.locksHeld.join(', ') || 'none'}`);
  }
  if (cur.rcuDepth > 0) k.warn(`WARNING: ${cur.name}/${cur.id} returning to user space inside an RCU read-side critical section`);
  yield insn.cli();
  yield* exitPath(k, tf);
  yield insn.iret(tf);
}

/** might_sleep(): in an atomic context a sleeping function is a bug. */
function mightSleep(k: GuestKernel, where: string): void {
  const t = k.current();
  if (t.preemptCount !== 0) {
    k.bug(
      'sleeping_in_invalid_context',
      `BUG: sleeping function called from invalid context at ${where}: in_atomic(): 1, irqs_disabled(): ${k.cpu().vcpu.ifFlag ? 0 : 1}, pid: ${t.id}, name: ${t.name}`,
    );
  }
}

/** Run kernel operations (a syscall body or a kernel thread's program). */
export function* runKernelOps(k: GuestKernel, ops: readonly KernelOp[]): Code {
  for (const op of ops) {
    const t = k.current();
    switch (op.op) {
      case 'copy_from_user':
      case 'copy_to_user': {
        const gva = (op.page + (op.offset ?? 0)) as Gva;
        const write = op.op === 'copy_to_user';
        const v = write ? ((op.op === 'copy_to_user' ? op.value : undefined) ?? nextValue(t)) >>> 0 : 0;
        const cpuOf = (): number => k.executing?.id ?? t.cpu;
        k.runningFrame().onRetire = (r) => {
          k.emit(cpuOf(), 'task_access', { task: t.name, gva, write, value: write ? v : asNumber(r, op.op), kernel: true });
        };
        const r = yield* withFixup(k, write ? insn.store(gva, v, 4) : insn.load(gva, 4));
        if (!r.ok) {
          k.count('uaccess_fixup');
          k.emit(k.cpu().id, 'uaccess_fixup', { task: t.name, gva });
        }
        break;
      }
      case 'kernel_touch':
        yield* access(k, t, (op.page + (op.offset ?? 0)) as Gva, op.write === true, op.value, true);
        break;
      case 'compute':
        yield* compute(op.ns);
        break;
      case 'preempt_disable':
        yield* preemptDisable(k);
        break;
      case 'preempt_enable':
        yield* preemptEnable(k);
        break;
      case 'spin_lock': {
        const l = k.lock(`workload:${op.lock}`, op.raw === true);
        yield* spinLock(k, l);
        k.current().locksHeld.push(op.lock);
        break;
      }
      case 'spin_unlock': {
        const l = k.lock(`workload:${op.lock}`, op.raw === true);
        const cur = k.current();
        const i = cur.locksHeld.lastIndexOf(op.lock);
        if (i < 0) k.warn(`BUG: ${cur.name} unlocks ${op.lock}, which it does not hold`);
        else cur.locksHeld.splice(i, 1);
        yield* spinUnlock(k, l);
        break;
      }
      case 'local_irq_disable':
        yield insn.cli();
        break;
      case 'local_irq_enable':
        yield insn.sti();
        break;
      case 'rcu_read_lock': {
        t.rcuDepth++;
        // Without preemptible RCU, rcu_read_lock() is preempt_disable().
        if (!k.config.toggles.config_preempt) preemptCountAdd(k, t, 1);
        yield insn.store(k.cpu().percpuGva(16), t.rcuDepth);
        break;
      }
      case 'rcu_read_unlock': {
        if (t.rcuDepth === 0) k.warnOnce(`rcu_read_unlock() without rcu_read_lock() in ${t.name}`);
        t.rcuDepth = Math.max(0, t.rcuDepth - 1);
        if (!k.config.toggles.config_preempt) preemptCountSub(k, t, 1);
        yield insn.store(k.cpu().percpuGva(16), t.rcuDepth);
        break;
      }
      case 'sleep':
        mightSleep(k, 'msleep');
        yield* sleepFor(k, op.ns, 'uninterruptible', 'msleep');
        break;
      case 'schedule':
        yield* schedule(k);
        break;
      case 'loop':
        for (let i = 0; i < op.times; i++) yield* runKernelOps(k, op.body);
        break;
      case 'kvm_run':
        if (k.hypervisor === undefined) throw new GuestCodeError(`kvm_run of '${op.vcpu}' in a kernel without a hypervisor (guest/nested)`);
        yield* k.hypervisor.kvmRun(k, op.vcpu);
        break;
    }
  }
}

/** A kernel thread: finish the first switch, run the program, exit. */
export function* kthreadProgram(k: GuestKernel, t: Task): Code<never> {
  yield* finishTaskSwitch(k);
  yield* runKernelOps(k, t.program as readonly KernelOp[]);
  return yield* doExit(k, 0);
}
