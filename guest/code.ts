/**
 * The guest code model: generator functions that yield instructions.
 *
 * Guest code is written as `function* f(): Code<T>`: every `yield insn` is one instruction at an
 * instruction boundary, and the value the `yield` evaluates to is what the instruction retired
 * with (a loaded value, an RDMSR result, the ns a `compute` actually ran, ...). Functions compose
 * with `yield*`.
 *
 * Rule for side effects: JavaScript that changes kernel state belongs *immediately before* the
 * `yield` of the instruction that embodies it. Frames are resumed lazily, when the CPU fetches
 * their next instruction, so the JavaScript before a `yield` runs in the same simulation step as
 * that instruction: a test-and-set of a lock word followed by `yield store(lock)` is atomic with
 * respect to every other vCPU and every interrupt.
 *
 * A running context is a stack of `Frame`s: the program at the bottom, one frame per exception or
 * interrupt handler above it. `FrameRunner` implements the CPU-facing half of `GuestCode` on top
 * of a stack: fetch the top frame's pending instruction, advance it on retire, push a handler on
 * `vector`, pop it when its `iret` retires.
 */
import type { Gva } from '../shared-abi/addr';
import type { AccessSize, ControlRegister, CpuidResult, Insn, InsnResult, TrapFrame } from '../shared-abi/arch';

/** A piece of guest code that returns `T`. */
export type Code<T = void> = Generator<Insn, T, InsnResult>;

// ---------------------------------------------------------------------------------------------
// Instruction constructors
// ---------------------------------------------------------------------------------------------

const STI: Insn = { op: 'sti' };
const CLI: Insn = { op: 'cli' };
const HLT: Insn = { op: 'hlt' };
const STI_HLT: Insn = { op: 'sti_hlt' };
const PAUSE: Insn = { op: 'pause' };
const UD2: Insn = { op: 'ud2' };
const RDTSC: Insn = { op: 'rdtsc' };

export const insn = {
  load: (gva: Gva, size: AccessSize = 4): Insn => ({ op: 'load', gva, size }),
  store: (gva: Gva, value: number | bigint, size: AccessSize = 4): Insn => ({ op: 'store', gva, size, value }),
  rdmsr: (msr: number): Insn => ({ op: 'rdmsr', msr }),
  wrmsr: (msr: number, value: bigint): Insn => ({ op: 'wrmsr', msr, value }),
  cpuid: (leaf: number, subleaf?: number): Insn => (subleaf === undefined ? { op: 'cpuid', leaf } : { op: 'cpuid', leaf, subleaf }),
  sti: (): Insn => STI,
  cli: (): Insn => CLI,
  hlt: (): Insn => HLT,
  stiHlt: (): Insn => STI_HLT,
  pause: (): Insn => PAUSE,
  ud2: (): Insn => UD2,
  rdtsc: (): Insn => RDTSC,
  compute: (ns: number): Insn => ({ op: 'compute', ns }),
  readCr: (cr: ControlRegister): Insn => ({ op: 'read_cr', cr }),
  writeCr: (cr: ControlRegister, value: number): Insn => ({ op: 'write_cr', cr, value }),
  invlpg: (gva: Gva): Insn => ({ op: 'invlpg', gva }),
  syscall: (nr: number): Insn => ({ op: 'syscall', nr }),
  iret: (frame: TrapFrame): Insn => ({ op: 'iret', frame }),
} as const;

// ---------------------------------------------------------------------------------------------
// Result coercion (an instruction's result type is fixed by its op; these check it)
// ---------------------------------------------------------------------------------------------

export function asNumber(r: InsnResult, what: string): number {
  if (typeof r === 'number') return r;
  if (typeof r === 'bigint') return Number(r);
  throw new Error(`${what}: expected a number result, got ${String(r)}`);
}

export function asBigint(r: InsnResult, what: string): bigint {
  if (typeof r === 'bigint') return r;
  if (typeof r === 'number') return BigInt(r);
  throw new Error(`${what}: expected a bigint result, got ${String(r)}`);
}

export function asCpuid(r: InsnResult, what: string): CpuidResult {
  if (typeof r === 'object' && r !== null) return r;
  throw new Error(`${what}: expected a CPUID result, got ${String(r)}`);
}

// ---------------------------------------------------------------------------------------------
// Small instruction sequences every piece of guest code uses
// ---------------------------------------------------------------------------------------------

export function* load32(gva: Gva): Code<number> {
  return asNumber(yield insn.load(gva, 4), 'load32');
}

export function* store32(gva: Gva, v: number): Code {
  yield insn.store(gva, v >>> 0, 4);
}

export function* readCr2(): Code<number> {
  return asNumber(yield insn.readCr(2), 'read_cr2');
}

export function* rdtsc(): Code<number> {
  return asNumber(yield insn.rdtsc(), 'rdtsc');
}

/** Straight-line work for `ns` ns; `compute` is interruptible, so loop for what is left. */
export function* compute(ns: number): Code {
  let left = Math.max(0, Math.round(ns));
  while (left > 0) {
    const spent = asNumber(yield insn.compute(left), 'compute');
    left -= Math.max(0, spent);
  }
}

// ---------------------------------------------------------------------------------------------
// Frames
// ---------------------------------------------------------------------------------------------

/** What a frame is: a task's program, an IDT/syscall entry (ends with iret), or a plain call. */
export type FrameKind = 'program' | 'entry' | 'call';

