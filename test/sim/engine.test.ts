import {
  BudgetExceededError,
  DEFAULT_MAX_EVENTS,
  DEFAULT_MAX_TIME,
  DeadlockError,
  ms,
  Priority,
  SimError,
  Simulation,
  TraceRecorder,
  us,
  type Waiter,
} from '../../sim';
import { caught } from '../support/caught';
import { forwardEmit } from '../../sim/trace';

describe('Simulation scheduling', () => {
  test('runs events in time order and advances the clock', () => {
    const sim = new Simulation({ seed: 1 });
    const log: string[] = [];
    sim.schedule(us(3), Priority.Guest, () => log.push(`c@${sim.now}`), 'c');
    sim.schedule(us(1), Priority.Guest, () => {
      log.push(`a@${sim.now}`);
      sim.schedule(us(1), Priority.Host, () => log.push(`b@${sim.now}`), 'b');
    }, 'a');
    const end = sim.run();
    expect(log).toEqual(['a@1000', 'b@2000', 'c@3000']);
    expect(end).toEqual({ reason: 'idle', t: 3000, events: 3 });
    expect(sim.eventsRun).toBe(3);
    expect(sim.now).toBe(3000);
  });

  test('zero delay runs at the same time, after what is already queued there', () => {
    const sim = new Simulation({ seed: 1 });
    const log: string[] = [];
    sim.schedule(0, Priority.Guest, () => {
      log.push('first');
      sim.schedule(0, Priority.Guest, () => log.push('third'), 'third');
    }, 'first');
    sim.schedule(0, Priority.Guest, () => log.push('second'), 'second');
    sim.run();
    expect(log).toEqual(['first', 'second', 'third']);
    expect(sim.now).toBe(0);
  });

  test('scheduleAt is absolute and refuses the past; schedule refuses bad delays', () => {
    const sim = new Simulation({ seed: 1 });
    sim.scheduleAt(ms(1), 0, () => {}, 'x');
    sim.run();
    expect(() => sim.scheduleAt(ms(1) - 1, 0, () => {}, 'late')).toThrow(/'late'.*past/);
    sim.scheduleAt(ms(1), 0, () => {}, 'now is fine');
    expect(() => sim.schedule(-1, 0, () => {}, 'neg')).toThrow(SimError);
    expect(() => sim.schedule(0.5, 0, () => {}, 'frac')).toThrow(/'frac'/);
  });

  test('a cancelled event does not run', () => {
    const sim = new Simulation({ seed: 1 });
    const fn = jest.fn();
    const h = sim.schedule(10, 0, fn, 'x');
    sim.schedule(5, 0, () => h.cancel(), 'canceller');
    expect(sim.run()).toEqual({ reason: 'idle', t: 5, events: 1 });
    expect(fn).not.toHaveBeenCalled();
    expect(h.cancelled).toBe(true);
  });

  test('trace records carry the simulation time', () => {
    const sim = new Simulation({ seed: 1 });
    const rec = new TraceRecorder(sim.trace);
    sim.schedule(us(7), 0, () => forwardEmit(sim.trace, 'host', 0, 'tick', { n: 1 }), 'tick');
    sim.run();
    expect(rec.records).toEqual([{ t: 7000, cpu: 0, src: 'host', event: 'tick', n: 1 }]);
  });

  test('seed, prng and current event are exposed', () => {
    const sim = new Simulation({ seed: '0x10' });
    expect(sim.seed).toBe('16');
    expect(sim.prng.seedString).toBe('16');
    let inside: string | undefined;
    sim.schedule(1, 0, () => (inside = sim.current?.label), 'me');
    sim.run();
    expect(inside).toBe('me');
    expect(sim.current?.label).toBe('me');
  });
});

