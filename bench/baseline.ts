/**
 * The minimal baseline: the async PF round trip as a bare state machine, so the harness's
 * overhead is a measured ratio rather than a guess.
 *
 * It keeps only what the protocol itself needs: the shared struct's flags/token words in a
 * little-endian buffer, the host's token counter and outstanding-gfn set, a completion queue
 * ordered by time, and the guest's sleeper table keyed by token. No scheduler, no instructions,
 * no trace, no checkers. Each round trip: fault → allocate token → flags := 1 → guest reads and
 * clears flags, parks the task → completion → slot free? → token := T → guest wakes the task,
 * token := 0 → ACK → the task retries and succeeds.
 */
const FLAGS = 0;
const TOKEN = 4;

export interface BaselineResult {
  readonly roundTrips: number;
  readonly wallMs: number;
}

/** `tasks` tasks on one vCPU, each doing `perTask` faults; page-in latency is a fixed 20 µs. */
export function runBaseline(tasks: number, perTask: number): BaselineResult {
  const area = new DataView(new ArrayBuffer(64));
  const outstanding = new Set<number>();
  const sleepers = new Map<number, number>(); // token -> task
  const doneTimes: number[] = []; // completion queue: FIFO with equal latency keeps it ordered
  const doneTokens: number[] = [];
  const doneGfns: number[] = [];
  let head = 0;
  let now = 0;
  let id = 1;
  let roundTrips = 0;
  const left = new Array<number>(tasks).fill(perTask);
  const runnable: number[] = Array.from({ length: tasks }, (_, i) => i);
  const t0 = process.hrtime.bigint();
  while (roundTrips < tasks * perTask) {
    // The vCPU runs a runnable task: its access misses (the page is never resident here).
    const task = runnable.shift();
    if (task !== undefined && left[task]! > 0) {
      const gfn = task * 2 + (left[task]! & 1);
      const token = ((id++ << 12) | 0) >>> 0;
      if (id === 0x100000) id = 1;
      outstanding.add(gfn);
      area.setUint32(FLAGS, 1, true); // host: flags := NOT_PRESENT, inject #PF(token)
      const flags = area.getUint32(FLAGS, true); // guest: read and reset
      area.setUint32(FLAGS, 0, true);
      if (flags === 1) sleepers.set(token, task);
      doneTimes.push(now + 20_000);
      doneTokens.push(token);
      doneGfns.push(gfn);
      now += 100;
      continue;
    }
    // Nothing runnable: the next completion.
    if (head >= doneTimes.length) break;
    now = Math.max(now, doneTimes[head]!);
    const token = doneTokens[head]!;
    outstanding.delete(doneGfns[head]!);
    head++;
    if (area.getUint32(TOKEN, true) !== 0) throw new Error('slot busy');
    area.setUint32(TOKEN, token, true); // host: page ready
    const t = area.getUint32(TOKEN, true); // guest: interrupt handler
    const woken = sleepers.get(t);
    sleepers.delete(t);
    area.setUint32(TOKEN, 0, true); // guest: slot free, then ACK
    if (woken !== undefined) {
      left[woken]!--;
      roundTrips++; // the retry now succeeds
      if (left[woken]! > 0) runnable.push(woken);
    }
  }
  return { roundTrips, wallMs: Number(process.hrtime.bigint() - t0) / 1e6 };
}

/** Median round trips per second over `reps` runs after a warm-up. */
export function measureBaseline(tasks = 2, perTask = 200_000, reps = 5): number {
  runBaseline(tasks, perTask);
  const xs = Array.from({ length: reps }, () => {
    const r = runBaseline(tasks, perTask);
    return (r.roundTrips / r.wallMs) * 1000;
  }).sort((a, b) => a - b);
  return xs[Math.floor(xs.length / 2)] ?? 0;
}

if (require.main === module) console.log(`baseline: ${measureBaseline().toFixed(0)} round trips/s`);
