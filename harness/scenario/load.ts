/**
 * Loading a scenario: read the file, parse JSON or YAML, validate against the schema, run the
 * cross-field checks, and hand back a `Scenario`. Every problem becomes a `ScenarioError` whose
 * message names the file, the path inside it and the problem:
 *
 *   scenarios/x.json: tasks[2].program[5].page: expected a GVA like "0x7f0000001000" (got "0x7f00zz")
 */
import * as path from 'node:path';
import type YamlModule from 'yaml';
import type { z } from 'zod';
import { ScenarioSchema } from './schema';
import { formatPath } from './scalars';
import { MAX_INPUT_BYTES, readTextFile } from '../util/files';
import { buildScenario, type Problem } from './validate';
import type { Scenario } from './types';

/** A scenario that cannot be used: bad file, bad syntax or a validation problem. */
export class ScenarioError extends Error {
  override name = 'ScenarioError';
  constructor(
    /** The file as the user named it (undefined for in-memory scenarios). */
    readonly file: string | undefined,
    /** Where in the document ("tasks[2].program[5].page"), empty for the whole file. */
    readonly where: string,
    /** What is wrong. */
    readonly problem: string,
    /** Further problems found (their count is mentioned in the message). */
    readonly others: readonly { where: string; problem: string }[] = [],
  ) {
    super(
      [file, where === '' ? undefined : where].filter((x) => x !== undefined).join(': ') +
        (file === undefined && where === '' ? '' : ': ') +
        problem +
        (others.length > 0 ? ` (and ${others.length} more problem${others.length === 1 ? '' : 's'}; --all-errors lists them)` : ''),
    );
  }

  /** Every problem, the first one first, one line each (what `--all-errors` prints). */
  allLines(): string[] {
    const line = (where: string, problem: string): string =>
      [this.file, where === '' ? undefined : where].filter((x) => x !== undefined).join(': ') + (this.file === undefined && where === '' ? '' : ': ') + problem;
    return [line(this.where, this.problem), ...this.others.map((o) => line(o.where, o.problem))];
  }
}

/** Deepest nesting of objects and arrays a scenario file may have (a program nested 90 deep fits). */
export const MAX_NESTING = 200;

/** At most this many problems are collected and listed. */
const MAX_PROBLEMS = 100;

/**
 * Problems the schema cannot see, found before it runs: nesting deeper than `MAX_NESTING` (the
 * validator and the guest's program interpreter recurse) and "__proto__" keys (which JavaScript
 * objects cannot hold as data). Iterative, so any depth of input is safe to inspect.
 */
export function structureProblems(value: unknown): { where: string; problem: string }[] {
  const out: { where: string; problem: string }[] = [];
  const stack: { v: unknown; path: PropertyKey[] }[] = [{ v: value, path: [] }];
  while (stack.length > 0 && out.length < MAX_PROBLEMS) {
    const { v, path: p } = stack.pop() ?? { v: undefined, path: [] };
    if (v === null || typeof v !== 'object') continue;
    if (p.length >= MAX_NESTING) {
      out.push({ where: formatPath(p), problem: `nested too deeply (more than ${MAX_NESTING} levels of objects and lists)` });
      continue;
    }
    if (Array.isArray(v)) {
      for (let i = v.length - 1; i >= 0; i--) stack.push({ v: v[i] as unknown, path: [...p, i] });
      continue;
    }
    const keys = Object.keys(v);
    for (let i = keys.length - 1; i >= 0; i--) {
      const k = keys[i] ?? '';
      if (k === '__proto__') out.push({ where: formatPath([...p, k]), problem: 'the key "__proto__" is not allowed (it is not a name of anything in a scenario)' });
      else stack.push({ v: (v as Record<string, unknown>)[k], path: [...p, k] });
    }
  }
  return out;
}

/** YAML: keep plain 0x... scalars as strings (YAML 1.2 would read them as integers and lose 64-bit addresses). */
const HEX_AS_STRING = {
  identify: (): boolean => false,
  default: true,
  tag: 'tag:yaml.org,2002:str',
  test: /^0x[0-9a-fA-F_]+$/,
  resolve: (s: string): string => s,
};

/** The yaml package, loaded on first use (most runs read JSON; this keeps `apf` start-up short). */
let yamlModule: typeof YamlModule | undefined;
function yaml(): typeof YamlModule {
  if (yamlModule === undefined) {
    const m = require('yaml') as typeof YamlModule & { default?: typeof YamlModule };
    yamlModule = m.default ?? m;
  }
  return yamlModule;
}

export type ScenarioFormat = 'json' | 'yaml';

/** Format from the file extension (.yaml/.yml: YAML, anything else: JSON). */
export function formatOf(file: string): ScenarioFormat {
  return /\.ya?ml$/i.test(file) ? 'yaml' : 'json';
}