describe('Simulation run endings', () => {
  test('until: runs events due at or before it, then sets the clock to it', () => {
    const sim = new Simulation({ seed: 1 });
    const ran: number[] = [];
    for (const t of [10, 20, 30, 40]) sim.scheduleAt(t, 0, () => ran.push(t), `e${t}`);
    expect(sim.run({ until: 30 })).toEqual({ reason: 'until', t: 30, events: 3 });
    expect(ran).toEqual([10, 20, 30]);
    expect(sim.run({ until: 35 })).toEqual({ reason: 'until', t: 35, events: 0 });
    expect(sim.now).toBe(35);
    expect(sim.runFor(100)).toEqual({ reason: 'idle', t: 40, events: 1 });
    expect(() => sim.run({ until: 10 })).toThrow(/until/);
  });

  test('stop(reason) ends the run after the current event', () => {
    const sim = new Simulation({ seed: 1 });
    const ran: string[] = [];
    sim.schedule(1, 0, () => {
      ran.push('a');
      sim.stop('found it');
    }, 'a');
    sim.schedule(1, 0, () => ran.push('b'), 'b');
    expect(sim.run()).toEqual({ reason: 'stopped', t: 1, events: 1, detail: 'found it' });
    expect(ran).toEqual(['a']);
    expect(sim.run()).toEqual({ reason: 'idle', t: 1, events: 1 });
  });

  test('stop() outside a run ends the next run before its first event', () => {
    const sim = new Simulation({ seed: 1 });
    sim.schedule(1, 0, () => {}, 'a');
    sim.stop('not yet');
    expect(sim.run()).toMatchObject({ reason: 'stopped', events: 0, detail: 'not yet' });
    expect(sim.run()).toMatchObject({ reason: 'idle', events: 1 });
  });

  test('stopWhen is checked before the first event and after each one', () => {
    const sim = new Simulation({ seed: 1 });
    let n = 0;
    for (let i = 1; i <= 10; i++) sim.schedule(i, 0, () => n++, `e${i}`);
    expect(sim.run({ stopWhen: () => true })).toEqual({ reason: 'stopWhen', t: 0, events: 0 });
    expect(sim.run({ stopWhen: () => n === 4 })).toEqual({ reason: 'stopWhen', t: 4, events: 4 });
  });

  test('step() runs one event at a time', () => {
    const sim = new Simulation({ seed: 1 });
    sim.schedule(5, 0, () => {}, 'a');
    sim.schedule(6, 0, () => {}, 'b');
    expect(sim.step()).toBe(true);
    expect(sim.now).toBe(5);
    expect(sim.step()).toBe(true);
    expect(sim.step()).toBe(false);
    expect(sim.eventsRun).toBe(2);
  });

  test('run() or step() from inside an event is refused', () => {
    const sim = new Simulation({ seed: 1 });
    const errors: unknown[] = [];
    sim.schedule(1, 0, () => {
      errors.push(caught(() => sim.run()));
      errors.push(caught(() => sim.step()));
    }, 'outer');
    sim.run();
    expect(errors).toHaveLength(2);
    for (const e of errors) expect(String(e)).toMatch(/already running.*'outer'/);
  });

  test('an exception in an event propagates; the simulation stays usable', () => {
    const sim = new Simulation({ seed: 1 });
    sim.schedule(1, 0, () => {
      throw new Error('boom');
    }, 'bad');
    sim.schedule(2, 0, () => {}, 'good');
    expect(() => sim.run()).toThrow('boom');
    expect(sim.current?.label).toBe('bad');
    expect(sim.run()).toMatchObject({ reason: 'idle', events: 1 });
  });
});

