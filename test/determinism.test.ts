/**
 * Same seed, same world: a small workload built only from sim/ (actors that touch guest memory,
 * a worker that completes page requests, an injector that cancels some of them) must produce the
 * same trace, record for record, every time it runs with the same seed.
 */
import { PAGE_SIZE } from '../shared-abi/addr';
import { forwardEmit, GuestMemory, ms, Priority, Simulation, TraceRecorder, type EventHandle, type TraceRecord } from '../sim';

interface Outcome {
  hash: string;
  records: TraceRecord[];
  counts: Record<string, number>;
  pageSums: number[];
  events: number;
  end: string;
}

const ACTORS = 4;
const PAGES = 32;

function runWorkload(seed: number | string, opts: { record?: boolean; extraDraws?: number } = {}): Outcome {
  const sim = new Simulation({ seed, maxEvents: 200_000 });
  const mem = new GuestMemory(PAGES * PAGE_SIZE);
  const rec = opts.record === false ? undefined : new TraceRecorder(sim.trace);
  // A stream nobody else uses: drawing from it must not change anything.
  for (let i = 0; i < (opts.extraDraws ?? 0); i++) sim.prng.stream('unrelated').u32();

  const workerRng = sim.prng.stream('worker');
  const injectorRng = sim.prng.stream('injector');
  const inflight: Array<{ gfn: number; h: EventHandle; actor: number; wake: () => void }> = [];

  for (let a = 0; a < ACTORS; a++) {
    const rng = sim.prng.stream(`actor${a}`);
    let waitingFor: number | undefined;
    sim.registerWaiter({
      name: `actor${a}`,
      waiting: () => waitingFor !== undefined,
      describe: () => `waiting for gfn ${waitingFor}`,
    });
    const wake = (): void => {
      waitingFor = undefined;
      sim.schedule(rng.int(10, 200), Priority.Guest, act, `actor${a}.act`, `actor${a}`);
    };
    const act = (): void => {
      const gfn = rng.int(0, PAGES - 1);
      const off = rng.int(0, PAGE_SIZE / 4 - 1) * 4;
      const val = rng.u32();
      mem.writeU32(gfn * PAGE_SIZE + off, val);
      forwardEmit(sim.trace, 'cpu', a, 'touch', { gfn, off, val });
      if (rng.bool(1, 6)) {
        // Ask the worker for the page and sleep until it answers (or the injector drops it).
        waitingFor = gfn;
        const delay = Math.round(workerRng.exponential(20_000));
        const entry = { gfn, actor: a, wake, h: undefined as unknown as EventHandle };
        entry.h = sim.schedule(delay, Priority.Worker, () => {
          inflight.splice(inflight.indexOf(entry), 1);
          forwardEmit(sim.trace, 'worker', -1, 'page_done', { gfn, sum: mem.pageChecksum(gfn), for: a });
          wake();
        }, 'worker.page', 'worker');
        inflight.push(entry);
        forwardEmit(sim.trace, 'guest', a, 'sleep', { gfn, delay });
      } else {
        sim.schedule(rng.int(100, 5_000), Priority.Guest, act, `actor${a}.act`, `actor${a}`);
      }
    };
    sim.schedule(rng.int(0, 1_000), Priority.Guest, act, `actor${a}.act`, `actor${a}`);
  }

  const inject = (): void => {
    if (inflight.length > 0 && injectorRng.bool(1, 3)) {
      const victim = injectorRng.pick(inflight);
      victim.h.cancel();
      inflight.splice(inflight.indexOf(victim), 1);
      forwardEmit(sim.trace, 'harness', -1, 'drop_completion', { gfn: victim.gfn, actor: victim.actor, big: BigInt(sim.now) * 3n });
      // The dropped request is retried with a fresh, fast completion.
      const entry = { ...victim, h: undefined as unknown as EventHandle };
      entry.h = sim.schedule(injectorRng.int(1, 50), Priority.Worker, () => {
        inflight.splice(inflight.indexOf(entry), 1);
        forwardEmit(sim.trace, 'worker', -1, 'page_done', { gfn: entry.gfn, sum: mem.pageChecksum(entry.gfn), for: entry.actor, retried: true });
        entry.wake();
      }, 'worker.retry', 'injector');
      inflight.push(entry);
    }
    sim.schedule(injectorRng.int(1_000, 10_000), Priority.Harness, inject, 'injector', 'harness');
  };
  sim.schedule(0, Priority.Harness, inject, 'injector', 'harness');

  const end = sim.run({ until: ms(5) });
  return {
    hash: sim.trace.hash,
    records: rec?.records ?? [],
    counts: sim.trace.counts(),
    pageSums: Array.from({ length: PAGES }, (_, g) => mem.pageChecksum(g)),
    events: sim.eventsRun,
    end: end.reason,
  };
}

describe('determinism', () => {
  test('seed 42 twice: identical hash, records, counts and memory', () => {
    const a = runWorkload(42);
    const b = runWorkload(42);
    expect(a.end).toBe('until');
    expect(a.records.length).toBeGreaterThan(1000);
    expect(a.counts['drop_completion']).toBeGreaterThan(0);
    expect(a.counts['page_done']).toBeGreaterThan(0);
    expect(b.hash).toBe(a.hash);
    expect(b.records).toEqual(a.records);
    expect(b.counts).toEqual(a.counts);
    expect(b.pageSums).toEqual(a.pageSums);
    expect(b.events).toBe(a.events);
  });

  test('seeds 42 and 43 give different traces', () => {
    const a = runWorkload(42, { record: false });
    const b = runWorkload(43, { record: false });
    expect(b.hash).not.toBe(a.hash);
    expect(b.pageSums).not.toEqual(a.pageSums);
  });

  test('the hash does not depend on who listens; "42" is the seed 42', () => {
    expect(runWorkload(42, { record: false }).hash).toBe(runWorkload(42).hash);
    expect(runWorkload('42', { record: false }).hash).toBe(runWorkload(42, { record: false }).hash);
  });

  test('drawing from an unrelated stream changes nothing', () => {
    expect(runWorkload(42, { record: false, extraDraws: 1000 }).hash).toBe(runWorkload(42, { record: false }).hash);
  });
});
