/**
 * Steady-state async page fault round trips through the whole model: guest kernel + host KVM +
 * vCPU hardware + trace bus (+ the harness checkers when asked).
 *
 * One round trip: a task touches a page the host has swapped out → async #PF with a token → the
 * task sleeps and its vCPU runs another task → the page-in completes → page ready → the task is
 * woken and retries the access, which now succeeds. The workload keeps every access a miss: each
 * task cycles over four pages of its own and the host may keep only a quarter of all task pages in
 * RAM, so every fault-in evicts the least recently used page (a cyclic access pattern larger than
 * an LRU always misses; a page just faulted in is the most recently used, so it survives until its
 * task retries).
 */
import { PAGE_SIZE } from '../shared-abi/addr';
import { scenarioFromValue } from '../harness/scenario/load';
import { runScenario } from '../harness/runner';
import { CHECKERS } from '../harness/checkers';

export interface RoundTripWorkload {
  readonly vcpus: number;
  readonly tasks: number;
  /** Loop iterations per task (each touches PAGES_PER_TASK pages). */
  readonly loops: number;
  /** Page-in latency. Longer latencies keep more faults outstanding per vCPU. */
  readonly swapLatencyNs?: number;
  /** Run the harness's invariant checkers (default true: the full harness). */
  readonly checkers?: boolean;
  /** Keep the running trace hash (default true). */
  readonly traceHash?: boolean;
  readonly seed?: number;
}

export interface RoundTripResult {
  readonly roundTrips: number;
  readonly events: number;
  readonly virtualNs: number;
  readonly wallMs: number;
  readonly outcome: string;
}

const USER_BASE = 0x7f0000000000;
/** Each task cycles over this many private pages; the host keeps at most a quarter of all of them. */
export const PAGES_PER_TASK = 4;

/** The scenario (as a plain value, validated by the harness like any scenario file). */
export function roundTripScenario(w: RoundTripWorkload): unknown {
  const pageOf = (task: number, k: number): string => '0x' + (USER_BASE + (task * PAGES_PER_TASK + k + 1) * PAGE_SIZE).toString(16);
  const tasks = Array.from({ length: w.tasks }, (_, i) => {
    const pages = Array.from({ length: PAGES_PER_TASK }, (_, k) => pageOf(i, k));
    return {
      name: `t${i}`,
      cpu: i % w.vcpus,
      affinity: [i % w.vcpus],
      pages,
      program: [{ op: 'loop', times: w.loops, body: pages.map((page) => ({ op: 'touch', page, write: true, value: i + 1 })) }],
    };
  });
  const checkers = w.checkers === false ? Object.fromEntries(CHECKERS.map((c) => [c.name, false])) : {};
  return {
    name: `roundtrip-${w.vcpus}x${w.tasks}`,
    description: 'steady-state async PF round trips (benchmark)',
    seed: w.seed ?? 1,
    machine: { vcpus: w.vcpus, memory: `${Math.ceil((w.tasks * PAGES_PER_TASK * PAGE_SIZE * 3) / 2 ** 20) + 16}MiB` },
    hostMemory: {
      pages: tasks.flatMap((t) => t.pages.map((page) => ({ page, backing: 'swapped' }))),
      // At most one fault per task is outstanding, so `tasks` frames always hold every page just
      // faulted in until its task retries; the cycle over 4 x tasks pages then always misses.
      limitPages: w.tasks,
      latency: { swap: `${w.swapLatencyNs ?? 20_000}ns` },
    },
    tasks,
    checkers,
    budget: { maxEvents: 2_000_000_000, maxTime: '3600s' },
  };
}

/** Runs the workload once and counts completed round trips (tasks woken after a page-ready). */
export function runRoundTrips(w: RoundTripWorkload): RoundTripResult {
  const scenario = scenarioFromValue(roundTripScenario(w), undefined, 'bench');
  const t0 = process.hrtime.bigint();
  const r = runScenario(scenario, { traceHash: w.traceHash ?? true });
  const wallMs = Number(process.hrtime.bigint() - t0) / 1e6;
  return { roundTrips: r.counts['kvm_async_pf_task_woken'] ?? 0, events: r.events, virtualNs: r.endT, wallMs, outcome: r.outcome };
}

export interface Median {
  readonly roundTripsPerSec: number;
  readonly eventsPerSec: number;
  readonly nsPerRoundTrip: number;
  readonly eventsPerRoundTrip: number;
  readonly roundTrips: number;
  readonly reps: number;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? 0;
};

/** Median over `reps` runs after one warm-up run, all in this process. */
export function measureRoundTrips(w: RoundTripWorkload, reps = 5): Median {
  const warm = runRoundTrips(w);
  if (warm.outcome !== 'completed') throw new Error(`round-trip workload ${w.vcpus}x${w.tasks} did not complete: ${warm.outcome}`);
  const runs = Array.from({ length: reps }, () => runRoundTrips(w));
  const rts = median(runs.map((r) => (r.roundTrips / r.wallMs) * 1000));
  const evs = median(runs.map((r) => (r.events / r.wallMs) * 1000));
  return {
    roundTripsPerSec: rts,
    eventsPerSec: evs,
    nsPerRoundTrip: 1e9 / rts,
    eventsPerRoundTrip: warm.events / Math.max(1, warm.roundTrips),
    roundTrips: warm.roundTrips,
    reps,
  };
}

if (require.main === module) {
  for (const w of [
    { vcpus: 1, tasks: 2, loops: 2000 },
    { vcpus: 8, tasks: 64, loops: 40 },
  ]) {
    for (const checkers of [true, false]) {
      const m = measureRoundTrips({ ...w, checkers });
      console.log(
        `${w.vcpus} vCPU x ${w.tasks} tasks, checkers ${checkers ? 'on ' : 'off'}: ${m.roundTripsPerSec.toFixed(0)} round trips/s, ` +
          `${(m.eventsPerSec / 1e6).toFixed(2)} M events/s, ${m.eventsPerRoundTrip.toFixed(1)} events/round trip`,
      );
    }
  }
}