describe('Simulation budgets', () => {
  test('defaults', () => {
    const sim = new Simulation({ seed: 1 });
    expect(sim.maxEvents).toBe(DEFAULT_MAX_EVENTS);
    expect(sim.maxTime).toBe(DEFAULT_MAX_TIME);
    expect(() => new Simulation({ seed: 1, maxEvents: -1 })).toThrow(/maxEvents/);
    expect(() => new Simulation({ seed: 1, maxTime: 1.5 })).toThrow(/maxTime/);
    expect(new Simulation({ seed: 1, maxEvents: Infinity }).maxEvents).toBe(Infinity);
  });

  test('the event budget ends a livelock with a clear message', () => {
    const sim = new Simulation({ seed: 1, maxEvents: 1000 });
    const spin = (): void => void sim.schedule(10, 0, spin, 'spin');
    sim.schedule(0, 0, spin, 'spin');
    const e = caught(() => sim.run());
    expect(e).toBeInstanceOf(BudgetExceededError);
    const b = e as BudgetExceededError;
    expect(b.kind).toBe('budget');
    expect(b.budget).toBe('events');
    expect(b.limit).toBe(1000);
    expect(b.events).toBe(1000);
    expect(b.t).toBe(9990);
    expect(b.nextLabel).toBe('spin');
    expect(b.message).toBe(
      "event budget of 1000 events exhausted at t=0.000009990s (next event 'spin' at t=0.000010000s); " +
        'the run did not finish (raise --max-events or look for a livelock)',
    );
    expect(sim.eventsRun).toBe(1000);
  });

  test('the virtual-time budget stops before running past it', () => {
    const sim = new Simulation({ seed: 1, maxTime: ms(1) });
    let ran = 0;
    const tick = (): void => {
      ran++;
      sim.schedule(us(300), 0, tick, 'timer');
    };
    sim.schedule(0, 0, tick, 'timer');
    const e = caught(() => sim.run()) as BudgetExceededError;
    expect(e).toBeInstanceOf(BudgetExceededError);
    expect(e.budget).toBe('time');
    expect(e.limit).toBe(ms(1));
    expect(e.nextTime).toBe(us(1200));
    expect(sim.now).toBe(us(900));
    expect(ran).toBe(4);
    expect(e.message).toMatch(/^virtual-time budget of 0\.001000000s exhausted at t=0\.000900000s after 4 events/);
    expect(e.message).toMatch(/raise --max-time/);
  });

  test('an event exactly at maxTime still runs; until below the budget wins', () => {
    const sim = new Simulation({ seed: 1, maxTime: 100 });
    sim.scheduleAt(100, 0, () => {}, 'edge');
    sim.scheduleAt(200, 0, () => {}, 'beyond');
    expect(sim.run({ until: 150 })).toMatchObject({ reason: 'until', events: 1 });
    expect(() => sim.run()).toThrow(BudgetExceededError);
  });

  test('step() enforces the budgets too', () => {
    const sim = new Simulation({ seed: 1, maxEvents: 1 });
    sim.schedule(1, 0, () => {}, 'a');
    sim.schedule(2, 0, () => {}, 'b');
    expect(sim.step()).toBe(true);
    expect(() => sim.step()).toThrow(/event budget of 1 events/);
  });
});

describe('Simulation deadlock detection', () => {
  function sleeper(name: string, why: string): Waiter & { asleep: boolean } {
    return {
      name,
      asleep: true,
      waiting() {
        return this.asleep;
      },
      describe: () => why,
    };
  }

  test('an empty queue with waiters still waiting is a deadlock naming them', () => {
    const sim = new Simulation({ seed: 1 });
    const a = sleeper('task 17', 'sleeping on token 0x1 since t=5');
    const b = sleeper('vcpu1', 'halted with IF=0');
    const c = sleeper('task 18', 'unused');
    c.asleep = false;
    sim.registerWaiter(a);
    sim.registerWaiter(b);
    sim.registerWaiter(c);
    sim.schedule(5, 0, () => {}, 'last');
    const e = caught(() => sim.run()) as DeadlockError;
    expect(e).toBeInstanceOf(DeadlockError);
    expect(e.kind).toBe('deadlock');
    expect(e.t).toBe(5);
    expect(e.waiters).toEqual([
      { name: 'task 17', description: 'sleeping on token 0x1 since t=5' },
      { name: 'vcpu1', description: 'halted with IF=0' },
    ]);
    expect(e.message).toContain('deadlock at t=0.000000005s');
    expect(e.message).toContain('2 waiters');
    expect(e.message).toContain('  - task 17: sleeping on token 0x1 since t=5');
    expect(e.message).toContain('  - vcpu1: halted with IF=0');
    expect(e.message).not.toContain('task 18');
    expect(() => sim.step()).toThrow(DeadlockError);
  });

  test('nobody waiting means idle; unregistered waiters are ignored', () => {
    const sim = new Simulation({ seed: 1 });
    const a = sleeper('task', 'x');
    sim.registerWaiter(a);
    a.asleep = false;
    expect(sim.run().reason).toBe('idle');
    a.asleep = true;
    expect(sim.waitingNow()).toEqual([{ name: 'task', description: 'x' }]);
    sim.unregisterWaiter(a);
    expect(sim.run().reason).toBe('idle');
  });

  test('a waiter woken by a pending event is not a deadlock', () => {
    const sim = new Simulation({ seed: 1 });
    const a = sleeper('task', 'waiting for the timer');
    sim.registerWaiter(a);
    sim.schedule(ms(1), 0, () => (a.asleep = false), 'wake');
    expect(sim.run()).toMatchObject({ reason: 'idle', t: ms(1) });
  });
});

