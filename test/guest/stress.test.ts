/**
 * Randomized workloads on the real host: several vCPUs, tasks touching private pages that the
 * host keeps evicting, kernel copies, sleeps, yields, the last CPU going offline and online again.
 * Whatever the interleaving: every task exits,
 * every read sees the task's last write, the kernel reports no bug and does not panic.
 */
import fc from 'fast-check';
import { gva, PAGE_SIZE, type Gva } from '../../shared-abi/addr';
import type { HostProfileName } from '../../host/config';
import type { GuestProfileName } from '../../guest/profiles';
import type { TaskSpec, UserOp } from '../../guest/program';
import { buildGuestMachine } from '../support/guest-machine';
import { cases } from '../support/scale';

const BASE = 0x400000;
const PAGES = 3;
const page = (i: number): Gva => gva(BASE + i * PAGE_SIZE);

type Step = { kind: 'write' | 'read' | 'kread' | 'kwrite'; page: number } | { kind: 'compute'; ns: number } | { kind: 'sleep'; ns: number } | { kind: 'yield' };

const stepArb: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constantFrom('write' as const, 'read' as const, 'kread' as const, 'kwrite' as const), page: fc.integer({ min: 0, max: PAGES - 1 }) }),
  fc.record({ kind: fc.constant('compute' as const), ns: fc.integer({ min: 1_000, max: 400_000 }) }),
  fc.record({ kind: fc.constant('sleep' as const), ns: fc.integer({ min: 10_000, max: 500_000 }) }),
  fc.record({ kind: fc.constant('yield' as const) }),
);

function program(steps: readonly Step[], base: number): UserOp[] {
  // Start by writing every page so that reads have a defined value.
  const ops: UserOp[] = [];
  for (let i = 0; i < PAGES; i++) ops.push({ op: 'touch', page: page(i), write: true, value: base + i });
  let n = 0;
  for (const s of steps) {
    n++;
    switch (s.kind) {
      case 'write':
        ops.push({ op: 'touch', page: page(s.page), write: true, value: base + 0x100 * n + s.page });
        break;
      case 'read':
        ops.push({ op: 'touch', page: page(s.page) });
        break;
      case 'kread':
        ops.push({ op: 'syscall', body: [{ op: 'copy_from_user', page: page(s.page) }] });
        break;
      case 'kwrite':
        ops.push({ op: 'syscall', body: [{ op: 'copy_to_user', page: page(s.page), value: base + 0x100 * n + s.page }] });
        break;
      case 'compute':
        ops.push({ op: 'compute', ns: s.ns });
        break;
      case 'sleep':
        ops.push({ op: 'sleep', ns: s.ns });
        break;
      case 'yield':
        ops.push({ op: 'yield' });
        break;
    }
  }
  return ops;
}

const configs: ReadonlyArray<{ guest: GuestProfileName; host: HostProfileName; preempt: boolean }> = [
  { guest: 'current', host: 'current', preempt: true },
  { guest: 'linux-6.6', host: 'linux-6.6', preempt: false },
  { guest: 'linux-5.9', host: 'linux-5.13', preempt: true },
  { guest: 'linux-5.2', host: 'linux-4.19', preempt: true },
  { guest: 'linux-5.2-user-only', host: 'linux-4.19', preempt: false },
];

test('random workloads: data intact, everything exits, no kernel bug', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: configs.length - 1 }),
      fc.integer({ min: 1, max: 3 }),
      fc.array(fc.array(stepArb, { minLength: 3, maxLength: 12 }), { minLength: 2, maxLength: 4 }),
      fc.array(fc.integer({ min: 200_000, max: 8_000_000 }), { minLength: 1, maxLength: 6 }),
      fc.integer({ min: 1, max: 1_000 }),
      (ci, cpus, progs, evictAt, seed) => {
        const c = configs[ci]!;
        const tasks: TaskSpec[] = progs.map((steps, i) => ({ name: `t${i}`, cpu: i % cpus, pages: [page(0), page(1), page(2)], program: program(steps, (i + 1) << 24) }));
        const m = buildGuestMachine({
          seed,
          cpus,
          profile: c.guest,
          hostProfile: c.host,
          toggles: c.preempt ? {} : { config_preempt: false },
          hostMemory: { swapLatency: { kind: 'exponential', mean: 300_000, max: 2_000_000 } },
          hungTaskTimeoutNs: 5_000_000_000,
          tasks,
          maxEvents: 2_000_000,
        });
        let k = 0;
        for (const t of [...evictAt].sort((a, b) => a - b)) {
          m.runUntil(t, () => m.kernel.allTasksExited());
          for (const task of tasks) for (let i = 0; i < PAGES; i++) m.evict(task.name, page(i));
          k++;
          if (cpus > 1) {
            const st = m.kernel.stats().cpus[cpus - 1]!.state;
            if (st === 'online' && k % 2 === 1) m.kernel.request(cpus - 1, 'offline');
            else if (st === 'offline') m.kernel.request(cpus - 1, 'online');
          }
        }
        m.runUntil(2_000_000_000, () => m.kernel.allTasksExited());
        expect(m.kernel.panicked()).toBeNull();
        expect(m.kernel.stats().bugs).toEqual([]);
        expect(m.deadlock).toBeNull();
        expect(m.kernel.allTasksExited()).toBe(true);
        // Per task and page: every read returns the last value written before it.
        const last = new Map<string, number>();
        for (const r of m.events('task_access')) {
          const key = `${String(r.task)}:${String(r.gva)}`;
          if (r.write === true) last.set(key, r.value as number);
          else expect(r.value).toBe(last.get(key));
        }
        for (const t of m.kernel.tasks) expect(t.exitCode).toBe(0);
      },
    ),
    { numRuns: cases(15, 40), seed: 4242 },
  );
});
