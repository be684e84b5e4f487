import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadHandlers } from '../harness/handlers-file';
import { runCheck } from '../harness/cli/commands/check';
const dir = path.resolve(__dirname, '../test/handlers/mistakes');
const only = process.argv[2];
const fuzz = process.argv[3] === 'fuzz';
for (const f of fs.readdirSync(dir).sort()) {
  if (only !== undefined && only !== 'all' && !f.startsWith(only)) continue;
  const mod = require(path.join(dir, f)) as { rule: RegExp; description: string };
  const lh = loadHandlers('check', path.join(dir, f), process.cwd());
  const r = runCheck(lh, { dir: path.resolve(__dirname, '../scenarios'), cwd: process.cwd(), fuzz, runs: 150, seed: 1, jobs: 2, out: '/tmp/h/chk' });
  const bad = r.rows.filter((x) => !x.ok);
  const hit = bad.filter((x) => mod.rule.test(x.diagnosis));
  console.log(`=== ${f}: ${bad.length} failing, ${hit.length} naming ${mod.rule}`);
  for (const b of bad.slice(0, 4)) console.log(`   ${b.name}: ${b.diagnosis.slice(0, 300)}`);
}
