// Lints each fixture's text as if it lived at a given path in the project, and prints the
// findings as JSON: [{fixture, as, messages: [{ruleId, message}]}]. Run by test/lint-rules.test.ts
// in a child process (ESLint's flat config is ESM, which Jest's CommonJS runtime cannot load).
import { ESLint } from 'eslint';
import { readFileSync } from 'node:fs';
import path from 'node:path';

const [root, ...pairs] = process.argv.slice(2);
const eslint = new ESLint({ cwd: root });
const out = [];
for (const pair of pairs) {
  const [fixture, as] = pair.split('=');
  const text = readFileSync(path.join(root, 'test/lint-fixtures', fixture), 'utf8');
  const [res] = await eslint.lintText(text, { filePath: path.join(root, as) });
  out.push({ fixture, as, messages: res.messages.map((m) => ({ ruleId: m.ruleId, message: m.message })) });
}
process.stdout.write(JSON.stringify(out));
