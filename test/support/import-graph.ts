/**
 * The runtime import graph of the simulated layers, read with the TypeScript parser: an edge for
 * every `import`/`export ... from` that survives compilation. `import type`, `export type` and
 * imports whose every named binding is `type`-qualified are erased by the compiler, so they are
 * not edges (a type-only reference cannot create a load-order cycle).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ts from 'typescript';

function listTs(dir: string): string[] {
  const out: string[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...listTs(p));
    else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** Whether an import declaration is erased at compile time. */
function typeOnlyImport(d: ts.ImportDeclaration): boolean {
  const c = d.importClause;
  if (c === undefined) return false; // `import './x'`: a side-effect import
  if (c.isTypeOnly) return true;
  if (c.name !== undefined) return false;
  const b = c.namedBindings;
  if (b === undefined) return false;
  if (ts.isNamespaceImport(b)) return false;
  return b.elements.length > 0 && b.elements.every((e) => e.isTypeOnly);
}

function typeOnlyExport(d: ts.ExportDeclaration): boolean {
  if (d.isTypeOnly) return true;
  const c = d.exportClause;
  return c !== undefined && ts.isNamedExports(c) && c.elements.length > 0 && c.elements.every((e) => e.isTypeOnly);
}

function resolve(from: string, spec: string): string | undefined {
  if (!spec.startsWith('.')) return undefined;
  const base = path.resolve(path.dirname(from), spec);
  for (const cand of [`${base}.ts`, path.join(base, 'index.ts')]) if (fs.existsSync(cand)) return cand;
  return undefined;
}

/** Runtime edges of the source text `text` of the file `file` (absolute paths). */
export function runtimeImports(file: string, text: string): string[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, false, ts.ScriptKind.TS);
  const out: string[] = [];
  for (const s of sf.statements) {
    let spec: ts.Expression | undefined;
    if (ts.isImportDeclaration(s) && !typeOnlyImport(s)) spec = s.moduleSpecifier;
    else if (ts.isExportDeclaration(s) && !typeOnlyExport(s)) spec = s.moduleSpecifier;
    else if (ts.isImportEqualsDeclaration(s) && !s.isTypeOnly && ts.isExternalModuleReference(s.moduleReference)) spec = s.moduleReference.expression;
    if (spec === undefined || !ts.isStringLiteral(spec)) continue;
    const to = resolve(file, spec.text);
    if (to !== undefined) out.push(to);
  }
  return out;
}

/** The runtime import graph of every .ts file under `dirs` (absolute paths), keyed by file. */
export function importGraph(dirs: readonly string[]): Map<string, string[]> {
  const g = new Map<string, string[]>();
  for (const d of dirs) for (const f of listTs(d)) g.set(f, runtimeImports(f, fs.readFileSync(f, 'utf8')));
  return g;
}

/** The strongly connected components with more than one file, or a file importing itself (Tarjan). */
export function cycles(g: ReadonlyMap<string, readonly string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next);
    next++;
    stack.push(v);
    onStack.add(v);
    for (const w of g.get(v) ?? []) {
      if (!g.has(w)) continue;
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const comp: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1 || (g.get(v) ?? []).includes(v)) out.push(comp.sort());
    }
  };
  for (const v of [...g.keys()].sort()) if (!index.has(v)) visit(v);
  return out;
}
