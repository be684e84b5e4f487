/**
 * The whole front end under arbitrary input: random bytes, random JSON and YAML values, random
 * mutations of every shipped scenario and random command lines go through the loader and through
 * `runCli` in-process. Whatever comes in, the answer is exit 0, 1 or 2, never a stack trace or an
 * "internal error", the loader throws nothing but `ScenarioError`, and the heap stays bounded.
 * Runs are capped by small event and time budgets so a valid mutation costs milliseconds.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import fc from 'fast-check';
import YAML from 'yaml';
import { native } from '../support/native';
import { cli, REPO, tmpDir } from './cli-helpers';

// The loader and the CLI (cli-helpers) from the copy outside Jest's sandbox (test/support/native.ts).
const { scenarioFromText, ScenarioError } = native<typeof import('../../harness/scenario/load')>('harness/scenario/load');

const SEED = 20261207;
const BUDGET = ['--max-events', '5000', '--max-time', '5ms'];
const STACK = /apf[^:\n]*: internal error|\n\s+at .+:\d+:\d+/;

function scenarioFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) return scenarioFiles(p);
    return /\.(json|ya?ml)$/.test(e.name) ? [p] : [];
  });
}
const SHIPPED = scenarioFiles(path.join(REPO, 'scenarios')).sort();
const SHIPPED_VALUES = SHIPPED.map((f) => ({ file: path.relative(REPO, f), value: (f.endsWith('.json') ? JSON.parse(fs.readFileSync(f, 'utf8')) : YAML.parse(fs.readFileSync(f, 'utf8'))) as unknown }));

const work = tmpDir('apf-prop-');
const runs = path.join(work, 'runs');
afterAll(() => fs.rmSync(work, { recursive: true, force: true }));

/** Runs the CLI on `text` written as `name`; checks the exit-status contract and returns the status. */
function runText(name: string, text: string | Uint8Array, extra: readonly string[] = []): number {
  fs.writeFileSync(path.join(work, name), text);
  const r = cli(['run', name, '-q', '--runs-dir', runs, ...extra, ...BUDGET], { cwd: work });
  expect([0, 1, 2]).toContain(r.code);
  expect(r.err + r.out).not.toMatch(STACK);
  if (r.code === 2) expect(r.err.trimEnd().split('\n')).toHaveLength(1);
  return r.code;
}

/** The loader either returns a scenario or throws a ScenarioError naming the file. */
function loadOnly(text: string, name: string): void {
  try {
    scenarioFromText(text, name);
  } catch (e) {
    if (!(e instanceof ScenarioError)) throw e;
    expect(e.message.startsWith(`${name}: `)).toBe(true);
  }
}

// Values that have broken parsers before: prototype names, huge and negative numbers, odd strings.
const nasty = fc.constantFrom<unknown>(
  '__proto__', 'constructor', 'toString', -1, 0, 1.5, 1e308, -1e308, 2 ** 53, '', ' ', 'NaN', '0x', '0xffffffffffffffffffff', '1e300s', '-10us', '64GiB',
  '100GiB', 'swap', '\u0000', '\ufeff', null, true, [], {}, [[[[[]]]]], { __proto__: null }, '$x', 'x'.repeat(10_000),
);
const anyValue = fc.oneof(nasty, fc.jsonValue({ maxDepth: 3 }));

type Path = (string | number)[];
function paths(v: unknown, p: Path = [], out: Path[] = []): Path[] {
  out.push(p);
  if (Array.isArray(v)) v.forEach((x, i) => paths(x, [...p, i], out));
  else if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) paths(x, [...p, k], out);
  return out;
}

type Mutation = { kind: 'replace'; value: unknown } | { kind: 'delete' } | { kind: 'rename'; to: string } | { kind: 'add'; key: string; value: unknown } | { kind: 'duplicate' };
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  anyValue.map((value) => ({ kind: 'replace' as const, value })),
  fc.constant({ kind: 'delete' as const }),
  fc.oneof(fc.constantFrom('__proto__', 'constructor', 'tasks', 'on', 'do', 'x'), fc.string({ maxLength: 8 })).map((to) => ({ kind: 'rename' as const, to })),
  fc.record({ key: fc.oneof(fc.constantFrom('__proto__', 'constructor', 'events', 'bogus'), fc.string({ maxLength: 8 })), value: anyValue }).map((r) => ({ kind: 'add' as const, ...r })),
  fc.constant({ kind: 'duplicate' as const }),
);

