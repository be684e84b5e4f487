/**
 * Every command sample in README.md and docs/*.md is run, and its printed output compared.
 *
 * A sample is a fenced code block whose lines starting with `$ npx apf ` are commands; the lines
 * after each command, up to the next `$ ` line or the end of the block, are what it prints
 * (stdout, then stderr). Any doc gets covered by writing its samples that way: this file finds
 * them by itself. Commands run in-process (the CLI entry function) from a scratch directory that
 * sees the repository's scenarios/, docs/ and test/ (its bad scenario files), so files the
 * commands write stay out of the checkout.
 *
 * Before comparing, both sides are normalised, and only like this (docs/cli.md says the same):
 *   - timings: "12.3 s", "45 runs/s", "(0.1 s)" and JSON "elapsedMs"/"runsPerSec" become "<time>";
 *   - paths: the scratch directory becomes "."; run ids (12-character names of files under runs/)
 *     become "<run-id>";
 *   - trailing spaces are dropped.
 * A line that is exactly "..." in the doc stands for any number of printed lines (to shorten
 * long outputs); the lines around it must still match.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { runCli } from '../../harness/cli/cli';
import { REPO, tmpDir } from '../harness/cli-helpers';

export interface Sample {
  readonly doc: string;
  readonly line: number;
  readonly argv: string[];
  readonly command: string;
  readonly expected: string[];
}

/** Splits a shell command line into words (single and double quotes, no expansions). */
export function shellWords(line: string): string[] {
  const words: string[] = [];
  let cur = '';
  let has = false;
  let q: '"' | "'" | null = null;
  for (const c of line) {
    if (q !== null) {
      if (c === q) q = null;
      else cur += c;
    } else if (c === '"' || c === "'") {
      q = c;
      has = true;
    } else if (/\s/.test(c)) {
      if (has || cur !== '') words.push(cur);
      cur = '';
      has = false;
    } else cur += c;
  }
  if (has || cur !== '') words.push(cur);
  return words;
}

