/**
 * `--handlers SPEC`: where a replacement set of guest async-PF handlers (docs/handlers.md) comes
 * from on the command line.
 *
 *   FILE           a .ts or .js module that exports `handlers: Partial<ApfHandlers>` (or the same
 *                  object as its default export); the path is taken relative to the cwd
 *   stock          the profile's own handlers (useful as a column of `apf compare`)
 *   canary:NAME    one of the fuzzer's deliberately broken guests (harness/fuzz/canaries.ts)
 *
 * A module is loaded with `require`, so a .ts file needs the process's TypeScript hook (bin/apf,
 * the npm scripts, Jest and the fuzz workers all have one). Every problem with the file is a
 * UsageError naming the file and what is wrong with it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { APF_HANDLER_NAMES, type ApfHandlers } from '../guest/handlers';
import { CANARY_NAMES, canaryByName } from './fuzz/canaries';
import { UsageError } from './scenario/overrides';
import { closest } from './util/names';

export interface LoadedHandlers {
  /** The spec as the user wrote it (what replay lines repeat). */
  readonly spec: string;
  /** The replacement handlers; empty for `stock`. */
  readonly handlers: Partial<ApfHandlers>;
  /** Absolute path of the module (undefined for `stock` and canaries). */
  readonly file?: string;
  /** The module's one-line `description` export, if any. */
  readonly description?: string;
}

export const STOCK = 'stock';
const CANARY_PREFIX = 'canary:';

const GENERATOR_CTOR = Object.getPrototypeOf(function* () {
  /* only its constructor is used */
}).constructor as unknown;

/** Checks that `value` is a `Partial<ApfHandlers>`; returns it typed. `where` prefixes messages. */
export function validateHandlers(value: unknown, where: string): Partial<ApfHandlers> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new UsageError(`${where}: expected an object of handlers, got ${Array.isArray(value) ? 'an array' : typeof value}`);
  const known = APF_HANDLER_NAMES as readonly string[];
  for (const [k, v] of Object.entries(value)) {
    if (!known.includes(k)) {
      const h = closest(k, known);
      throw new UsageError(`${where}: unknown handler "${k}"${h === undefined ? '' : ` (did you mean "${h}"?)`}; handlers: ${known.join(', ')}`);
    }
    if (typeof v !== 'function') throw new UsageError(`${where}: handler "${k}" is ${typeof v}, not a function`);
    if (Object.getPrototypeOf(v)?.constructor !== GENERATOR_CTOR) throw new UsageError(`${where}: handler "${k}" must be a generator function (\`*${k}(api, ...) { ... }\`): each yield is one guest instruction`);
  }
  return value as Partial<ApfHandlers>;
}

/** Loads the handlers named by `spec` (a file relative to `cwd`, `stock` or `canary:NAME`). `cmd` names the command in messages. */
export function loadHandlers(cmd: string, spec: string, cwd: string): LoadedHandlers {
  const where = `apf ${cmd}: --handlers ${spec}`;
  if (spec.trim() === '') throw new UsageError(`apf ${cmd}: --handlers needs a file (a .ts or .js module exporting \`handlers\`), "stock" or "canary:NAME"`);
  if (spec === STOCK) return { spec, handlers: {} };
  if (spec.startsWith(CANARY_PREFIX)) {
    const name = spec.slice(CANARY_PREFIX.length);
    if (!CANARY_NAMES.includes(name)) {
      const h = closest(name, CANARY_NAMES);
      throw new UsageError(`${where}: unknown canary${h === undefined ? '' : ` (did you mean "canary:${h}"?)`}; canaries: ${CANARY_NAMES.join(', ')}`);
    }
    const c = canaryByName(name);
    return { spec, handlers: c.handlers, description: c.description };
  }
  const abs = path.resolve(cwd, spec);
  let st: fs.Stats;
  try {
    st = fs.statSync(abs);
  } catch {
    throw new UsageError(`${where}: no such file`);
  }
  if (!st.isFile()) throw new UsageError(`${where}: not a file`);
  if (!/\.(ts|js|cjs)$/.test(abs)) throw new UsageError(`${where}: expected a .ts or .js module`);
  const mod = requireModule(abs, where);
  const exported = mod.handlers ?? mod.default;
  if (exported === undefined) throw new UsageError(`${where}: the module exports no \`handlers\` (write \`export const handlers: Partial<ApfHandlers> = { ... }\`)`);
  const handlers = validateHandlers(exported, `${where}: export \`${mod.handlers === undefined ? 'default' : 'handlers'}\``);
  const description = typeof mod.description === 'string' ? mod.description : undefined;
  return { spec, handlers, file: abs, ...(description === undefined ? {} : { description }) };
}

function requireModule(abs: string, where: string): Record<string, unknown> {
  try {
    // The file is the user's, chosen at run time: a plain require (through the process's .ts hook).
    const m: unknown = require(abs);
    return typeof m === 'object' && m !== null ? (m as Record<string, unknown>) : {};
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    throw new UsageError(`${where}: cannot load it: ${msg.split('\n').find((l) => l.trim() !== '') ?? msg}`);
  }
}

/** Handlers for a fuzz case or a worker: loaded once per process and spec. */
const cache = new Map<string, Partial<ApfHandlers>>();
export function handlersForCase(spec: string, cwd: string): Partial<ApfHandlers> {
  const key = `${cwd}\0${spec}`;
  let h = cache.get(key);
  if (h === undefined) {
    h = loadHandlers('fuzz', spec, cwd).handlers;
    cache.set(key, h);
  }
  return h;
}
