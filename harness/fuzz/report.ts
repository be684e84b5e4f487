/**
 * Failures of a campaign as files: the shrunk scenario (and the original one) with a header that
 * says where it came from and what fails, plus the command lines that replay it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { APF_COMMAND, shellWord } from '../scenario/overrides';
import { formatDoc, type JsonObject } from './doc';
import type { FuzzMode } from './case';
import type { ShrinkOutcome } from './search';

export interface FailureContext {
  /** Canonical campaign seed. */
  readonly seed: string;
  readonly mode: FuzzMode;
  readonly canary?: string;
  /** The command line that reproduces the campaign. */
  readonly command: string;
}

export interface WrittenFailure {
  readonly index: number;
  /** The shrunk scenario file and the original (unshrunk) one, as paths from the cwd. */
  readonly file: string;
  readonly originalFile: string;
  /** `apf run FILE --seed ...`: the exact run, with its timeline, summary and checkers. */
  readonly replay: string;
  /** `apf fuzz --replay FILE ...`: the run judged by the fuzz properties. */
  readonly judge: string;
}

const oneLine = (s: string, max = 240): string => {
  const l = s.replace(/\s+/g, ' ').trim();
  return l.length > max ? l.slice(0, max - 1) + '…' : l;
};

/** `npx apf run FILE --seed N --guest G --host H` for a document. */
export function replayCommand(file: string, doc: JsonObject): string {
  const machine = (doc.machine ?? {}) as JsonObject;
  const guest = ((machine.guest ?? {}) as JsonObject).profile;
  const host = ((machine.host ?? {}) as JsonObject).profile;
  const words = [...APF_COMMAND, 'run', file, '--seed', String(doc.seed ?? 1)];
  if (typeof guest === 'string' && doc.bare === undefined) words.push('--guest', guest);
  if (typeof host === 'string') words.push('--host', host);
  return words.map(shellWord).join(' ');
}

/** `npx apf fuzz --replay FILE [--canary C]`. */
export function judgeCommand(file: string, ctx: Pick<FailureContext, 'canary'>): string {
  const words = [...APF_COMMAND, 'fuzz', '--replay', file];
  if (ctx.canary !== undefined) words.push('--canary', ctx.canary);
  return words.map(shellWord).join(' ');
}

/** The shrunk document with a header: name, description, notes. */
export function annotate(doc: JsonObject, s: ShrinkOutcome, ctx: FailureContext, which: 'shrunk' | 'original'): JsonObject {
  const f = (which === 'shrunk' ? s.shrunk : s.original).result.failures;
  const first = f[0];
  const name = `fuzz-${ctx.seed}-${s.index}${which === 'original' ? '-original' : ''}`;
  const { name: _n, description: _d, notes: _notes, ...rest } = doc;
  return {
    name,
    description: oneLine(`apf fuzz found this (seed ${ctx.seed}, run ${s.index}${which === 'shrunk' ? `, shrunk from ${s.original.size} to ${s.shrunk.size} nodes` : ''}): ${first === undefined ? 'no failure' : `${first.property}: ${first.message}`}`),
    notes: [
      `Found by: ${ctx.command}${ctx.canary === undefined ? '' : ` (guest variant: canary ${ctx.canary})`}`,
      ...f.map((x) => oneLine(`Fails ${x.property}: ${x.message}`, 400)),
      'The run is deterministic: the same file and seed give the same trace. `apf fuzz --replay FILE` judges it with the fuzz properties (docs/fuzzing.md).',
    ],
    ...rest,
  };
}

function slug(s: string): string {
  return s.replace(/[^A-Za-z0-9_-]+/g, '_').slice(0, 40) || 'seed';
}

/** Writes each shrunk failure (and its original) to `dir`; returns the files and replay lines. */
export function writeFailures(shrunk: readonly ShrinkOutcome[], dir: string, cwd: string, ctx: FailureContext): WrittenFailure[] {
  if (shrunk.length === 0) return [];
  fs.mkdirSync(dir, { recursive: true });
  const shown = (abs: string): string => {
    const rel = path.relative(cwd, abs);
    return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : abs;
  };
  return shrunk.map((s) => {
    const base = path.join(dir, `fuzz-${slug(ctx.seed)}-${s.index}`);
    const file = `${base}.json`;
    const originalFile = `${base}.original.json`;
    const doc = annotate(s.shrunk.doc, s, ctx, 'shrunk');
    fs.writeFileSync(file, formatDoc(doc));
    fs.writeFileSync(originalFile, formatDoc(annotate(s.original.doc, s, ctx, 'original')));
    return { index: s.index, file: shown(file), originalFile: shown(originalFile), replay: replayCommand(shown(file), doc), judge: judgeCommand(shown(file), ctx) };
  });
}

export interface WrittenHazard {
  readonly index: number;
  readonly hazard: string;
  readonly file: string;
  /** `npx apf run FILE --seed ...`: the run, with its timeline. */
  readonly replay: string;
  /** `npx apf fuzz --replay FILE`: the run judged by the fuzz properties (passes, naming the hazard). */
  readonly judge: string;
}

/**
 * Writes the scenario of each listed hazard run (a passing run that ended in a known hazard) to
 * `dir` as `fuzz-SEED-INDEX.hazard.json`; returns the files and the lines that replay them.
 */
export function writeHazards(runs: readonly { readonly index: number; readonly hazard: string }[], docOf: (index: number) => JsonObject, dir: string, cwd: string, ctx: FailureContext): WrittenHazard[] {
  if (runs.length === 0) return [];
  fs.mkdirSync(dir, { recursive: true });
  const shown = (abs: string): string => {
    const rel = path.relative(cwd, abs);
    return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : abs;
  };
  return runs.map((h) => {
    const abs = path.join(dir, `fuzz-${slug(ctx.seed)}-${h.index}.hazard.json`);
    const { name: _n, description: _d, notes: _notes, ...rest } = docOf(h.index);
    const doc: JsonObject = {
      name: `fuzz-${ctx.seed}-${h.index}-hazard`,
      description: oneLine(`apf fuzz run ${h.index} of seed ${ctx.seed} ended in a known hazard: ${h.hazard}`),
      notes: [`Found by: ${ctx.command}`, 'A known hazard is what the modelled kernel really does, not a failure of the harness (docs/fuzzing.md).'],
      ...rest,
    };
    fs.writeFileSync(abs, formatDoc(doc));
    const file = shown(abs);
    return { index: h.index, hazard: h.hazard, file, replay: replayCommand(file, doc), judge: judgeCommand(file, ctx) };
  });
}
