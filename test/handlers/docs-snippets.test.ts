/**
 * The TypeScript snippets of docs/handlers.md compile: each ```ts block is written next to the
 * repository root (its imports are relative to the root, as the doc says) and type-checked with
 * the project's compiler options.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import ts from 'typescript';

const REPO = path.resolve(__dirname, '..', '..');
const DOC = path.join(REPO, 'docs', 'handlers.md');

function snippets(): string[] {
  const text = fs.readFileSync(DOC, 'utf8');
  return [...text.matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1] ?? '');
}

describe('docs/handlers.md', () => {
  it('has TypeScript snippets', () => {
    expect(snippets().length).toBeGreaterThanOrEqual(3);
  });

  it('its snippets type-check', () => {
    const cfg = ts.readConfigFile(path.join(REPO, 'tsconfig.json'), (f) => ts.sys.readFile(f));
    const parsed = ts.parseJsonConfigFileContent(cfg.config, ts.sys, REPO);
    const files = snippets().map((code, i) => ({ name: path.join(REPO, `__doc_handlers_snippet_${i}.ts`), code }));
    const byName = new Map(files.map((f) => [f.name, f.code]));
    const host = ts.createCompilerHost(parsed.options);
    const getSourceFile = host.getSourceFile.bind(host);
    host.getSourceFile = (name, lang, onError, create) => {
      const code = byName.get(path.resolve(name));
      return code !== undefined ? ts.createSourceFile(name, code, lang) : getSourceFile(name, lang, onError, create);
    };
    const fileExists = host.fileExists.bind(host);
    host.fileExists = (name) => byName.has(path.resolve(name)) || fileExists(name);
    const program = ts.createProgram(files.map((f) => f.name), { ...parsed.options, noEmit: true }, host);
    // The snippets' own diagnostics (and the program-wide ones without a file): the checker
    // checks only these files; the repository's own files are type-checked by `npm run typecheck`.
    const mine = program.getSourceFiles().filter((sf) => byName.has(path.resolve(sf.fileName)));
    expect(mine).toHaveLength(files.length);
    const diags = mine
      .flatMap((sf) => ts.getPreEmitDiagnostics(program, sf))
      .filter((d, i, all) => d.file === undefined ? all.findIndex((o) => o.file === undefined && o.code === d.code && o.messageText === d.messageText) === i : byName.has(path.resolve(d.file.fileName)));
    const text = diags.map((d) => `${d.file ? path.basename(d.file.fileName) : ''}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`);
    expect(text).toEqual([]);
  }, 120_000);
});
