/**
 * Writes (or, with --check, compares) test/golden/trace-hashes.json: the trace hash, event count
 * and outcome of every shipped scenario and of every regression variant. The file is the trace
 * contract: a refactor keeps every row; a change that means to alter behaviour regenerates it
 * and its commit says which rows moved and why.
 *
 *   npx ts-node --transpile-only harness/tools/golden-hashes.ts           # rewrite
 *   npx ts-node --transpile-only harness/tools/golden-hashes.ts --check   # compare, exit 1 on a difference
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { scenarioFiles } from '../cli/commands/list';
import { runScenario } from '../runner';
import { loadScenarioFile } from '../scenario/load';
import { applyVariant, variantNames } from '../scenario/overrides';

export interface GoldenRow {
  readonly hash: string;
  readonly events: number;
  readonly outcome: string;
}

export const REPO = path.resolve(__dirname, '../..');
export const GOLDEN_FILE = path.join(REPO, 'test/golden/trace-hashes.json');

/** Every shipped scenario, and each of its variants, as `file` or `file#variant` -> its row. */
export function goldenRows(): Record<string, GoldenRow> {
  const out: Record<string, GoldenRow> = {};
  for (const abs of scenarioFiles(path.join(REPO, 'scenarios'))) {
    const file = path.relative(REPO, abs);
    const base = loadScenarioFile(abs, file);
    for (const v of [undefined, ...variantNames(base)]) {
      const s = v === undefined ? base : applyVariant(base, v);
      const r = runScenario(s);
      out[v === undefined ? file : `${file}#${v}`] = { hash: r.traceHash, events: r.events, outcome: r.outcome };
    }
  }
  return out;
}

function main(): void {
  const rows = goldenRows();
  const text = JSON.stringify(rows, null, 1) + '\n';
  if (process.argv.includes('--check')) {
    const old = JSON.parse(fs.readFileSync(GOLDEN_FILE, 'utf8')) as Record<string, GoldenRow>;
    let bad = 0;
    for (const k of new Set([...Object.keys(old), ...Object.keys(rows)])) {
      const a = JSON.stringify(old[k]);
      const b = JSON.stringify(rows[k]);
      if (a !== b) {
        bad++;
        process.stdout.write(`${k}: ${a ?? '(absent)'} -> ${b ?? '(absent)'}\n`);
      }
    }
    process.stdout.write(`${Object.keys(rows).length} rows, ${bad} differ\n`);
    process.exitCode = bad === 0 ? 0 : 1;
    return;
  }
  fs.writeFileSync(GOLDEN_FILE, text);
  process.stdout.write(`wrote ${Object.keys(rows).length} rows to ${path.relative(REPO, GOLDEN_FILE)}\n`);
}

if (require.main === module) main();
