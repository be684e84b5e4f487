/**
 * Loads the harness with Node's own module loader, outside Jest's sandbox, for tests whose cost is
 * the simulation itself.
 *
 * Jest runs each test file in a `vm` context. Code compiled there looks up every global (`Math`,
 * `Map`, `Uint32Array`, ...) through the context's interceptor instead of V8's fast path: a hot
 * loop of `Math.max` runs tens of times slower than in a plain Node context, and a scenario that
 * spins to its event budget (a handler that never EOIs) took ~5 s in Jest against ~0.8 s in
 * Node. Modules loaded here are compiled by tools/register.js (what `apf` runs) in the worker's
 * main context, once per Jest worker process, and run at full speed.
 *
 * What a test gets from here is a second copy of the harness, separate from the one its `import`s
 * load: a class from one copy is not the class of the other (`instanceof`, `toThrow(Class)`), and
 * objects come from the main realm (`toEqual` compares them fine; `toStrictEqual` and
 * `toBeInstanceOf(Object)` do not). So a test takes everything it compares from one copy.
 * Jest's mocks and fake timers do not reach this copy; the tests that use it need neither.
 */
import { Module } from 'node:module';
import * as path from 'node:path';

const REPO = path.resolve(__dirname, '..', '..');

/** Node's loader: under Jest, `node:module` is Jest's stand-in, whose statics are Node's own. */
const load = (Module as unknown as { _load(request: string, parent: null, isMain: boolean): unknown })._load;

load(path.join(REPO, 'tools', 'register.js'), null, false);

/** The module at `file` (relative to the repository root), loaded by Node outside the sandbox. */
export function native<T>(file: string): T {
  return load(path.resolve(REPO, file), null, false) as T;
}