/** Parses JSON or YAML text into a plain value; syntax errors become `ScenarioError`s with line and column. */
export function parseText(text: string, format: ScenarioFormat, file: string | undefined): unknown {
  if (format === 'yaml') {
    let doc: ReturnType<typeof YamlModule.parseDocument>;
    try {
      doc = yaml().parseDocument(stripBom(text), { customTags: (tags) => [HEX_AS_STRING, ...tags], uniqueKeys: true });
    } catch (e) {
      throw new ScenarioError(file, '', `not valid YAML: ${e instanceof RangeError ? `nested too deeply (more than ${MAX_NESTING} levels)` : e instanceof Error ? e.message : String(e)}`);
    }
    // An unknown tag (!!js/function, !!python/object, !foo) would otherwise become a plain string.
    const err = doc.errors[0] ?? doc.warnings.find((w) => w.code === 'TAG_RESOLVE_FAILED');
    if (err !== undefined && /call stack/i.test(err.message)) throw new ScenarioError(file, '', `not valid YAML: nested too deeply (more than ${MAX_NESTING} levels)`);
    if (err !== undefined) {
      const pos = err.linePos?.[0];
      const first = (err.message.split('\n')[0] ?? err.message).replace(/^Unresolved tag: (?:tag:yaml\.org,2002:)?/, err.code === 'TAG_RESOLVE_FAILED' ? 'unknown tag ' : '$&');
      const tagHint = err.code === 'TAG_RESOLVE_FAILED' ? ' (scenario files use plain YAML: no tags)' : '';
      throw new ScenarioError(file, '', `not valid YAML${pos === undefined ? '' : ` (line ${pos.line}, column ${pos.col})`}: ${first.replace(/ at line \d+, column \d+:?$/, '')}${tagHint}`);
    }
    try {
      return doc.toJS({ maxAliasCount: YAML_MAX_ALIASES });
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      if (/alias/i.test(msg)) throw new ScenarioError(file, '', `not valid YAML: its aliases expand too much (more than ${YAML_MAX_ALIASES} alias uses; write the values out)`);
      if (e instanceof RangeError) throw new ScenarioError(file, '', `not valid YAML: nested too deeply (more than ${MAX_NESTING} levels)`);
      throw new ScenarioError(file, '', `not valid YAML: ${msg.split('\n')[0] ?? msg}`);
    }
  }
  try {
    return JSON.parse(stripBom(text)) as unknown;
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    throw new ScenarioError(file, '', `not valid JSON${jsonErrorPosition(text, msg)}: ${jsonErrorText(msg)}`);
  }
}

/** Most alias uses a YAML file may make (an "alias bomb" expands exponentially). */
const YAML_MAX_ALIASES = 100;

/** Text without a leading byte-order mark (editors on Windows write one). */
function stripBom(text: string): string {
  return text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
}

/** " (line L, column C)" of a JSON syntax error, from V8's message or, failing that, from the YAML parser (JSON is YAML). */
function jsonErrorPosition(text: string, msg: string): string {
  const m = /position (\d+)/.exec(msg);
  if (m !== null) {
    const pos = Number(m[1]);
    const before = text.slice(0, pos);
    return ` (line ${before.split('\n').length}, column ${pos - before.lastIndexOf('\n')})`;
  }
  const pos = yaml().parseDocument(text).errors[0]?.linePos?.[0];
  return pos === undefined ? '' : ` (line ${pos.line}, column ${pos.col})`;
}

/** V8's JSON error without the quoted input and position: "Unexpected token '}'". */
function jsonErrorText(msg: string): string {
  return (msg.split('\n')[0] ?? msg)
    .replace(/, ".*$/, '')
    .replace(/ in JSON at position \d+.*$/, '')
    .replace(/ \(line \d+ column \d+\)$/, '')
    .replace(/^JSON\.parse: /, '');
}

function issuePath(iss: z.core.$ZodIssue): string {
  const p: PropertyKey[] = [...iss.path];
  if (iss.code === 'unrecognized_keys' && iss.keys.length > 0) p.push(iss.keys[0] ?? '');
  return formatPath(p);
}

/** Validates a parsed value as a scenario. `name` is used when the scenario has none. */
export function scenarioFromValue(value: unknown, file: string | undefined, name = 'scenario'): Scenario {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new ScenarioError(file, '', 'expected a scenario object ({"machine": ..., "tasks": [...], ...}) at the top level');
  }
  const structural = structureProblems(value);
  const firstStructural = structural[0];
  if (firstStructural !== undefined) throw new ScenarioError(file, firstStructural.where, firstStructural.problem, structural.slice(1));
  const parsed = ScenarioSchema.safeParse(value);
  if (!parsed.success) {
    const all = parsed.error.issues.slice(0, MAX_PROBLEMS).map((iss) => ({ where: issuePath(iss), problem: iss.message }));
    const first = all[0] ?? { where: '', problem: 'invalid scenario' };
    throw new ScenarioError(file, first.where, first.problem, all.slice(1));
  }
  const { scenario, problems } = buildScenario(parsed.data, name, file);
  if (scenario === undefined) {
    const all = problems.slice(0, MAX_PROBLEMS).map((p: Problem) => ({ where: formatPath(p.path), problem: p.message }));
    const first = all[0] ?? { where: '', problem: 'invalid scenario' };
    throw new ScenarioError(file, first.where, first.problem, all.slice(1));
  }
  return scenario;
}

/** Parses scenario text (JSON or YAML). */
export function scenarioFromText(text: string, file: string | undefined, format: ScenarioFormat = file === undefined ? 'json' : formatOf(file)): Scenario {
  return scenarioFromValue(parseText(text, format, file), file, file === undefined ? 'scenario' : path.basename(file).replace(/\.(json|ya?ml)$/i, ''));
}

/** Reads and validates a scenario file; `shown` (default `file`) is the name used in messages. */
export function loadScenarioFile(file: string, shown: string = file): Scenario {
  const read = readTextFile(file, MAX_INPUT_BYTES);
  if (!read.ok) throw new ScenarioError(shown, '', read.why);
  return scenarioFromText(read.text, shown, formatOf(file));
}
