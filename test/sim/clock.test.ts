import { formatDuration, formatTime, ms, ns, s, SimError, us, VirtualClock } from '../../sim';

describe('VirtualClock', () => {
  test('starts at 0 and moves forward only', () => {
    const c = new VirtualClock();
    expect(c.now).toBe(0);
    c.advanceTo(5);
    c.advanceTo(5); // same time is fine
    c.advanceTo(1_000_000_007);
    expect(c.now).toBe(1_000_000_007);
  });

  test('going backwards throws a SimError naming both times', () => {
    const c = new VirtualClock();
    c.advanceTo(ms(2));
    expect(() => c.advanceTo(ms(1))).toThrow(SimError);
    expect(() => c.advanceTo(ms(1))).toThrow(/backwards.*0\.001000000.*0\.002000000/);
    expect(c.now).toBe(ms(2));
  });

  test('non-integer and non-finite times are rejected', () => {
    const c = new VirtualClock();
    expect(() => c.advanceTo(1.5)).toThrow(/safe integer/);
    expect(() => c.advanceTo(Infinity)).toThrow(SimError);
    expect(() => c.advanceTo(NaN)).toThrow(SimError);
    expect(() => c.advanceTo(2 ** 53)).toThrow(SimError);
  });
});

describe('unit helpers', () => {
  test('convert to integer ns', () => {
    expect(ns(12)).toBe(12);
    expect(us(1)).toBe(1_000);
    expect(us(1.5)).toBe(1_500);
    expect(ms(0.1)).toBe(100_000);
    expect(s(0.1)).toBe(100_000_000);
    expect(s(3)).toBe(3_000_000_000);
    expect(Number.isInteger(s(0.3))).toBe(true);
  });

  test('formatTime is fixed-width seconds with 9 decimals', () => {
    expect(formatTime(0)).toBe('    0.000000000');
    expect(formatTime(1_234_567_890)).toBe('    1.234567890');
    expect(formatTime(ms(12.5))).toBe('    0.012500000');
    expect(formatTime(s(86400) + 1)).toBe('86400.000000001');
    expect(formatTime(7, 0)).toBe('0.000000007');
    expect(formatTime(-5, 0)).toBe('-0.000000005');
    expect(formatTime(0).length).toBe(formatTime(s(99999)).length);
  });

  test('formatDuration picks a unit', () => {
    expect(formatDuration(850)).toBe('850ns');
    expect(formatDuration(us(12.5))).toBe('12.5us');
    expect(formatDuration(ms(3) + us(1.7))).toBe('3.0017ms');
    expect(formatDuration(s(2))).toBe('2s');
  });
});
