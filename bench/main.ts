/**
 * `npm run bench [-- --json]`: every benchmark of the project, as medians over repeated runs in
 * one process after warm-up. Wall-clock timing lives only here, never in tests.
 */
import os from 'node:os';
import { runSimMicro } from './sim-micro';

interface BenchReport {
  machine: { node: string; cpus: number; cpuModel: string; memGiB: number; platform: string };
  simMicro: { name: string; nsPerOp: number }[];
}

function main(argv: readonly string[]): void {
  const json = argv.includes('--json');
  const cpus = os.cpus();
  const report: BenchReport = {
    machine: {
      node: process.version,
      cpus: cpus.length,
      cpuModel: cpus[0]?.model ?? 'unknown',
      memGiB: Math.round(os.totalmem() / 2 ** 30),
      platform: `${os.platform()} ${os.arch()}`,
    },
    simMicro: runSimMicro(),
  };
  if (json) {
    process.stdout.write(JSON.stringify(report, null, 2) + '\n');
    return;
  }
  const m = report.machine;
  console.log(`machine: ${m.cpus} x ${m.cpuModel}, ${m.memGiB} GiB, ${m.platform}, node ${m.node}`);
  console.log('\nsim/ hot paths (median ns/op):');
  for (const r of report.simMicro) console.log(`  ${r.name.padEnd(56)} ${r.nsPerOp.toFixed(2).padStart(9)}`);
}

main(process.argv.slice(2));
