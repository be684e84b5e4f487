/**
 * No runtime import cycles in the simulated layers: a cycle makes load order decide which module
 * sees the other's exports as undefined, and it hides which file depends on which. Type-only
 * imports are erased by the compiler and do not count.
 */
import * as path from 'node:path';
import { cycles, importGraph, runtimeImports } from './support/import-graph';

const root = path.resolve(__dirname, '..');
const rel = (f: string): string => path.relative(root, f);

describe('runtime import graph', () => {
  it('has no cycle in sim/, host/, guest/ or shared-abi/', () => {
    const g = importGraph(['shared-abi', 'sim', 'host', 'guest'].map((d) => path.join(root, d)));
    expect(g.size).toBeGreaterThan(50);
    expect(cycles(g).map((c) => c.map(rel).join(' <-> '))).toEqual([]);
  });

  it('finds a cycle through value imports and ignores type-only ones', () => {
    const a = path.join(root, 'guest', 'kernel.ts');
    const b = path.join(root, 'guest', 'task.ts');
    expect(runtimeImports(a, "import type { Task } from './task';\nimport { type SpinLock } from './task';")).toEqual([]);
    expect(runtimeImports(a, "import { Task } from './task';")).toEqual([b]);
    expect(runtimeImports(a, "export { Task } from './task';")).toEqual([b]);
    const g = new Map([[a, [b]], [b, [a]]]);
    expect(cycles(g).map((c) => c.map(rel))).toEqual([['guest/kernel.ts', 'guest/task.ts']]);
    expect(cycles(new Map([[a, [b]], [b, []]]))).toEqual([]);
  });
});