describe('Simulation.continueInline (a self-rescheduling step run without the queue round trip)', () => {
  /** A component that takes `n` steps of `delay` ns each, continuing inline when allowed. */
  function stepper(sim: Simulation, name: string, delay: number, n: number, priority: number, log: string[]): void {
    let left = n;
    const body = (): void => {
      for (;;) {
        log.push(`${sim.now} ${name}`);
        if (--left === 0) return;
        if (!sim.continueInline(delay, priority)) {
          sim.schedule(delay, priority, body, name);
          return;
        }
      }
    };
    sim.schedule(0, priority, body, name);
  }

  function runBoth(setup: (sim: Simulation, log: string[]) => void): { on: string[]; off: string[]; evOn: number; evOff: number } {
    const out = [true, false].map((inline) => {
      const sim = new Simulation({ seed: 1, inlineContinuation: inline });
      const log: string[] = [];
      setup(sim, log);
      sim.run();
      return { log, events: sim.eventsRun };
    });
    return { on: out[0]!.log, off: out[1]!.log, evOn: out[0]!.events, evOff: out[1]!.events };
  }

  test('alone on the queue: advances the clock and counts one event per step', () => {
    const sim = new Simulation({ seed: 1 });
    const log: string[] = [];
    stepper(sim, 'a', 5, 4, Priority.Guest, log);
    expect(sim.run()).toMatchObject({ reason: 'idle', t: 15, events: 4 });
    expect(log).toEqual(['0 a', '5 a', '10 a', '15 a']);
    expect(sim.queue.heapSize).toBe(0);
  });

  test('interleaves with other events exactly as the queue would (ties: lower priority number first, then FIFO)', () => {
    const setup = (sim: Simulation, log: string[]): void => {
      stepper(sim, 'g', 3, 10, Priority.Guest, log);
      stepper(sim, 'h', 4, 6, Priority.Host, log);
      stepper(sim, 'g2', 3, 5, Priority.Guest, log);
      sim.schedule(6, Priority.Harness, () => log.push(`${sim.now} harness`), 'x');
      sim.schedule(9, Priority.Guest, () => log.push(`${sim.now} late-guest`), 'y');
    };
    const r = runBoth(setup);
    expect(r.on).toEqual(r.off);
    expect(r.evOn).toBe(r.evOff);
    expect(r.on).toContain('6 harness');
  });

  test('refuses (and changes nothing) when another event is due first, past until, at a stop request or stopWhen, and outside run()', () => {
    const sim = new Simulation({ seed: 1 });
    expect(sim.continueInline(1, Priority.Guest)).toBe(false);
    const seen: boolean[] = [];
    sim.schedule(
      0,
      Priority.Guest,
      () => {
        sim.schedule(5, Priority.Host, () => undefined, 'host-at-5');
        seen.push(sim.continueInline(5, Priority.Guest)); // host event at 5 comes first
        seen.push(sim.continueInline(4, Priority.Guest)); // allowed: t=4
        seen.push(sim.continueInline(20, Priority.Guest)); // beyond until
        sim.stop('now');
        seen.push(sim.continueInline(0, Priority.Guest));
      },
      'first',
    );
    const end = sim.run({ until: 10 });
    expect(seen).toEqual([false, true, false, false]);
    expect(end).toMatchObject({ reason: 'stopped', t: 4, events: 2 });
    // stopWhen is consulted as the run loop would after this event: true means no inline step.
    let stopNow = false;
    const inlined: boolean[] = [];
    const sim2 = new Simulation({ seed: 1 });
    sim2.schedule(
      0,
      0,
      () => {
        inlined.push(sim2.continueInline(1, 0));
        stopNow = true;
        inlined.push(sim2.continueInline(1, 0));
      },
      'e',
    );
    expect(sim2.run({ stopWhen: () => stopNow })).toMatchObject({ reason: 'stopWhen', t: 1, events: 2 });
    expect(inlined).toEqual([true, false]);
    let got: boolean | undefined;
    const sim4 = new Simulation({ seed: 1 });
    sim4.schedule(0, 0, () => (got = sim4.continueInline(1, 0)), 'e');
    sim4.step();
    expect(got).toBe(false);
  });

  test('respects the event budget: the step that would exceed it goes through the queue and fails there', () => {
    const sim = new Simulation({ seed: 1, maxEvents: 3 });
    stepper(sim, 'a', 1, 10, 0, []);
    expect(caught(() => sim.run())).toBeInstanceOf(BudgetExceededError);
    expect(sim.eventsRun).toBe(3);
  });
});
