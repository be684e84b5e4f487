// Runs npm scripts side by side (`node tools/run-parallel.js typecheck lint`) and fails if any of
// them fails. `npm test` runs the type check and the lint this way: each is single-threaded, so
// one after the other they leave a core idle for their whole length. Each script's output is
// printed in one piece when it ends, so the two never interleave.
'use strict';
const { spawn } = require('node:child_process');

const names = process.argv.slice(2);
if (names.length === 0) {
  process.stderr.write('usage: node tools/run-parallel.js SCRIPT...\n');
  process.exit(2);
}
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
let failed = 0;
let left = names.length;
for (const name of names) {
  const chunks = [];
  const child = spawn(npm, ['run', '--silent', name], { stdio: ['ignore', 'pipe', 'pipe'], shell: process.platform === 'win32' });
  child.stdout.on('data', (d) => chunks.push(d));
  child.stderr.on('data', (d) => chunks.push(d));
  child.on('close', (code, signal) => {
    const ok = code === 0;
    if (!ok) failed++;
    process.stdout.write(`> npm run ${name}: ${ok ? 'ok' : `FAILED (${signal ?? `exit ${code}`})`}\n`);
    if (chunks.length > 0) process.stdout.write(Buffer.concat(chunks));
    if (--left === 0) process.exitCode = failed === 0 ? 0 : 1;
  });
  child.on('error', (e) => {
    failed++;
    process.stdout.write(`> npm run ${name}: could not start: ${e.message}\n`);
  });
}
