// Preloaded into a child process by bench/startup.ts: at exit, write the process's CPU time
// (user + system, all threads) and wall time since start to the file named by APF_BENCH_CPU_FILE.
'use strict';
const fs = require('node:fs');
const t0 = process.hrtime.bigint();
process.on('exit', () => {
  const u = process.cpuUsage();
  const file = process.env.APF_BENCH_CPU_FILE;
  if (file) fs.writeFileSync(file, JSON.stringify({ cpuMs: (u.user + u.system) / 1000, wallMs: Number(process.hrtime.bigint() - t0) / 1e6 }));
});
