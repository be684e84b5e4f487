/**
 * Micro-benchmarks of the sim/ hot paths: event queue, guest memory, trace bus, PRNG, run loop.
 *
 * Method: each case does `ops` operations per repetition; one warm-up repetition, then `reps`
 * timed ones with `process.hrtime.bigint()`; the figure is the median ns/op. All cases run in
 * one process, in the order below. Inputs (times, addresses) are precomputed so the loops time
 * only the operation. Run: `npx ts-node --transpile-only bench/sim-micro.ts [--reps N]`.
 */
import os from 'node:os';
import { PAGE_SIZE } from '../shared-abi/addr';
import { EventQueue, GuestMemory, Prng, Simulation, TraceBus, VirtualClock, type QueuedEvent } from '../sim';

export interface MicroResult {
  name: string;
  nsPerOp: number;
}

export interface SimMicroOptions {
  /** Timed repetitions per case (default 7). */
  reps?: number;
  /** Multiplies every case's operation count (default 1; use < 1 for a quick smoke run). */
  scale?: number;
}

/** Keeps results alive so the JIT cannot drop the loops. */
let sink = 0;

function measure(ops: number, reps: number, fn: () => number): number {
  sink += fn(); // warm-up
  const per: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = process.hrtime.bigint();
    sink += fn();
    per.push(Number(process.hrtime.bigint() - t0) / ops);
  }
  per.sort((a, b) => a - b);
  return per[Math.floor(per.length / 2)]!;
}

const noop = (): void => {};

/**
 * A queue holding `size` events; each repetition does `ops` hold operations (pop the earliest,
 * schedule one a random delay later), which keep the size constant.
 */
function queueHold(size: number, ops: number): () => number {
  const rng = new Prng('bench').stream(`queue-${size}`);
  const deltas = new Float64Array(ops);
  for (let i = 0; i < ops; i++) deltas[i] = rng.int(1, 2 * size);
  const prios = [0, 10, 20, 30] as const;
  const q = new EventQueue();
  for (let i = 0; i < size; i++) q.schedule(rng.int(0, size), prios[i & 3]!, noop, 'ev');
  return () => {
    let acc = 0;
    for (let i = 0; i < ops; i++) {
      const e: QueuedEvent = q.pop()!;
      acc += e.priority;
      q.schedule(e.time + deltas[i]!, prios[i & 3]!, noop, 'ev');
    }
    return acc;
  };
}

/** Runs every case and returns one result per case, in a fixed order. */
export function runSimMicro(opts: SimMicroOptions = {}): MicroResult[] {
  const reps = opts.reps ?? 7;
  const scale = opts.scale ?? 1;
  const n = (x: number): number => Math.max(1, Math.round(x * scale));
  const out: MicroResult[] = [];
  const bench = (name: string, ops: number, fn: () => number): void => {
    out.push({ name, nsPerOp: measure(ops, reps, fn) });
  };

  // Event queue.
  for (const size of [1e3, 1e5]) {
    const ops = n(1e6);
    bench(`queue schedule+pop (hold), size ${size.toExponential(0)}`, ops, queueHold(size, ops));
  }

  // Guest memory: random 4-byte-aligned addresses across 16 MiB.
  {
    const mem = new GuestMemory(4096 * PAGE_SIZE);
    const addrs = new Float64Array(1 << 16);
    const rng = new Prng('bench').stream('mem');
    for (let i = 0; i < addrs.length; i++) addrs[i] = rng.int(0, mem.size / 4 - 1) * 4;
    const mask = addrs.length - 1;
    const ops = n(1e7);
    bench('memory readU32 (random aligned, 16 MiB)', ops, () => {
      let acc = 0;
      for (let i = 0; i < ops; i++) acc = (acc + mem.readU32(addrs[i & mask]!)) | 0;
      return acc;
    });
    bench('memory writeU32 (random aligned, 16 MiB)', ops, () => {
      for (let i = 0; i < ops; i++) mem.writeU32(addrs[i & mask]!, i);
      return mem.readU32(0);
    });
    const pops = n(1e4);
    bench('memory pageChecksum (4 KiB)', pops, () => {
      let acc = 0;
      for (let i = 0; i < pops; i++) acc ^= mem.pageChecksum(i & 4095);
      return acc;
    });
    // What a swap-out and a swap-in move per page (host/hostmem.ts): copy out, poison, copy in.
    const buf = new Uint8Array(PAGE_SIZE);
    bench('memory copyPageOut into a reused buffer (4 KiB)', pops, () => {
      for (let i = 0; i < pops; i++) mem.copyPageOut(i & 4095, buf);
      return buf[0]!;
    });
    bench('memory fillPage (4 KiB)', pops, () => {
      for (let i = 0; i < pops; i++) mem.fillPage(i & 4095, 0xdb);
      return mem.readU32(0);
    });
    bench('memory copyPageIn (4 KiB)', pops, () => {
      for (let i = 0; i < pops; i++) mem.copyPageIn(i & 4095, buf);
      return mem.readU32(0);
    });
  }

  // Trace bus: a typical record (three integer fields).
  for (const hashEnabled of [true, false]) {
    const clock = new VirtualClock();
    const bus = new TraceBus(clock, { hashEnabled });
    const ops = n(2e6);
    bench(`trace emit, no listener, hash ${hashEnabled ? 'on' : 'off'} (3 int fields)`, ops, () => {
      for (let i = 0; i < ops; i++) bus.emit('host', i & 3, 'kvm_page_fault', { fault_address: 0x1000 + i, error_code: i, gva: 1 });
      return bus.recordCount;
    });
  }
  {
    const bus = new TraceBus(new VirtualClock());
    let got = 0;
    bus.on('record', (r) => (got += r.cpu));
    const ops = n(1e6);
    bench('trace emit, 1 listener, hash on (3 int fields)', ops, () => {
      for (let i = 0; i < ops; i++) bus.emit('host', i & 3, 'kvm_page_fault', { fault_address: 0x1000 + i, error_code: i, gva: 1 });
      return got;
    });
  }

  // PRNG.
  {
    const rng = new Prng(42).stream('bench');
    const ops = n(1e7);
    bench('prng u32', ops, () => {
      let acc = 0;
      for (let i = 0; i < ops; i++) acc ^= rng.u32();
      return acc;
    });
    bench('prng int(0, 999)', ops, () => {
      let acc = 0;
      for (let i = 0; i < ops; i++) acc += rng.int(0, 999);
      return acc;
    });
  }

  // Run loop: one self-rescheduling event chain (schedule + pop + dispatch per event).
  {
    const ops = n(1e6);
    bench('engine run, per event (self-rescheduling chain)', ops, () => {
      const sim = new Simulation({ seed: 1, maxEvents: Infinity, maxTime: Infinity });
      let left = ops;
      const tick = (): void => {
        if (--left > 0) sim.schedule(100, 30, tick, 'tick');
      };
      sim.schedule(0, 30, tick, 'tick');
      return sim.run().events;
    });
  }

  if (sink === 0.5) out.push({ name: 'unreachable', nsPerOp: 0 });
  return out;
}

if (require.main === module) {
  const i = process.argv.indexOf('--reps');
  const reps = i >= 0 ? Number(process.argv[i + 1]) : undefined;
  console.log(`node ${process.version}, ${os.cpus().length} x ${os.cpus()[0]?.model ?? '?'}`);
  for (const r of runSimMicro({ reps })) console.log(`${r.name.padEnd(56)} ${r.nsPerOp.toFixed(2).padStart(9)} ns/op`);
}
