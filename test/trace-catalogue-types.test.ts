/**
 * The trace catalogue's compile-time checks must keep biting: the TypeScript compiler runs on the
 * fixtures in test/type-fixtures/ (kept out of the project's own typecheck). Each `bad-*` fixture
 * must fail on exactly the line marked `// error`, and `emit-ok.ts` must compile cleanly.
 */
import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';

const dir = path.resolve(__dirname, 'type-fixtures');
const fixtures = fs.readdirSync(dir).filter((f) => f.endsWith('.ts'));
const program = ts.createProgram(
  fixtures.map((f) => path.join(dir, f)),
  { strict: true, noUncheckedIndexedAccess: true, target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.CommonJS, lib: ['lib.es2022.d.ts'], types: [], noEmit: true, skipLibCheck: true, esModuleInterop: true },
);

interface Found {
  line: number;
  code: number;
  text: string;
}

function diagnostics(fixture: string): Found[] {
  const sf = program.getSourceFile(path.join(dir, fixture));
  if (sf === undefined) throw new Error(`fixture ${fixture} not in the program`);
  return [...program.getSyntacticDiagnostics(sf), ...program.getSemanticDiagnostics(sf)].map((d) => ({
    line: d.start === undefined ? -1 : sf.getLineAndCharacterOfPosition(d.start).line + 1,
    code: d.code,
    text: ts.flattenDiagnosticMessageText(d.messageText, ' '),
  }));
}

function markedLine(fixture: string): number {
  const lines = fs.readFileSync(path.join(dir, fixture), 'utf8').split('\n');
  const i = lines.findIndex((l) => l.endsWith('// error'));
  if (i < 0) throw new Error(`fixture ${fixture} has no line marked '// error'`);
  return i + 1;
}

describe('trace catalogue types (the TypeScript compiler on fixtures)', () => {
  test('correct emits and record reads compile', () => {
    expect(diagnostics('emit-ok.ts')).toEqual([]);
  });

  const cases: Array<[string, string, RegExp]> = [
    ['bad-unknown-event.ts', 'an unknown event name', /'"kvm_async_pf_not_presnt"' is not assignable/],
    ['bad-misspelt-field.ts', 'a misspelt field', /'tokn' does not exist/],
    ['bad-mistyped-value.ts', 'a value of the wrong type', /'number' is not assignable to type 'boolean'/],
    ['bad-missing-field.ts', 'a missing required field', /'notified' is missing/],
    ['bad-closed-value.ts', 'a string outside the closed set', /'"sleepy"' is not assignable/],
    ['bad-wrong-source.ts', 'an event of another source', /'"kvm_async_pf_task_wake"' is not assignable/],
    ['bad-record-field.ts', 'a consumer reading a field the record lacks', /'tokn' does not exist/],
    ['bad-checker-undeclared-event.ts', 'a checker dispatching on an event it did not declare', /'"kvm_async_pf_ready"' is not comparable/],
  ];
  test.each(cases)('%s: %s is a type error on the marked line', (fixture, _what, message) => {
    const found = diagnostics(fixture);
    expect(found.length).toBeGreaterThan(0);
    expect(found.every((d) => d.line === markedLine(fixture))).toBe(true);
    expect(found.map((d) => d.text).join('\n')).toMatch(message);
  });

  test('every fixture is covered', () => {
    expect(fixtures.sort()).toEqual(['emit-ok.ts', ...cases.map((c) => c[0])].sort());
  });
});
