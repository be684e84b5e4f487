/**
 * Unit tests of the kernel's pieces: profiles and toggles, the frame runner (code model), the
 * boot loader's page tables, the sleeper table, and scheduler behaviour (preemption, migration,
 * determinism).
 */
import fc from 'fast-check';
import { gva, PAGE_SIZE, type Gva } from '../../shared-abi/addr';
import { sleeperBucket } from '../../shared-abi/apf';
import type { Insn, TrapFrame } from '../../shared-abi/arch';
import { GuestMemory } from '../../sim/memory';
import { GuestMmu, identitySlat, XLATE_OK, XLATE_PF } from '../../sim/cpu/mmu';
import {
  Frame,
  FrameRunner,
  GUEST_PROFILE_NAMES,
  GUEST_PROFILES,
  GUEST_TOGGLES,
  GuestLayout,
  GuestLayoutPlan,
  PAGE_OFFSET,
  SleepNode,
  SleeperTable,
  resolveGuestProfile,
  type Code,
} from '../../guest';
import { SpinLock } from '../../guest/task';
import type { TaskSpec } from '../../guest/program';
import { buildGuestMachine } from '../support/guest-machine';
import { buildMini } from './support/mini-kernel';

describe('profiles and toggles', () => {
  test('the profile names are the contract', () => {
    expect(GUEST_PROFILE_NAMES).toEqual(['linux-5.2', 'linux-5.2-user-only', 'linux-5.8', 'linux-5.9', 'linux-6.6', 'current']);
    for (const n of GUEST_PROFILE_NAMES) expect(GUEST_PROFILES[n].description.length).toBeGreaterThan(20);
    expect(GUEST_PROFILES['linux-5.8'].unverified).toMatch(/q\.6/);
    for (const t of ['config_preempt', 'preempt_count', 'preempt_rt', 'dummy_alloc_outside_lock', 'wake_all_frees_dummies', 'page_ready_eoi', 'teardown_boot_cpu', 'disable_apf_on_crash', 'cr2_read_at_entry', 'nmi_saves_cr2', 'kvmapf', 'send_always']) {
      expect(GUEST_TOGGLES).toHaveProperty(t);
    }
  });

  test('historical defaults', () => {
    const r = (n: (typeof GUEST_PROFILE_NAMES)[number]): Record<string, boolean> => ({ ...resolveGuestProfile(n).toggles });
    expect(r('linux-5.2')).toMatchObject({ send_always: true, cr2_read_at_entry: false, apf_panics: false, dummy_alloc_outside_lock: false, teardown_boot_cpu: false });
    expect(r('linux-5.2-user-only')).toMatchObject({ send_always: false, cr2_read_at_entry: false });
    expect(r('linux-5.8')).toMatchObject({ send_always: false, apf_panics: true, cr2_read_at_entry: true });
    expect(r('linux-5.9')).toMatchObject({ dummy_alloc_outside_lock: false, disable_apf_on_crash: false, page_ready_eoi: true });
    expect(r('linux-6.6')).toMatchObject({ dummy_alloc_outside_lock: true, teardown_boot_cpu: true, disable_apf_on_crash: true });
    expect(GUEST_PROFILES.current.layout).toBe('v6.7');
    expect(GUEST_PROFILES['linux-5.2'].layout).toBe('v2.6.38');
  });

  test('derived toggles and rejected combinations', () => {
    expect(resolveGuestProfile('linux-5.2', { config_preempt: false }).toggles).toMatchObject({ send_always: false, preempt_count: false });
    expect(resolveGuestProfile('linux-5.2', { config_preempt: false, preempt_count: true }).toggles.preempt_count).toBe(true);
    expect(resolveGuestProfile('current', { send_always: true }).overridden).toEqual(['send_always']);
    expect(() => resolveGuestProfile('current', { preempt_count: false })).toThrow(/requires preempt_count/);
    expect(() => resolveGuestProfile('current', { nope: true } as never)).toThrow(/unknown guest toggle/);
    expect(() => resolveGuestProfile('linux-4.4' as never)).toThrow(/unknown guest profile/);
  });
});

