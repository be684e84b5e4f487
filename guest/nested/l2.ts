/**
 * A nested (L2) guest: one vCPU's worth of code, fetched by the vCPU while it is in guest mode.
 *
 * Deliberately tiny, but with the two privilege levels the async-PF rules care about: the program
 * runs at CPL 3; a `syscall` enters L2's kernel (CPL 0, through its own syscall entry, back with
 * IRET). L2 runs with paging off, so its addresses are its guest-physical addresses; every access
 * is one load or store (a `task_access` record when it retires, named after the L2 guest, so the
 * page-integrity checker follows L2 data too). When the program ends, L2's kernel halts for good:
 * the HLT exits to L1, which stops running it. Any other event delivered to L2 (an exception it
 * cannot handle) is an oops: L2 halts the same way and L1 reports it.
 */
import type { Gva } from '../../shared-abi/addr';
import type { Insn, InsnResult, NestedGuestCode, NestedGuestState, TrapFrame } from '../../shared-abi/arch';
import { eventVector } from '../../shared-abi/arch';
import type { SourceTrace } from '../../sim/trace';
import { Frame, FrameRunner, GuestCodeError, asNumber, compute, insn, type Code } from '../code';
import type { L2KernelOp, L2Spec, L2UserOp } from './program';

/** L2's syscall numbers: its one "run this kernel body" call, and exit. */
const NR_CALL = 500;
const NR_EXIT = 60;

/** What the L2 guest needs from its surroundings. */
export interface L2Env {
  /** A guest trace record on the L1 CPU that runs this L2 now. */
  readonly emit: SourceTrace<'guest'>;
}

export class L2Guest implements NestedGuestCode {
  /** L2's CPL and RFLAGS.IF while L1 runs (the VMCS guest-state area): it starts in user mode. */
  readonly state: NestedGuestState = { cpl: 3, ifFlag: true };
  /** The program ran to its end. */
  finished = false;
  /** Why L2 died, if it did. */
  crashed: string | null = null;
  private readonly stack: Frame[];
  private readonly runner: FrameRunner;
  private call: readonly L2KernelOp[] | null = null;
  private seq = 0;

  constructor(
    readonly spec: L2Spec,
    /** Position among L2 guests (makes default write values unique). */
    readonly index: number,
    private readonly env: L2Env,
  ) {
    this.stack = [new Frame('program', spec.name, this.program())];
    this.runner = new FrameRunner(
      () => this.stack,
      () => {
        throw new GuestCodeError(`L2 ${spec.name}: empty stack`);
      },
      `L2 ${spec.name}`,
    );
  }

  get name(): string {
    return this.spec.name;
  }

  /** L2 will not run any more (finished or crashed). */
  get over(): boolean {
    return this.finished || this.crashed !== null;
  }

  // --- NestedGuestCode ---

  fetch(): Insn {
    return this.runner.fetch();
  }

  retire(result: InsnResult): void {
    this.runner.retire(result);
  }

  vector(tf: TrapFrame): boolean {
    const ev = tf.event;
    if (ev.kind === 'syscall') this.runner.push(new Frame('entry', `l2 syscall ${ev.nr}`, this.syscallEntry(tf), tf));
    else this.runner.push(new Frame('entry', 'l2 oops', this.oops(tf), tf));
    return true;
  }

  /** L1 gave up on this guest (e.g. a #PF exit it cannot make sense of): L2 is dead. */
  kill(why: string): void {
    if (this.over) return;
    this.crashed = why;
    this.env.emit('nested_l2_oops', { l2: this.name, vector: -1, message: why });
  }

  // --- L2's code ---

  private *program(): Code<never> {
    yield* this.userOps(this.spec.program);
    yield insn.syscall(NR_EXIT);
    throw new GuestCodeError(`L2 ${this.name} returned from exit`);
  }

  private *userOps(ops: readonly L2UserOp[]): Code {
    for (const op of ops) {
      switch (op.op) {
        case 'touch':
          yield* this.access(op.addr, op.write === true, op.value, false);
          break;
        case 'compute':
          yield* compute(op.ns);
          break;
        case 'syscall':
          this.call = op.body;
          yield insn.syscall(NR_CALL);
          break;
        case 'loop':
          for (let i = 0; i < op.times; i++) yield* this.userOps(op.body);
          break;
      }
    }
  }

  private *kernelOps(ops: readonly L2KernelOp[]): Code {
    for (const op of ops) {
      switch (op.op) {
        case 'touch':
          yield* this.access(op.addr, op.write === true, op.value, true);
          break;
        case 'compute':
          yield* compute(op.ns);
          break;
        case 'loop':
          for (let i = 0; i < op.times; i++) yield* this.kernelOps(op.body);
          break;
      }
    }
  }

  private *access(addr: number, write: boolean, value: number | undefined, kernel: boolean): Code {
    const v = write ? (value ?? this.nextValue()) >>> 0 : 0;
    this.runner.top().onRetire = (r) => {
      this.env.emit('task_access', { task: this.name, gva: addr, write, value: write ? v : asNumber(r, 'l2 touch'), kernel });
    };
    if (write) yield insn.store(addr as Gva, v, 4);
    else yield insn.load(addr as Gva, 4);
  }

  private nextValue(): number {
    this.seq++;
    return (0xa0000000 + (this.index << 20) + this.seq) >>> 0;
  }

  /** L2's syscall entry: the kernel body, or exit (then halt for good). */
  private *syscallEntry(tf: TrapFrame): Code {
    const body = this.call;
    this.call = null;
    const nr = tf.event.kind === 'syscall' ? tf.event.nr : -1;
    if (nr === NR_EXIT) {
      this.finished = true;
      this.env.emit('nested_l2_exit', { l2: this.name });
      yield* this.haltForever();
      return;
    }
    yield insn.sti();
    if (body !== null) yield* this.kernelOps(body);
    yield insn.cli();
    yield insn.iret(tf);
  }

  private *oops(tf: TrapFrame): Code {
    const vector = eventVector(tf.event);
    if (this.crashed === null) {
      this.crashed = `unexpected event (vector ${vector}) in L2`;
      this.env.emit('nested_l2_oops', { l2: this.name, vector, message: this.crashed });
    }
    yield* this.haltForever();
  }

  private *haltForever(): Code {
    yield insn.cli();
    for (;;) yield insn.hlt();
  }
}
