/**
 * IDT and entry paths on the MiniHost: exception-table fixups, oopses, signals, unhandled
 * vectors, missing gates, and the workload operations that go through the syscall entry.
 */
import { gva } from '../../shared-abi/addr';
import type { TaskSpec } from '../../guest/program';
import { buildMini } from './support/mini-kernel';

const P = gva(0x400000);
const UNMAPPED = gva(0x500000);

test('copy_from_user of an unmapped address returns -EFAULT through the exception table', () => {
  const m = buildMini({ tasks: [{ name: 'a', pages: [P], program: [{ op: 'syscall', body: [{ op: 'copy_from_user', page: UNMAPPED }, { op: 'copy_to_user', page: P, value: 5 }] }] }] });
  m.runUntil(50_000_000, () => m.kernel.allTasksExited());
  expect(m.kernel.allTasksExited()).toBe(true);
  expect(m.host.rec.find({ event: 'uaccess_fixup' })).toMatchObject({ task: 'a', gva: UNMAPPED });
  expect(m.host.rec.find({ event: 'task_access', write: true })).toMatchObject({ value: 5, kernel: true });
  expect(m.kernel.task('a')?.exitCode).toBe(0);
});

test('a kernel access without a fixup that faults is an oops: panic', () => {
  const m = buildMini({ tasks: [{ name: 'a', program: [{ op: 'syscall', body: [{ op: 'kernel_touch', page: UNMAPPED }] }] }] });
  m.runUntil(50_000_000, () => m.kernel.panicked() !== null);
  expect(m.host.rec.find({ event: 'unexpected_exception' })).toMatchObject({ vector: 14, cpl: 0 });
  expect(m.kernel.panicked()?.message).toBe('BUG: unable to handle page fault for address: 0x500000 (error code 0x0)');
  // Every CPU stops with IF=0.
  expect(m.host.cpus[0]!.ifFlag).toBe(false);
});

test('a user touch of an unmapped page is SIGSEGV', () => {
  const m = buildMini({ tasks: [{ name: 'a', program: [{ op: 'touch', page: UNMAPPED }] }] });
  m.runUntil(50_000_000, () => m.kernel.allTasksExited());
  expect(m.host.rec.find({ event: 'signal' })).toMatchObject({ task: 'a', sig: 'SIGSEGV', gva: UNMAPPED });
  expect(m.kernel.task('a')?.exitCode).toBe(139);
});

const spinner: TaskSpec = { name: 'a', pages: [P], program: [{ op: 'touch', page: P }, { op: 'loop', times: 100, body: [{ op: 'compute', ns: 100_000 }] }] };

test('#UD in user mode is SIGILL; #MC is fatal', () => {
  const m = buildMini({ tasks: [spinner] });
  m.runToEvent('task_access');
  m.host.exception(0, { kind: 'exception', vector: 6 });
  m.runToEvent('task_exit');
  expect(m.kernel.task('a')?.exitCode).toBe(132);
  m.host.exception(0, { kind: 'exception', vector: 18 });
  m.runToEvent('panic');
  expect(m.kernel.panicked()?.message).toBe('Fatal machine check');
});

test('an interrupt vector without a handler: WARN once, EOI', () => {
  const m = buildMini({ tasks: [spinner] });
  m.runToEvent('task_access');
  m.host.irq(0, 0x50);
  m.runToEvent('warn');
  m.host.irq(0, 0x50);
  m.runUntil(m.host.sim.now + 1_000_000);
  expect(m.kernel.warnings.filter((w) => w.includes('No irq handler'))).toEqual(['do_IRQ: 0.80 No irq handler for vector']);
  expect(m.kernel.counter('vector_80')).toBe(2);
});

test('an event before the IDT is loaded escalates: #GP, #DF, triple fault', () => {
  const m = buildMini({ start: false });
  m.host.nmi(0);
  m.host.start();
  m.runUntil(10_000);
  const cpu = m.host.rec.records.filter((r) => r.src === 'cpu').map((r) => r.event);
  expect(cpu.slice(0, 7)).toEqual(['nmi', 'idt_gate_missing', 'exception', 'idt_gate_missing', 'exception', 'idt_gate_missing', 'triple_fault']);
});

test('user sleep, yield and an explicit exit code go through the syscall entry', () => {
  const m = buildMini({
    tasks: [
      { name: 'a', cpu: 0, program: [{ op: 'sleep', ns: 1_000_000 }, { op: 'yield' }, { op: 'exit', code: 3 }, { op: 'compute', ns: 1 }] },
      { name: 'b', cpu: 0, program: [{ op: 'yield' }, { op: 'compute', ns: 100 }] },
    ],
  });
  m.runUntil(50_000_000, () => m.kernel.allTasksExited());
  expect(m.kernel.task('a')?.exitCode).toBe(3);
  expect(m.kernel.counter('sched_yield')).toBe(2);
  const syscalls = m.host.rec.records.filter((r) => r.src === 'cpu' && r.event === 'syscall').map((r) => r.nr);
  expect(syscalls).toEqual(expect.arrayContaining([35, 24, 60]));
});

test('kernel threads: preempt_disable nesting and a leaked lock are reported at syscall exit', () => {
  const m = buildMini({ tasks: [{ name: 'u', program: [{ op: 'syscall', body: [{ op: 'spin_lock', lock: 'X' }] }, { op: 'compute', ns: 10 }] }] });
  m.runUntil(50_000_000, () => m.kernel.allTasksExited());
  expect(m.kernel.stats().bugs.map((b) => b.kind)).toContain('preempt_count_leak');
  expect(m.kernel.warnings.some((w) => w.includes('exiting with locks held: X'))).toBe(true);
});