/** The samples of one markdown text. */
export function samplesOf(doc: string, text: string): Sample[] {
  const out: Sample[] = [];
  const lines = text.split('\n');
  let inBlock = false;
  let current: { line: number; command: string; expected: string[] } | undefined;
  const flush = (): void => {
    if (current === undefined) return;
    const words = shellWords(current.command);
    out.push({ doc, line: current.line, argv: words.slice(2), command: current.command, expected: current.expected });
    current = undefined;
  };
  let indent = '';
  lines.forEach((raw, i) => {
    const fence = /^(\s*)```/.exec(raw);
    if (fence !== null) {
      if (inBlock) flush();
      inBlock = !inBlock;
      indent = fence[1] ?? '';
      return;
    }
    if (!inBlock) return;
    // A block inside a list item is indented like its fence.
    const l = raw.startsWith(indent) ? raw.slice(indent.length) : raw;
    if (l.startsWith('$ ')) {
      flush();
      if (l.startsWith('$ npx apf ')) current = { line: i + 1, command: l.slice(2), expected: [] };
      return;
    }
    current?.expected.push(l);
  });
  return out;
}

/** The normalisation of the file comment. */
export function normalise(text: string, scratch: string): string[] {
  return text
    .split(scratch)
    .join('.')
    .replace(/\b\d+(\.\d+)? s\b/g, '<time>')
    .replace(/\b\d+ runs\/s\b/g, '<time>')
    .replace(/"(elapsedMs|runsPerSec)": [\d.]+/g, '"$1": <time>')
    .replace(/\brun [A-Za-z0-9_-]{12}:/g, 'run <run-id>:')
    .replace(/(runs\/(?:[\w-]+\/)*)[A-Za-z0-9_-]{12}(\.(?:failure\.json|trace\.\w+))/g, '$1<run-id>$2')
    .split('\n')
    .map((l) => l.replace(/\s+$/, ''));
}

/** Whether `actual` matches `expected`, where an expected line "..." matches any run of lines. */
export function matches(expected: readonly string[], actual: readonly string[]): boolean {
  const go = (i: number, j: number): boolean => {
    if (i === expected.length) return j === actual.length;
    if (expected[i] === '...') {
      for (let k = j; k <= actual.length; k++) if (go(i + 1, k)) return true;
      return false;
    }
    return j < actual.length && expected[i] === actual[j] && go(i + 1, j + 1);
  };
  return go(0, 0);
}

const DOCS = ['README.md', ...fs.readdirSync(path.join(REPO, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
const SAMPLES = DOCS.flatMap((d) => samplesOf(d, fs.readFileSync(path.join(REPO, d), 'utf8')));

describe('the sample parser and matcher', () => {
  it('finds "$ npx apf" commands and the lines they print, and nothing else', () => {
    const md = ['text', '```', '$ npx apf run "a b.json" --seed 1', 'PASS x', '', '$ ls', 'y', '$ npx apf list', 'z', '```', '```', 'npx apf run x', '```', '- item', '  ```', '  $ npx apf schema', '  {', '  ```'].join('\n');
    expect(samplesOf('t.md', md)).toEqual([
      { doc: 't.md', line: 3, argv: ['run', 'a b.json', '--seed', '1'], command: 'npx apf run "a b.json" --seed 1', expected: ['PASS x', ''] },
      { doc: 't.md', line: 8, argv: ['list'], command: 'npx apf list', expected: ['z'] },
      { doc: 't.md', line: 16, argv: ['schema'], command: 'npx apf schema', expected: ['{'] },
    ]);
  });
  it('normalises timings, the scratch path and run ids only', () => {
    expect(normalise('PASS 40 runs (seed 3; 1.5 s, 27 runs/s)\n/tmp/x/runs/V1StGXR8_Z5j.failure.json  \ntoken 0x1000', '/tmp/x')).toEqual([
      'PASS 40 runs (seed 3; <time>, <time>)',
      './runs/<run-id>.failure.json',
      'token 0x1000',
    ]);
  });
  it('"..." stands for any run of lines, and nothing else is skipped', () => {
    expect(matches(['a', '...', 'd'], ['a', 'b', 'c', 'd'])).toBe(true);
    expect(matches(['a', '...', 'd'], ['a', 'd'])).toBe(true);
    expect(matches(['a', 'd'], ['a', 'b', 'd'])).toBe(false);
    expect(matches(['a', '...'], ['b'])).toBe(false);
  });
});

describe('command samples in README.md and docs/', () => {
  const scratch = tmpDir('apf-docs-');
  for (const d of ['scenarios', 'docs', 'test']) fs.symlinkSync(path.join(REPO, d), path.join(scratch, d));
  afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }));

  it('there are samples to run, in README.md and in docs/', () => {
    expect(SAMPLES.filter((s) => s.doc === 'README.md').length).toBeGreaterThan(0);
    expect(SAMPLES.filter((s) => s.doc.startsWith('docs/')).length).toBeGreaterThan(2);
  });

  it.each(SAMPLES.map((s) => [`${s.doc}:${s.line}: ${s.command}`, s] as const))('%s', (_name, s) => {
    let printed = '';
    runCli(s.argv, { out: (t) => (printed += t), err: (t) => (printed += t), cwd: scratch, env: { APF_RUNS_DIR: path.join(scratch, 'runs') } });
    const actual = normalise(printed.replace(/\n$/, ''), scratch);
    const expected = normalise(s.expected.join('\n').replace(/\n+$/, ''), scratch);
    if (!matches(expected, actual)) {
      // Shown as a diff by Jest: the doc's lines against what the command printed.
      expect(actual.join('\n')).toBe(expected.join('\n'));
    }
    expect(matches(expected, actual)).toBe(true);
  });
});
