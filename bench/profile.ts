/**
 * `npm run bench:profile [-- --workload 1x2|8x64] [-- --checkers] [-- --no-hash] [-- --out FILE]`:
 * where a round trip's time goes. Runs the round-trip workload of `bench/roundtrip.ts` once to warm
 * up, then again under the V8 CPU profiler (`node:inspector`, the same profiler as
 * `node --cpu-prof`), writes the `.cpuprofile` (open it in Chrome DevTools or speedscope) and
 * prints self time grouped by layer, in per cent and µs per round trip, and the hottest functions.
 * docs/performance.md quotes this table.
 */
import fs from 'node:fs';
import inspector from 'node:inspector';
import os from 'node:os';
import path from 'node:path';
import { runRoundTrips, type RoundTripWorkload } from './roundtrip';

/** The subset of the V8 `.cpuprofile` format read here. */
export interface CpuProfile {
  readonly nodes: ReadonlyArray<{ readonly id: number; readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number } }>;
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

/** Layers, matched against a function's file in this order (the first match wins). */
export const LAYERS: ReadonlyArray<readonly [string, RegExp]> = [
  ['trace bus: hashing, records, listeners, summary', /\/sim\/trace\.ts$|eventemitter3|\/harness\/runner\.ts$|\/harness\/report\//],
  ['checkers', /\/harness\/checkers\//],
  ['guest kernel code', /\/guest\//],
  ['vCPU: instruction step, paging, delivery', /\/sim\/cpu\//],
  ['page bytes and host memory', /\/sim\/memory\.ts$|\/host\/(hostmem|hostphys|memslots)\.ts$/],
  ['host KVM: run loop, APF, async queue, LAPIC', /\/host\//],
  ['engine, queue, clock, PRNG', /\/sim\//],
  ['garbage collection', /^\(garbage collector\)$/],
];

/** Samples in no layer: the profiler itself, V8 builtins and runtime functions without a file, idle. */
export const OTHER = 'other (profiler, V8 builtins, idle)';

export interface LayerRow {
  readonly layer: string;
  readonly us: number;
  readonly share: number;
}

/**
 * Self time per layer, in µs over the whole profile; samples in no layer go to OTHER.
 */
export function selfTimeByLayer(p: CpuProfile): LayerRow[] {
  const layerOf = new Map<number, string>();
  for (const n of p.nodes) {
    const where = n.callFrame.url === '' ? n.callFrame.functionName : n.callFrame.url;
    layerOf.set(n.id, LAYERS.find(([, re]) => re.test(where))?.[0] ?? OTHER);
  }
  const us = new Map<string, number>();
  let total = 0;
  p.samples.forEach((id, i) => {
    const dt = p.timeDeltas[i] ?? 0;
    const layer = layerOf.get(id) ?? OTHER;
    us.set(layer, (us.get(layer) ?? 0) + dt);
    total += dt;
  });
  return [...us]
    .map(([layer, t]) => ({ layer, us: t, share: total > 0 ? t / total : 0 }))
    .sort((a, b) => b.us - a.us);
}

/** The `n` functions with the most self time: "name file:line" and µs. */
export function hottest(p: CpuProfile, n: number): Array<{ fn: string; us: number }> {
  const name = new Map(p.nodes.map((x) => [x.id, `${x.callFrame.functionName || '(anonymous)'} ${path.basename(x.callFrame.url)}:${x.callFrame.lineNumber + 1}`]));
  const us = new Map<string, number>();
  p.samples.forEach((id, i) => {
    const k = name.get(id) ?? '?';
    us.set(k, (us.get(k) ?? 0) + (p.timeDeltas[i] ?? 0));
  });
  return [...us]
    .map(([fn, t]) => ({ fn, us: t }))
    .sort((a, b) => b.us - a.us)
    .slice(0, n);
}

const USAGE = 'usage: npm run bench:profile [-- --workload 1x2|8x64] [-- --checkers] [-- --no-hash] [-- --out FILE]';

function fail(msg: string): never {
  console.error(`bench:profile: ${msg}\n${USAGE}`);
  process.exit(2);
}

function parseArgs(argv: readonly string[]): { w: RoundTripWorkload; out: string } {
  let workload = '1x2';
  let checkers = false;
  let traceHash = true;
  let out: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--workload') {
      workload = argv[++i] ?? fail('--workload needs 1x2 or 8x64');
      if (workload !== '1x2' && workload !== '8x64') fail(`unknown workload '${workload}' (expected 1x2 or 8x64)`);
    } else if (a === '--checkers') checkers = true;
    else if (a === '--no-hash') traceHash = false;
    else if (a === '--out') {
      out = argv[++i];
      if (out === undefined || out.startsWith('--')) fail('--out needs a file name');
    } else fail(`unknown flag '${a}'`);
  }
  const w: RoundTripWorkload = workload === '1x2' ? { vcpus: 1, tasks: 2, loops: 5000, checkers, traceHash } : { vcpus: 8, tasks: 64, loops: 60, checkers, traceHash };
  return { w, out: out ?? path.join(os.tmpdir(), `apf-roundtrip-${workload}.cpuprofile`) };
}

/** Runs `fn` under the CPU profiler (synchronous: the inspector session posts complete inline). */
function profiled(fn: () => void): CpuProfile {
  const session = new inspector.Session();
  session.connect();
  let profile: CpuProfile | undefined;
  let failure: Error | null = null;
  session.post('Profiler.enable');
  session.post('Profiler.setSamplingInterval', { interval: 100 });
  session.post('Profiler.start');
  fn();
  session.post('Profiler.stop', (err, res) => {
    failure = err;
    profile = res?.profile as CpuProfile | undefined;
  });
  session.disconnect();
  if (failure !== null || profile === undefined) throw new Error(`the CPU profiler failed: ${String(failure)}`);
  return profile;
}

function main(argv: readonly string[]): void {
  const { w, out } = parseArgs(argv);
  runRoundTrips(w); // warm-up: JIT, caches
  let roundTrips = 0;
  const profile = profiled(() => {
    roundTrips = runRoundTrips(w).roundTrips;
  });
  fs.writeFileSync(out, JSON.stringify(profile));
  const layers = selfTimeByLayer(profile);
  const total = layers.reduce((s, r) => s + r.us, 0);
  console.log(
    `${w.vcpus} vCPU x ${w.tasks} tasks, checkers ${w.checkers === true ? 'on' : 'off'}, trace hash ${w.traceHash === false ? 'off' : 'on'}: ` +
      `${roundTrips} round trips in ${(total / 1000).toFixed(0)} ms profiled (${(total / Math.max(1, roundTrips)).toFixed(1)} us each)`,
  );
  console.log('\nself time by layer:');
  for (const r of layers) console.log(`  ${r.layer.padEnd(50)} ${(r.share * 100).toFixed(1).padStart(5)} %  ${(r.us / Math.max(1, roundTrips)).toFixed(2).padStart(6)} us/round trip`);
  console.log('\nhottest functions (self time):');
  for (const f of hottest(profile, 15)) console.log(`  ${f.fn.padEnd(50)} ${((f.us / total) * 100).toFixed(1).padStart(5)} %`);
  console.log(`\nprofile written to ${out}`);
}

if (require.main === module) main(process.argv.slice(2));
