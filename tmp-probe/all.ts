import * as path from 'node:path';
import { scenarioFiles } from '../harness/cli/commands/list';
import { runScenario } from '../harness/runner';
import { loadScenarioFile } from '../harness/scenario/load';
import { applyVariant, variantNames } from '../harness/scenario/overrides';
const REPO = path.resolve(__dirname, '..');
for (const abs of scenarioFiles(path.join(REPO, 'scenarios'))) {
  const f = path.relative(REPO, abs);
  const base = loadScenarioFile(abs, f);
  for (const v of [undefined, ...variantNames(base)]) {
    const s = v === undefined ? base : applyVariant(base, v);
    const r = runScenario(s);
    const fired = [...new Set(r.violations.map((x) => x.checker))];
    if (!r.ok || fired.includes('guest-rules') || fired.includes('guest-warn')) console.log(f, v ?? '', r.ok ? 'ok' : 'FAIL', r.violations.filter((x) => x.checker.startsWith('guest-')).map((x) => x.message.slice(0, 150)).join(' | '), r.expectations.filter((e) => !e.ok).map((e) => e.what).join(';'));
  }
}
