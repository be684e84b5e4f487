import fc from 'fast-check';
import { EventQueue, MAX_PRIORITY, Priority, SimError, type QueuedEvent } from '../../sim';

const noop = (): void => {};

function drain(q: EventQueue): QueuedEvent[] {
  const out: QueuedEvent[] = [];
  for (let e = q.pop(); e; e = q.pop()) out.push(e);
  return out;
}

describe('EventQueue ordering', () => {
  test('earlier time first', () => {
    const q = new EventQueue();
    q.schedule(30, Priority.Guest, noop, 'c');
    q.schedule(10, Priority.Guest, noop, 'a');
    q.schedule(20, Priority.Guest, noop, 'b');
    expect(drain(q).map((e) => e.label)).toEqual(['a', 'b', 'c']);
  });

  test('at equal time, lower priority value first', () => {
    const q = new EventQueue();
    q.schedule(5, Priority.Harness, noop, 'harness');
    q.schedule(5, Priority.Guest, noop, 'guest');
    q.schedule(5, Priority.Hardware, noop, 'hw');
    q.schedule(5, Priority.Worker, noop, 'worker');
    q.schedule(5, Priority.Host, noop, 'host');
    expect(drain(q).map((e) => e.label)).toEqual(['hw', 'host', 'worker', 'guest', 'harness']);
  });

  test('at equal time and priority, insertion order (FIFO)', () => {
    const q = new EventQueue();
    const labels = Array.from({ length: 200 }, (_, i) => `e${i}`);
    for (const l of labels) q.schedule(7, Priority.Host, noop, l);
    expect(drain(q).map((e) => e.label)).toEqual(labels);
  });

  test('popped events carry what was scheduled', () => {
    const q = new EventQueue();
    const fn = jest.fn();
    q.schedule(42, 3, fn, 'lbl', 'owner-x');
    const e = q.pop()!;
    expect(e).toMatchObject({ time: 42, priority: 3, label: 'lbl', owner: 'owner-x', seq: 0 });
    e.fn();
    expect(fn).toHaveBeenCalledTimes(1);
    expect(e.pending).toBe(false);
    expect(e.cancelled).toBe(false);
    expect(q.pop()).toBeUndefined();
    expect(q.peekTime()).toBeUndefined();
  });

  test('grows past its initial capacity and keeps order', () => {
    const q = new EventQueue();
    const times: number[] = [];
    for (let i = 0; i < 5000; i++) {
      const t = (i * 7919) % 1009;
      times.push(t);
      q.schedule(t, 0, noop, String(i));
    }
    expect(q.size).toBe(5000);
    const got = drain(q).map((e) => e.time);
    expect(got).toEqual([...times].sort((a, b) => a - b));
  });
});

describe('EventQueue cancellation', () => {
  test('cancelled events are skipped and not counted', () => {
    const q = new EventQueue();
    const a = q.schedule(1, 0, noop, 'a');
    q.schedule(2, 0, noop, 'b');
    const c = q.schedule(3, 0, noop, 'c');
    expect(q.size).toBe(3);
    a.cancel();
    expect(a.cancelled).toBe(true);
    expect(q.size).toBe(2);
    a.cancel(); // idempotent
    expect(q.size).toBe(2);
    expect(q.peekTime()).toBe(2);
    expect(q.peek()?.label).toBe('b');
    c.cancel();
    expect(drain(q).map((e) => e.label)).toEqual(['b']);
    expect(q.size).toBe(0);
    expect(q.heapSize).toBe(0);
  });

  test('cancelling after the event was popped is a no-op', () => {
    const q = new EventQueue();
    const h = q.schedule(1, 0, noop, 'a');
    q.schedule(2, 0, noop, 'b');
    expect(q.pop()?.label).toBe('a');
    h.cancel();
    expect(h.cancelled).toBe(false);
    expect(q.size).toBe(1);
  });

  test('mass cancellation compacts the heap without changing order', () => {
    const q = new EventQueue();
    const hs = Array.from({ length: 1000 }, (_, i) => q.schedule(1000 - i, i % 3, noop, `e${i}`));
    hs.forEach((h, i) => {
      if (i % 10 !== 0) h.cancel();
    });
    expect(q.size).toBe(100);
    expect(q.heapSize).toBeLessThan(1000);
    const got = drain(q).map((e) => e.label);
    const want = Array.from({ length: 100 }, (_, k) => `e${990 - 10 * k}`);
    expect(got).toEqual(want);
    expect(q.heapSize).toBe(0);
  });

  test('list() shows live events in run order', () => {
    const q = new EventQueue();
    q.schedule(5, 1, noop, 'x');
    const y = q.schedule(5, 0, noop, 'y');
    q.schedule(1, 9, noop, 'z');
    q.schedule(5, 0, noop, 'w');
    y.cancel();
    expect(q.list().map((e) => e.label)).toEqual(['z', 'w', 'x']);
    expect(q.size).toBe(3);
  });
});