describe('code model: FrameRunner', () => {
  const tf = (t: number): TrapFrame => ({ event: { kind: 'interrupt', vector: 0x20 }, savedCpl: 0, savedIf: true, seq: t, t });

  test('fetch is idempotent until retire; results flow back into the generator; a handler frame pops on iret', () => {
    const stack: Frame[] = [];
    const seen: unknown[] = [];
    function* prog(): Code<never> {
      seen.push(yield { op: 'rdtsc' });
      seen.push(yield { op: 'load', gva: gva(0x1000), size: 4 });
      for (;;) yield { op: 'pause' };
    }
    const r = new FrameRunner(() => stack, () => {
      throw new Error('empty');
    }, 't');
    stack.push(new Frame('program', 'p', prog()));
    const a = r.fetch();
    expect(r.fetch()).toBe(a);
    expect(a.op).toBe('rdtsc');
    r.retire(42);
    // An interrupt arrives before the load: the handler runs, then the load is fetched again.
    const frame = tf(1);
    function* handler(): Code {
      yield { op: 'cli' };
      yield { op: 'iret', frame };
    }
    expect(r.fetch().op).toBe('load');
    r.push(new Frame('entry', 'h', handler(), frame));
    expect(r.fetch().op).toBe('cli');
    r.retire(undefined);
    const iret = r.fetch();
    expect(iret.op).toBe('iret');
    r.retire(undefined);
    expect(stack.length).toBe(1);
    expect(r.fetch().op).toBe('load');
    r.retire(7);
    expect(r.fetch().op).toBe('pause');
    expect(seen).toEqual([42, 7]);
  });

  test('a fixed-up instruction completes without executing; onRetire fires only on real retirement', () => {
    const stack: Frame[] = [];
    const log: string[] = [];
    const ref: { f: Frame | null } = { f: null };
    const fr = (): Frame => ref.f!;
    function* prog(): Code<never> {
      fr().onRetire = () => log.push('retired-1');
      const x = yield { op: 'load', gva: gva(0x2000), size: 4 };
      log.push(`got ${String(x)}`);
      fr().onRetire = () => log.push('retired-2');
      yield { op: 'load', gva: gva(0x3000), size: 4 };
      for (;;) yield { op: 'pause' };
    }
    const r = new FrameRunner(() => stack, () => {
      throw new Error('empty');
    }, 't');
    const f = new Frame('program', 'p', prog());
    ref.f = f;
    stack.push(f);
    r.fetch();
    f.skipPending(undefined);
    expect(r.fetch().op).toBe('load');
    r.retire(5);
    r.fetch();
    expect(log).toEqual(['got undefined', 'retired-2']);
  });

  test('an entry frame that returns without iret is a model error', () => {
    const stack: Frame[] = [];
    function* bad(): Code {
      yield { op: 'pause' };
    }
    const r = new FrameRunner(() => stack, () => {
      throw new Error('empty');
    }, 't');
    function* prog(): Code<never> {
      for (;;) yield { op: 'pause' } as Insn;
    }
    stack.push(new Frame('program', 'p', prog()));
    stack.push(new Frame('entry', 'bad', bad(), tf(2)));
    r.fetch();
    r.retire(undefined);
    expect(() => r.fetch()).toThrow(/returned without iret/);
  });
});

describe('boot loader: page tables', () => {
  test('the direct map covers memory in the kernel half; user pages are mapped US per address space', () => {
    const mem = new GuestMemory(4 * 1024 * 1024);
    const U = 0x7f00_0000_0000;
    const layout = new GuestLayout(
      mem,
      new GuestLayoutPlan(mem.size, 2, [
        { mm: 'a', pages: [U, U + PAGE_SIZE] },
        { mm: 'b', pages: [U] },
      ]),
    );
    const mmu = new GuestMmu(mem, identitySlat(mem.pages));
    const xlate = (va: number, pml4: number, user: boolean): number | null => {
      mmu.flush();
      const c = mmu.translate(va as Gva, false, user, true, pml4);
      return c === XLATE_OK ? mmu.gpa : null;
    };
    fc.assert(
      fc.property(fc.integer({ min: 0, max: mem.size / 4 - 1 }), (w) => {
        const pa = w * 4;
        expect(xlate(PAGE_OFFSET + pa, layout.kernelPml4, false)).toBe(pa);
      }),
      { numRuns: 200 },
    );
    const a = layout.addressSpace('a')!;
    const b = layout.addressSpace('b')!;
    expect(xlate(U + 8, a.pml4, true)).toBe(layout.userPageGpa('a', U)! + 8);
    expect(xlate(U, b.pml4, true)).toBe(layout.userPageGpa('b', U));
    expect(layout.userPageGpa('a', U)).not.toBe(layout.userPageGpa('b', U));
    // The kernel half is shared but not user accessible; other users' pages are absent.
    expect(xlate(PAGE_OFFSET + 0x1000, a.pml4, false)).toBe(0x1000);
    mmu.flush();
    expect(mmu.translate((PAGE_OFFSET + 0x1000) as Gva, false, true, true, a.pml4)).toBe(XLATE_PF);
    expect(xlate(U + PAGE_SIZE, b.pml4, true)).toBeNull();
    // Per-CPU APF areas are 64-byte aligned and distinct.
    expect(layout.apfAreaGpa(0) % 64).toBe(0);
    expect(layout.apfAreaGpa(1) - layout.apfAreaGpa(0)).toBeGreaterThanOrEqual(68);
  });

  test('tasks sharing `mm` share their pages', () => {
    const m = buildMini({ tasks: [{ name: 't1', mm: 'proc', pages: [gva(0x1000)], program: [] }, { name: 't2', mm: 'proc', pages: [gva(0x1000)], program: [] }] });
    expect(m.kernel.userPageGpa('t1', 0x1000)).toBe(m.kernel.userPageGpa('t2', 0x1000));
  });

  test('the plan decides the frames before any memory is written; the page tables map exactly those', () => {
    const mem = new GuestMemory(4 * 1024 * 1024);
    const U = 0x7f00_0000_0000;
    const plan = new GuestLayoutPlan(mem.size, 1, [{ mm: 'a', pages: [U, U + PAGE_SIZE, U] }]);
    const f0 = plan.userPageGpa('a', U)!;
    expect(plan.userPageGpa('a', U + PAGE_SIZE)).toBe(f0 + PAGE_SIZE);
    expect(plan.userPageGpa('a', U + 12)).toBe(f0 + 12);
    const layout = new GuestLayout(mem, plan);
    const mmu = new GuestMmu(mem, identitySlat(mem.pages));
    expect(mmu.translate((U + PAGE_SIZE + 8) as Gva, false, true, true, layout.addressSpace('a')!.pml4)).toBe(XLATE_OK);
    expect(mmu.gpa).toBe(f0 + PAGE_SIZE + 8);
    expect(() => new GuestLayout(new GuestMemory(2 * mem.size), plan)).toThrow(/planned for 4194304 bytes/);
  });
});

