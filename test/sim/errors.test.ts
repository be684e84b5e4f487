import { BudgetExceededError, DeadlockError, GuestMemoryError, SimError } from '../../sim';

describe('sim errors', () => {
  test('all are SimErrors with a kind and a name', () => {
    const errs: SimError[] = [
      new SimError('queue', 'q'),
      new BudgetExceededError('events', 10, 5, 10, 'x', 6),
      new DeadlockError(0, [{ name: 'w', description: 'd' }]),
      new GuestMemoryError(0x1000, 4, 0x1000, 'readU32'),
    ];
    expect(errs.map((e) => [e instanceof Error, e instanceof SimError, e.kind, e.name])).toEqual([
      [true, true, 'queue', 'SimError'],
      [true, true, 'budget', 'BudgetExceededError'],
      [true, true, 'deadlock', 'DeadlockError'],
      [true, true, 'guest-memory', 'GuestMemoryError'],
    ]);
    expect(String(errs[3])).toBe(
      'GuestMemoryError: guest memory access out of range: readU32 of 4 bytes at gpa 0x1000 (guest memory is 0x1000 bytes, gpa 0x0..0xfff)',
    );
  });

  test('a one-waiter deadlock reads naturally', () => {
    expect(new DeadlockError(1_000_000_000, [{ name: 'vcpu0', description: 'halted' }]).message).toBe(
      'deadlock at t=1.000000000s: the event queue is empty but 1 waiter still wait:\n  - vcpu0: halted',
    );
  });
});