/**
 * One frame of a kernel stack: a generator, the instruction it is waiting to execute, and the
 * trap frame it received (for entries).
 */
export class Frame {
  /** The instruction the CPU will fetch next from this frame (null: not produced yet). */
  pending: Insn | null = null;
  /** What to resume the generator with (the retired instruction's result). */
  feed: InsnResult = undefined;
  /** The pending instruction has an exception-table entry (a fault may be fixed up). */
  extable = false;
  /** An exception handler fixed up the pending instruction (it completes without executing). */
  fixedUp = false;
  /** The generator returned. */
  done = false;
  /** Return value of the generator, for `call` frames. */
  result: unknown = undefined;
  /** Called when the pending instruction retires (not when it is fixed up): exact-time observations. */
  onRetire: ((result: InsnResult) => void) | null = null;

  constructor(
    readonly kind: FrameKind,
    readonly name: string,
    readonly gen: Code<unknown>,
    readonly tf: TrapFrame | null = null,
  ) {}

  /** Complete the pending instruction without executing it (exception-table fixup, HLT woken). */
  skipPending(result: InsnResult = undefined): void {
    if (this.pending === null) return;
    this.pending = null;
    this.feed = result;
    this.onRetire = null;
  }
}

/** Raised when guest code breaks the frame discipline (a bug in the model, not in the guest). */
export class GuestCodeError extends Error {
  override name = 'GuestCodeError';
}

/**
 * Runs the instruction stream of a stack of frames. `stack()` returns the stack that runs now
 * (a kernel switches it on context switches, possibly while a generator is being advanced, so
 * every resolution re-reads it).
 */
export class FrameRunner {
  /** Number of generator steps taken (diagnostics). */
  resumes = 0;

  constructor(
    private readonly stack: () => Frame[],
    private readonly onEmpty: () => never,
    private readonly label: string,
  ) {}

  /** The top frame of the stack that runs now. */
  top(): Frame {
    const s = this.stack();
    const f = s[s.length - 1];
    if (f === undefined) return this.onEmpty();
    return f;
  }

  /** The instruction at the instruction pointer (idempotent until retire/vector). */
  fetch(): Insn {
    for (let guard = 0; guard < 100_000; guard++) {
      const stack = this.stack();
      const f = stack[stack.length - 1];
      if (f === undefined) return this.onEmpty();
      if (f.pending !== null) return f.pending;
      if (f.done) throw new GuestCodeError(`${this.label}: frame '${f.name}' finished but is still on the stack`);
      const feed = f.feed;
      f.feed = undefined;
      this.resumes++;
      const r = f.gen.next(feed);
      if (r.done === true) {
        f.done = true;
        f.result = r.value;
        this.finishFrame(f);
        continue;
      }
      f.pending = r.value;
      // The generator may have switched stacks (context switch) or pushed frames: loop and look
      // at whatever runs now.
    }
    throw new GuestCodeError(`${this.label}: no instruction after 100000 frame resolutions (a generator loops without yielding?)`);
  }

  /** The instruction returned by the last fetch completed. */
  retire(result: InsnResult): void {
    const f = this.top();
    const done = f.pending;
    if (done === null) throw new GuestCodeError(`${this.label}: retire() with nothing fetched in frame '${f.name}'`);
    f.pending = null;
    f.feed = result;
    const hook = f.onRetire;
    if (hook !== null) {
      f.onRetire = null;
      hook(result);
    }
    if (done.op === 'iret') this.popEntry(f, done.frame);
  }

  /** Push a handler frame (the CPU vectored); the interrupted frame keeps its pending instruction. */
  push(frame: Frame): void {
    this.stack().push(frame);
  }

  private popEntry(f: Frame, tf: TrapFrame): void {
    const stack = this.stack();
    if (stack[stack.length - 1] !== f) throw new GuestCodeError(`${this.label}: iret from a frame that is not on top`);
    if (f.kind !== 'entry' || f.tf !== tf) {
      throw new GuestCodeError(`${this.label}: iret in frame '${f.name}' with a trap frame it did not receive`);
    }
    stack.pop();
    f.done = true;
    // Let the generator run its cleanup (nothing may follow the iret).
    const r = f.gen.next(undefined);
    if (r.done !== true) throw new GuestCodeError(`${this.label}: frame '${f.name}' yields instructions after its iret`);
  }

  private finishFrame(f: Frame): void {
    const stack = this.stack();
    if (stack[stack.length - 1] !== f) throw new GuestCodeError(`${this.label}: frame '${f.name}' finished while not on top`);
    if (f.kind === 'entry') throw new GuestCodeError(`${this.label}: entry frame '${f.name}' returned without iret`);
    if (f.kind === 'program') throw new GuestCodeError(`${this.label}: program frame '${f.name}' returned (programs end in do_exit)`);
    stack.pop();
  }
}

/** Result of an instruction executed under an exception-table entry. */
export type Fixed = { readonly ok: true; readonly value: InsnResult } | { readonly ok: false };

/**
 * Execute `i` on frame `f` with an exception-table entry: if it faults and the handler applies
 * the fixup, the instruction completes without executing and the result is `{ok: false}`.
 */
export function* underFixup(f: Frame, i: Insn): Code<Fixed> {
  f.extable = true;
  f.fixedUp = false;
  const r = yield i;
  f.extable = false;
  if (f.fixedUp) {
    f.fixedUp = false;
    return { ok: false };
  }
  return { ok: true, value: r };
}