describe('sleeper table', () => {
  test('256 buckets keyed by hash_32(token, 8); head insertion; find returns the first match', () => {
    let i = 0;
    const t = new SleeperTable(() => new SpinLock(`b${i++}`, gva(0), true));
    expect(t.buckets.length).toBe(256);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), (tok) => {
        expect(t.bucketOf(tok).index).toBe(sleeperBucket(tok));
      }),
    );
    const n1 = new SleepNode(0x1000, 0, null, false);
    const n2 = new SleepNode(0x1000, 1, null, false);
    t.add(n1);
    t.add(n2);
    expect(t.find(0x1000)).toBe(n2);
    t.unlink(n2);
    expect(n2.linked).toBe(false);
    expect(t.find(0x1000)).toBe(n1);
    expect(() => t.add(n1)).toThrow(/already linked/);
    expect(t.dummies()).toEqual([n1]);
  });
});

describe('scheduler', () => {
  const k = (name: string, ns: number): TaskSpec => ({ name, kind: 'kthread', cpu: 0, program: [{ op: 'compute', ns }] });
  const exitOrder = (m: ReturnType<typeof buildGuestMachine>): unknown[] => m.events('task_exit').map((r) => r.task);

  test('CONFIG_PREEMPT: the tick preempts a kernel thread that computes; without it the thread runs to completion', () => {
    const on = buildGuestMachine({ tasks: [k('long', 20_000_000), k('short', 1_000_000)] });
    on.runUntil(100_000_000, () => on.kernel.allTasksExited());
    expect(exitOrder(on)).toEqual(['short', 'long']);
    expect(on.kernel.counter('preempt_schedule_irq')).toBeGreaterThan(0);
    const off = buildGuestMachine({ toggles: { config_preempt: false }, tasks: [k('long', 20_000_000), k('short', 1_000_000)] });
    off.runUntil(100_000_000, () => off.kernel.allTasksExited());
    expect(exitOrder(off)).toEqual(['long', 'short']);
  });

  test('user tasks are preempted on the way back to user mode either way', () => {
    const u = (name: string, ns: number): TaskSpec => ({ name, cpu: 0, program: [{ op: 'compute', ns }] });
    const off = buildGuestMachine({ toggles: { config_preempt: false }, tasks: [u('long', 20_000_000), u('short', 1_000_000)] });
    off.runUntil(100_000_000, () => off.kernel.allTasksExited());
    expect(exitOrder(off)).toEqual(['short', 'long']);
  });

  test('an idle CPU pulls runnable work (newidle balance) and wake-ups cross CPUs with a reschedule IPI', () => {
    const m = buildGuestMachine({ cpus: 2, tasks: [k('x', 5_000_000), k('y', 5_000_000), k('z', 5_000_000)] });
    m.runUntil(100_000_000, () => m.kernel.allTasksExited());
    expect(m.kernel.allTasksExited()).toBe(true);
    expect(m.events('sched_migrate_task').length).toBeGreaterThan(0);
    expect(m.rec.records.some((r) => r.src === 'cpu' && r.event === 'interrupt' && r.vector === 0xfd)).toBe(true);
  });

  test('same seed, same trace', () => {
    const run = (): string => {
      const m = buildGuestMachine({
        cpus: 2,
        hostMemory: { swapLatency: { kind: 'exponential', mean: 1_000_000 } },
        tasks: [
          { name: 'a', pages: [gva(0x400000)], program: [{ op: 'loop', times: 5, body: [{ op: 'touch', page: gva(0x400000), write: true }, { op: 'sleep', ns: 500_000 }] }] },
          k('b', 3_000_000),
        ],
      });
      m.runUntil(2_000_000);
      m.evict('a', 0x400000);
      m.runUntil(100_000_000, () => m.kernel.allTasksExited());
      return m.sim.trace.hash;
    };
    expect(run()).toBe(run());
  });
});
