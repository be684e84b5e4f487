/**
 * A minimal scripted guest for host tests: a `GuestCode` that runs a generator of instructions
 * (the "main program") and, for each delivered vector, a handler generator that ends with an
 * automatic IRET. Results of instructions come back as the value of `yield`.
 *
 * It is deliberately tiny: no scheduler, no tasks. Tests use it to make the guest do exactly the
 * accesses, MSR writes and handler actions a host behaviour needs.
 */
import type { GuestCode, Insn, InsnResult, NestedVmexit, ResetKind, TrapFrame } from '../../shared-abi/arch';
import { eventVector } from '../../shared-abi/arch';

export type Script = Generator<Insn, void, InsnResult>;
export type Program = (g: ScriptedGuest) => Script;
export type Handler = (frame: TrapFrame, g: ScriptedGuest) => Script;

export interface ScriptedGuestOptions {
  /** The main program; when it ends the guest idles (see `idle`). */
  readonly main?: Program;
  /** Handlers by vector; vectors without one get a handler that only IRETs. */
  readonly handlers?: Readonly<Record<number, Handler>>;
  /**
   * Vectors whose default handler skips the faulting instruction on return (an exception-table
   * fixup, like rdmsr_safe/wrmsr_safe): the interrupted program sees `undefined` as its result.
   */
  readonly fixup?: readonly number[];
  /** Vectors with no present IDT gate (delivery fails: #GP, #DF, triple fault). */
  readonly missingGates?: readonly number[];
  /** After `main`: `compute` (default: interruptible 1 ms chunks, any CPL), `hlt` or `sti_hlt` (CPL 0). */
  readonly idle?: 'compute' | 'hlt' | 'sti_hlt';
  /** Program to restart with after INIT/RESET (default: idle). */
  readonly onReset?: (kind: ResetKind, g: ScriptedGuest) => Program | undefined;
  /** Called on a nested VM-exit to L1 (the vCPU is back in L1, i.e. guest mode is off). */
  readonly onVmexit?: (exit: NestedVmexit, g: ScriptedGuest) => void;
}

/** What the guest saw, in order. */
export type GuestLogEntry =
  | { readonly kind: 'vector'; readonly t: number; readonly vector: number; readonly frame: TrapFrame }
  | { readonly kind: 'vmexit'; readonly exit: NestedVmexit }
  | { readonly kind: 'reset'; readonly reset: ResetKind }
  | { readonly kind: 'note'; readonly what: string; readonly data: Readonly<Record<string, unknown>> };

interface Ctx {
  readonly gen: Script | null;
  readonly frame: TrapFrame | null;
  cur: Insn;
  /** The handler is done: `cur` is its IRET. */
  ending: boolean;
  /** Set on the interrupted context by a fixup: skip its current instruction when the handler returns. */
  skip?: { readonly result: InsnResult };
}

export class ScriptedGuest implements GuestCode {
  readonly log: GuestLogEntry[] = [];
  /** Results of retired instructions of every context, in order. */
  readonly retired: { insn: Insn; result: InsnResult }[] = [];
  private stack: Ctx[] = [];
  private advancing: Ctx | null = null;

  constructor(private readonly opts: ScriptedGuestOptions = {}) {
    this.stack = [this.mainCtx(opts.main)];
  }

  /** Vectors delivered so far. */
  vectors(): number[] {
    return this.log.flatMap((e) => (e.kind === 'vector' ? [e.vector] : []));
  }

  /** Record something from inside a program (for assertions). */
  note(what: string, data: Readonly<Record<string, unknown>> = {}): void {
    this.log.push({ kind: 'note', what, data });
  }

  notes(what: string): Readonly<Record<string, unknown>>[] {
    return this.log.flatMap((e) => (e.kind === 'note' && e.what === what ? [e.data] : []));
  }

  /**
   * From a handler (or just before one is pushed): when the current handler returns, the
   * interrupted instruction counts as completed with `result` instead of being re-executed.
   */
  skipFaultingInsn(result?: InsnResult): void {
    const running = this.advancing;
    const i = running === null ? -1 : this.stack.indexOf(running);
    // A handler being set up is not on the stack yet: the interrupted context is the top.
    const interrupted = i > 0 ? this.stack[i - 1] : this.stack[this.stack.length - 1];
    if (interrupted !== undefined) interrupted.skip = { result };
  }

  /** Depth of nested handlers running now (0 = main program). */
  get depth(): number {
    return this.stack.length - 1;
  }

  fetch(): Insn {
    return this.top().cur;
  }

  retire(result: InsnResult): void {
    const ctx = this.top();
    this.retired.push({ insn: ctx.cur, result });
    if (ctx.ending) {
      this.stack.pop();
      if (this.stack.length === 0) this.stack.push(this.mainCtx(undefined));
      const below = this.top();
      const skip = below.skip;
      if (skip !== undefined) {
        below.skip = undefined;
        this.advance(below, skip.result);
      }
      return;
    }
    this.advance(ctx, result);
  }

  vector(frame: TrapFrame): boolean {
    const vec = eventVector(frame.event);
    if (this.opts.missingGates?.includes(vec) === true) return false;
    this.log.push({ kind: 'vector', t: frame.t, vector: vec, frame });
    const h = this.opts.handlers?.[vec];
    if (h === undefined && this.opts.fixup?.includes(vec) === true && frame.event.kind === 'exception') this.skipFaultingInsn();
    const gen = h === undefined ? null : h(frame, this);
    const ctx: Ctx = { gen, frame, cur: { op: 'iret', frame }, ending: true };
    if (gen !== null) {
      ctx.ending = false;
      this.advance(ctx, undefined);
    }
    this.stack.push(ctx);
    return true;
  }

  reset(kind: ResetKind): void {
    this.log.push({ kind: 'reset', reset: kind });
    this.stack = [this.mainCtx(this.opts.onReset?.(kind, this))];
  }

  vmexit(exit: NestedVmexit): void {
    this.log.push({ kind: 'vmexit', exit });
    this.opts.onVmexit?.(exit, this);
  }

  private top(): Ctx {
    const c = this.stack[this.stack.length - 1];
    if (c === undefined) throw new Error('scripted guest: empty context stack');
    return c;
  }

  private mainCtx(p: Program | undefined): Ctx {
    const gen = p === undefined ? null : p(this);
    const ctx: Ctx = { gen, frame: null, cur: this.idleInsn(), ending: false };
    if (gen !== null) this.advance(ctx, undefined);
    return ctx;
  }

  private idleInsn(): Insn {
    const idle = this.opts.idle ?? 'compute';
    return idle === 'compute' ? { op: 'compute', ns: 1_000_000 } : { op: idle };
  }

  private advance(ctx: Ctx, result: InsnResult): void {
    if (ctx.gen === null) {
      if (ctx.frame !== null) {
        ctx.cur = { op: 'iret', frame: ctx.frame };
        ctx.ending = true;
      } else {
        ctx.cur = this.idleInsn();
      }
      return;
    }
    const prev = this.advancing;
    this.advancing = ctx;
    let r: IteratorResult<Insn, void>;
    try {
      r = ctx.gen.next(result);
    } finally {
      this.advancing = prev;
    }
    if (r.done === true) {
      if (ctx.frame !== null) {
        ctx.cur = { op: 'iret', frame: ctx.frame };
        ctx.ending = true;
      } else {
        // A finished generator keeps answering `done`: the main context idles from now on.
        ctx.cur = this.idleInsn();
      }
      return;
    }
    ctx.cur = r.value;
  }
}
