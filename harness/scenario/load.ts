/**
 * Loading a scenario: read the file, parse JSON or YAML, validate against the schema, run the
 * cross-field checks, and hand back a `Scenario`. Every problem becomes a `ScenarioError` whose
 * message names the file, the path inside it and the problem:
 *
 *   scenarios/x.json: tasks[2].program[5].page: expected a GVA like "0x7f0000001000" (got "0x7f00zz")
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type YamlModule from 'yaml';
import type { z } from 'zod';
import { ScenarioSchema } from './schema';
import { formatPath } from './scalars';
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
        (others.length > 0 ? ` (and ${others.length} more problem${others.length === 1 ? '' : 's'})` : ''),
    );
  }
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
    const doc = yaml().parseDocument(text, { customTags: (tags) => [HEX_AS_STRING, ...tags], uniqueKeys: true });
    const err = doc.errors[0];
    if (err !== undefined) {
      const pos = err.linePos?.[0];
      const first = err.message.split('\n')[0] ?? err.message;
      throw new ScenarioError(file, '', `not valid YAML${pos === undefined ? '' : ` (line ${pos.line}, column ${pos.col})`}: ${first.replace(/ at line \d+, column \d+:?$/, '')}`);
    }
    return doc.toJS();
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    throw new ScenarioError(file, '', `not valid JSON${jsonErrorPosition(text, msg)}: ${jsonErrorText(msg)}`);
  }
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
  const parsed = ScenarioSchema.safeParse(value);
  if (!parsed.success) {
    const all = parsed.error.issues.map((iss) => ({ where: issuePath(iss), problem: iss.message }));
    const first = all[0] ?? { where: '', problem: 'invalid scenario' };
    throw new ScenarioError(file, first.where, first.problem, all.slice(1));
  }
  const { scenario, problems } = buildScenario(parsed.data, name, file);
  if (scenario === undefined) {
    const all = problems.map((p: Problem) => ({ where: formatPath(p.path), problem: p.message }));
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
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory, not a scenario file' : code === 'EACCES' ? 'permission denied' : String(e);
    throw new ScenarioError(shown, '', why);
  }
  return scenarioFromText(text, shown, formatOf(file));
}