/** `value` with `m` applied at `at` (a deep copy; JSON.parse keeps a "__proto__" key as data). */
function mutate(value: unknown, at: Path, m: Mutation): unknown {
  const root = JSON.parse(JSON.stringify(value)) as unknown;
  if (at.length === 0) return m.kind === 'replace' ? m.value : root;
  let parent: unknown = root;
  for (const k of at.slice(0, -1)) parent = (parent as Record<string | number, unknown>)[k];
  const key = at[at.length - 1] ?? 0;
  const obj = parent as Record<string | number, unknown>;
  const set = (k: string | number, v: unknown): void => {
    Object.defineProperty(obj, k, { value: v, enumerable: true, writable: true, configurable: true });
  };
  switch (m.kind) {
    case 'replace':
      set(key, m.value);
      break;
    case 'delete':
      if (Array.isArray(obj)) obj.splice(Number(key), 1);
      else delete obj[key];
      break;
    case 'rename':
      if (!Array.isArray(obj)) {
        const v = obj[key];
        delete obj[key];
        set(m.to, v);
      }
      break;
    case 'add': {
      const target = obj[key];
      if (target !== null && typeof target === 'object' && !Array.isArray(target)) Object.defineProperty(target, m.key, { value: m.value, enumerable: true, writable: true, configurable: true });
      else if (Array.isArray(target)) target.push(m.value);
      break;
    }
    case 'duplicate':
      if (Array.isArray(obj)) obj.splice(Number(key), 0, obj[key]);
      break;
  }
  return root;
}

describe('front end under arbitrary input', () => {
  const heapBefore = process.memoryUsage().heapUsed;

  it('arbitrary bytes as a scenario file: exit 0, 1 or 2, one line for bad input, no stack trace', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), fc.constantFrom('json', 'yaml'), (bytes, ext) => {
        runText(`bytes.${ext}`, bytes);
      }),
      { numRuns: 150, seed: SEED },
    );
  });

  it('arbitrary JSON and YAML values: the loader throws only ScenarioError, the CLI exits 0, 1 or 2', () => {
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue({ maxDepth: 6 }), fc.dictionary(fc.constantFrom('machine', 'tasks', 'events', 'expect', 'hostMemory', 'bare', 'regression', 'checkers', 'budget', '__proto__'), anyValue)), fc.boolean(), (value, asYaml) => {
        const text = asYaml ? YAML.stringify(value) : JSON.stringify(value);
        loadOnly(text, asYaml ? 'value.yaml' : 'value.json');
        runText(asYaml ? 'value.yaml' : 'value.json', text ?? '');
      }),
      { numRuns: 150, seed: SEED },
    );
  });

  it('mutations of every shipped scenario: the loader throws only ScenarioError, the CLI exits 0, 1 or 2', () => {
    // Each shipped scenario once unmutated (they are valid input), then random mutations.
    for (const s of SHIPPED_VALUES.slice(0, 3)) expect(runText('shipped.json', JSON.stringify(s.value))).not.toBe(2);
    fc.assert(
      fc.property(fc.nat(SHIPPED_VALUES.length - 1), fc.nat(), mutation, fc.boolean(), (which, where, m, asYaml) => {
        const base = SHIPPED_VALUES[which];
        if (base === undefined) return;
        const all = paths(base.value);
        const at = all[where % all.length] ?? [];
        const value = mutate(base.value, at, m);
        const text = asYaml ? YAML.stringify(value) : JSON.stringify(value);
        const name = asYaml ? 'mutant.yaml' : 'mutant.json';
        loadOnly(text ?? '', name);
        runText(name, text ?? '');
      }),
      { numRuns: 80, seed: SEED },
    );
  });

  it('arbitrary command lines: exit 0, 1 or 2, no stack trace', () => {
    const command = fc.constantFrom('run', 'run', 'compare', 'list', 'schema', 'help', 'constructor', '__proto__', 'rn');
    const file = fc.constantFrom('scenarios/default.json', 'scenarios/regressions/token-zero-wraparound.json', '/dev/zero', 'no-such.json', 'scenarios', '');
    const option = fc.constantFrom('--seed', '--variant', '--guest', '--host', '--toggle', '--vary', '--trace-format', '--max-events', '--max-time', '--runs-dir', '--json', '-q', '--all-errors', '--markdown', '-v', '--help', '--', '--constructor');
    const value = fc.oneof(
      fc.constantFrom('-1', '0', '0x10', '99999999999999999999', 'buggy', '__proto__', 'constructor', 'toString', 'current', 'linux-4.19', 'nonzero_token=off', '__proto__=on', 'nonzero_token', 'text', '1ms', '=', ''),
      fc.string({ maxLength: 10 }),
    );
    fc.assert(
      fc.property(command, fc.option(file, { nil: undefined }), fc.array(fc.tuple(option, fc.option(value, { nil: undefined })), { maxLength: 4 }), (cmd, f, opts) => {
        const argv = [cmd, ...(f === undefined ? [] : [f]), ...opts.flatMap(([o, v]) => (v === undefined ? [o] : [o, v]))];
        // The budgets go last so a run stays short.
        const r = cli([...argv, ...(cmd === 'run' || cmd === 'compare' ? ['--runs-dir', runs, ...BUDGET] : [])], { cwd: REPO });
        expect([0, 1, 2]).toContain(r.code);
        expect(r.err + r.out).not.toMatch(STACK);
      }),
      { numRuns: 150, seed: SEED },
    );
  });

  it('keeps the heap bounded', () => {
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(512 * 1024 * 1024);
  });
});