describe('EventQueue validation', () => {
  test('rejects bad times and priorities with the label in the message', () => {
    const q = new EventQueue();
    expect(() => q.schedule(-1, 0, noop, 'neg')).toThrow(/'neg'.*non-negative/);
    expect(() => q.schedule(1.5, 0, noop, 'frac')).toThrow(SimError);
    expect(() => q.schedule(NaN, 0, noop, 'nan')).toThrow(SimError);
    expect(() => q.schedule(2 ** 53, 0, noop, 'big')).toThrow(SimError);
    expect(() => q.schedule(0, -1, noop, 'p')).toThrow(/priority/);
    expect(() => q.schedule(0, MAX_PRIORITY + 1, noop, 'p')).toThrow(/priority/);
    expect(() => q.schedule(0, 0.5, noop, 'p')).toThrow(/priority/);
    q.schedule(2 ** 53 - 1, MAX_PRIORITY, noop, 'max');
    expect(q.pop()?.time).toBe(2 ** 53 - 1);
  });
});

// Model-based test: the queue against a plain array sorted on every pop.
interface ModelItem {
  time: number;
  priority: number;
  seq: number;
  state: 'pending' | 'popped' | 'cancelled';
}
interface Model {
  items: ModelItem[];
}
interface Real {
  q: EventQueue;
  handles: Array<ReturnType<EventQueue['schedule']>>;
}

class PushCmd implements fc.Command<Model, Real> {
  constructor(
    readonly t: number,
    readonly p: number,
  ) {}
  check = (): boolean => true;
  run(m: Model, r: Real): void {
    m.items.push({ time: this.t, priority: this.p, seq: m.items.length, state: 'pending' });
    r.handles.push(r.q.schedule(this.t, this.p, noop, `e${m.items.length - 1}`));
    expect(r.q.size).toBe(m.items.filter((i) => i.state === 'pending').length);
  }
  toString = (): string => `push(${this.t},${this.p})`;
}

class PopCmd implements fc.Command<Model, Real> {
  check = (): boolean => true;
  run(m: Model, r: Real): void {
    const live = m.items.filter((i) => i.state === 'pending');
    live.sort((a, b) => a.time - b.time || a.priority - b.priority || a.seq - b.seq);
    const want = live[0];
    expect(r.q.peekTime()).toBe(want?.time);
    const got = r.q.pop();
    if (want) want.state = 'popped';
    expect(got?.label).toBe(want ? `e${want.seq}` : undefined);
    expect(r.q.size).toBe(live.length - (want ? 1 : 0));
  }
  toString = (): string => 'pop';
}

class CancelCmd implements fc.Command<Model, Real> {
  constructor(readonly k: number) {}
  check = (m: Readonly<Model>): boolean => m.items.length > 0;
  run(m: Model, r: Real): void {
    const i = this.k % m.items.length;
    const item = m.items[i]!;
    if (item.state === 'pending') item.state = 'cancelled';
    r.handles[i]!.cancel();
    expect(r.handles[i]!.cancelled).toBe(item.state === 'cancelled');
    expect(r.q.size).toBe(m.items.filter((x) => x.state === 'pending').length);
  }
  toString = (): string => `cancel(${this.k})`;
}

test('EventQueue behaves like a sorted list (model-based, fast-check)', () => {
  const cmds = [
    fc.tuple(fc.integer({ min: 0, max: 20 }), fc.integer({ min: 0, max: 3 })).map(([t, p]) => new PushCmd(t, p)),
    fc.constant(new PopCmd()),
    fc.nat({ max: 1000 }).map((k) => new CancelCmd(k)),
  ];
  fc.assert(
    fc.property(fc.commands(cmds, { maxCommands: 300 }), (c) => {
      fc.modelRun(() => ({ model: { items: [] }, real: { q: new EventQueue(), handles: [] } }), c);
    }),
    { numRuns: 300 },
  );
});
