/**
 * Every command line in README.md and docs/*.md is run, and its printed output compared when the
 * doc shows it.
 *
 * A command line is a line of a fenced code block that starts with `npx apf `, `npm run apf -- `,
 * `npm start`, `apf COMMAND` (or another `npm ` command), optionally after `$ `. A line ending in
 * `\` continues on the next. Two kinds:
 *   - a sample: `$ ` + command; the lines after it, up to the next `$ ` line or the end of the
 *     block, are what it prints (stdout, then stderr), compared as below;
 *   - a bare command (no `$ `): nothing is compared, but it must exit 0 or 1 (never 2, bad input)
 *     and print no stack trace.
 * Any doc gets covered by writing its commands that way: this file finds them by itself. Commands
 * run in-process (the CLI entry function), in doc order, from a scratch directory that sees the
 * repository's scenarios/, docs/ and test/ (its bad scenario files), with APF_RUNS_DIR inside it,
 * so files the commands write stay out of the checkout. `npm start` is `apf run`, `npm run apf --`
 * is `apf`; `> FILE` sends stdout to a file in the scratch directory and `*` in a word expands to
 * the matching files, as the shell would. A command without --jobs runs its fuzz campaign or suite
 * in this thread (the CLI's `jobs` dependency; results do not depend on the number of workers,
 * test/fuzz/campaign.test.ts); one with --jobs starts its workers as written. A bare command that an earlier one repeats word for word
 * is not run again (its earlier exit status stands). A command line fails the test when it does not parse
 * (an open quote, a placeholder like `[--json]` or `DIR`) or names an input file that does not exist
 * when it runs (files earlier commands wrote count).
 *
 * Exceptions are visible in the doc: a line ending in `# not run: REASON` is not run (for commands
 * that are not the harness's, like `npm install`); the test lists them, and a non-apf command
 * without that mark fails.
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
import { REPO, tmpDir } from '../harness/cli-helpers';
import { native } from '../support/native';

// The CLI entry function, loaded outside Jest's sandbox (test/support/native.ts): the doc's fuzz
// campaigns and suite runs are simulation-bound.
const { runCli } = native<typeof import('../../harness/cli/cli')>('harness/cli/cli');

export interface Sample {
  readonly doc: string;
  readonly line: number;
  readonly argv: string[];
  readonly command: string;
  /** What the doc shows it prints; undefined for a bare command (exit 0 or 1 is all it must do). */
  readonly expected: string[] | undefined;
  /** The reason given by a `# not run: REASON` mark. */
  readonly notRun?: string;
  /** Why the line cannot be run as written (a parse error, a placeholder, a non-apf command). */
  readonly problem?: string;
  /** `> FILE`: where stdout goes. */
  readonly stdoutTo?: string;
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
  if (q !== null) throw new Error(`unterminated ${q} quote`);
  if (has || cur !== '') words.push(cur);
  return words;
}

/** A line that is a command: `npx apf`, `npm run apf --`, `npm start`, `apf COMMAND`, other `npm`. */
const COMMAND = /^(?:npx apf(?:\s|$)|npm\s|apf [a-z][\w-]*(?:\s|$))/;

/** Splits off a trailing `# comment` (outside quotes). */
function splitComment(line: string): { cmd: string; comment: string | undefined } {
  let q: string | null = null;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (q !== null) {
      if (c === q) q = null;
    } else if (c === '"' || c === "'") q = c;
    else if (c === '#' && (i === 0 || /\s/.test(line[i - 1] ?? ''))) return { cmd: line.slice(0, i).trimEnd(), comment: line.slice(i + 1).trim() };
  }
  return { cmd: line.trimEnd(), comment: undefined };
}

/** Turns one command line into what the test runs. */
function parseCommand(doc: string, line: number, text: string, expected: string[] | undefined): Sample {
  const { cmd, comment } = splitComment(text);
  const base = { doc, line, command: cmd, expected };
  const notRun = comment !== undefined && comment.startsWith('not run:') ? comment.slice('not run:'.length).trim() : undefined;
  if (notRun !== undefined) return { ...base, argv: [], notRun: notRun === '' ? '(no reason given)' : notRun, ...(notRun === '' ? { problem: '"# not run:" needs a reason' } : {}) };
  let words: string[];
  try {
    words = shellWords(cmd);
  } catch (e) {
    return { ...base, argv: [], problem: (e as Error).message };
  }
  let stdoutTo: string | undefined;
  const gt = words.indexOf('>');
  if (gt >= 0) {
    stdoutTo = words[gt + 1];
    if (stdoutTo === undefined || gt + 2 !== words.length) return { ...base, argv: [], problem: '"> FILE" must end the command' };
    words = words.slice(0, gt);
  }
  let argv: string[];
  if (words[0] === 'npx' && words[1] === 'apf') argv = words.slice(2);
  else if (words[0] === 'apf') argv = words.slice(1);
  else if (words[0] === 'npm' && words[1] === 'start') argv = ['run', ...words.slice(2)];
  else if (words[0] === 'npm' && words[1] === 'run' && words[2] === 'apf' && words[3] === '--') argv = words.slice(4);
  else return { ...base, argv: [], problem: 'not an apf command: mark it "# not run: REASON" or make it one' };
  if (argv.some((w) => /[[\]<>|;&]/.test(w) || /^[A-Z][A-Z_]*$/.test(w))) return { ...base, argv, problem: `a placeholder or shell syntax in ${JSON.stringify(cmd)}` };
  return { ...base, argv, ...(stdoutTo !== undefined ? { stdoutTo } : {}) };
}

/** The command lines of one markdown text. */
export function samplesOf(doc: string, text: string): Sample[] {
  const out: Sample[] = [];
  const lines = text.split('\n');
  let inBlock = false;
  let current: { line: number; command: string; expected: string[] } | undefined;
  const flush = (): void => {
    if (current === undefined) return;
    out.push(parseCommand(doc, current.line, current.command, current.expected));
    current = undefined;
  };
  let indent = '';
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i] ?? '';
    const fence = /^(\s*)```/.exec(raw);
    if (fence !== null) {
      if (inBlock) flush();
      inBlock = !inBlock;
      indent = fence[1] ?? '';
      continue;
    }
    if (!inBlock) continue;
    // A block inside a list item is indented like its fence.
    const l = raw.startsWith(indent) ? raw.slice(indent.length) : raw;
    const dollar = l.startsWith('$ ');
    const body = dollar ? l.slice(2) : l;
    if (dollar || (current === undefined && COMMAND.test(body))) {
      flush();
      if (!COMMAND.test(body)) continue;
      const first = i + 1;
      let cmd = body;
      while (/\\\s*$/.test(splitComment(cmd).cmd) && i + 1 < lines.length) {
        cmd = splitComment(cmd).cmd.replace(/\\\s*$/, ' ') + (lines[++i] ?? '').trim();
      }
      if (dollar) current = { line: first, command: cmd, expected: [] };
      else out.push(parseCommand(doc, first, cmd, undefined));
      continue;
    }
    current?.expected.push(l);
  }
  return out;
}

/** Input files a command names: words (or comma-separated parts) that look like files, except outputs. */
const OUTPUT_OPTIONS = new Set(['--trace', '--report', '--junit', '--out', '--save']);
export function inputFiles(argv: readonly string[]): string[] {
  const files: string[] = [];
  argv.forEach((w, i) => {
    if (w.startsWith('-') || OUTPUT_OPTIONS.has(argv[i - 1] ?? '')) return;
    for (const part of w.split(',')) if (/\.(json|jsonl|ts|js)$/.test(part) || part.endsWith('/')) files.push(part);
  });
  return files;
}

/** Expands `*` in the last part of a word against the files in `cwd`, sorted, as a shell would. */
function expandGlobs(argv: readonly string[], cwd: string): string[] {
  return argv.flatMap((w) => {
    if (!w.includes('*')) return [w];
    const dir = path.dirname(w);
    const re = new RegExp(`^${path.basename(w).split('*').map((x) => x.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
    const hits = fs.existsSync(path.join(cwd, dir)) ? fs.readdirSync(path.join(cwd, dir)).filter((f) => re.test(f)).sort() : [];
    return hits.length > 0 ? hits.map((f) => `${dir}/${f}`) : [w];
  });
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
  it('finds "$ npx apf" samples with the lines they print, bare command lines, and nothing else', () => {
    const md = ['text', 'npx apf run outside.json', '```', '$ npx apf run "a b.json" --seed 1', 'PASS x', '', '$ ls', 'y', '$ npx apf list', 'z', '```', '```', 'npx apf run x', 'apf run: not a command', 'npm start   # the default', '```', '- item', '  ```', '  $ npx apf schema', '  {', '  ```'].join('\n');
    expect(samplesOf('t.md', md)).toEqual([
      { doc: 't.md', line: 4, argv: ['run', 'a b.json', '--seed', '1'], command: 'npx apf run "a b.json" --seed 1', expected: ['PASS x', ''] },
      { doc: 't.md', line: 9, argv: ['list'], command: 'npx apf list', expected: ['z'] },
      { doc: 't.md', line: 13, argv: ['run', 'x'], command: 'npx apf run x', expected: undefined },
      { doc: 't.md', line: 15, argv: ['run'], command: 'npm start', expected: undefined },
      { doc: 't.md', line: 19, argv: ['schema'], command: 'npx apf schema', expected: ['{'] },
    ]);
  });
  it('joins continued lines, maps npm scripts and apf, takes "> FILE", and lists "# not run:" lines', () => {
    const md = ['```', 'apf compare a.json \\', '  --host x,y   # why', 'npm run apf -- fuzz --json > f.json', 'npm install   # not run: installs packages', '```'].join('\n');
    expect(samplesOf('t.md', md)).toEqual([
      { doc: 't.md', line: 2, argv: ['compare', 'a.json', '--host', 'x,y'], command: 'apf compare a.json  --host x,y', expected: undefined },
      { doc: 't.md', line: 4, argv: ['fuzz', '--json'], command: 'npm run apf -- fuzz --json > f.json', expected: undefined, stdoutTo: 'f.json' },
      { doc: 't.md', line: 5, argv: [], command: 'npm install', expected: undefined, notRun: 'installs packages' },
    ]);
  });
  it('flags malformed command lines: open quotes, placeholders, non-apf commands, unmarked exceptions', () => {
    const md = ['```', 'npx apf run "a.json', 'apf fuzz merge a.json [--json]', 'apf run --out DIR', 'npm install', 'npm test  # not run:', '```'].join('\n');
    expect(samplesOf('t.md', md).map((s) => s.problem)).toEqual([
      'unterminated " quote',
      'a placeholder or shell syntax in "apf fuzz merge a.json [--json]"',
      'a placeholder or shell syntax in "apf run --out DIR"',
      'not an apf command: mark it "# not run: REASON" or make it one',
      '"# not run:" needs a reason',
    ]);
  });
  it('knows which words name input files (checked to exist before the run)', () => {
    expect(inputFiles(['run', 'scenarios/', 'a.json', '--trace', 'out.jsonl', '--handlers', 'stock,test/h.ts', '--shard', '2/4', '--report', 'r.html'])).toEqual(['scenarios/', 'a.json', 'test/h.ts']);
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

describe('command lines in README.md and docs/', () => {
  const scratch = tmpDir('apf-docs-');
  for (const d of ['scenarios', 'docs', 'test']) fs.symlinkSync(path.join(REPO, d), path.join(scratch, d));
  afterAll(() => fs.rmSync(scratch, { recursive: true, force: true }));
  /** Exit codes of the bare commands run so far, by argv. */
  const bareRuns = new Map<string, number>();

  it('there are samples to run, in README.md and in docs/, and the exceptions are few and listed', () => {
    expect(SAMPLES.filter((s) => s.doc === 'README.md' && s.expected !== undefined).length).toBeGreaterThan(0);
    expect(SAMPLES.filter((s) => s.doc.startsWith('docs/') && s.expected !== undefined).length).toBeGreaterThan(2);
    const notRun = SAMPLES.filter((s) => s.notRun !== undefined);
    // The visible list of doc commands that are not run, with their reasons.
    console.log(`${SAMPLES.length - notRun.length} of ${SAMPLES.length} doc command lines run; not run:\n${notRun.map((s) => `  ${s.doc}:${s.line}: ${s.command}  (${s.notRun})`).join('\n')}`);
    expect(notRun.length).toBeLessThanOrEqual(6);
  });

  it.each(SAMPLES.filter((s) => s.notRun === undefined || s.problem !== undefined).map((s) => [`${s.doc}:${s.line}: ${s.command}`, s] as const))('%s', (_name, s) => {
    expect(s.problem).toBeUndefined();
    const argv = expandGlobs(s.argv, scratch);
    expect(inputFiles(argv).filter((f) => !fs.existsSync(path.resolve(scratch, f)))).toEqual([]);
    // A bare command already run word for word (docs repeat the common campaigns) is not run twice.
    const key = JSON.stringify([argv, s.stdoutTo]);
    const earlier = s.expected === undefined ? bareRuns.get(key) : undefined;
    if (earlier !== undefined) {
      expect([0, 1]).toContain(earlier);
      return;
    }
    let printed = '';
    let stdout = '';
    const code = runCli(argv, {
      out: (t) => (s.stdoutTo !== undefined ? (stdout += t) : (printed += t)),
      err: (t) => (printed += t),
      cwd: scratch,
      env: { APF_RUNS_DIR: path.join(scratch, 'runs') },
    }, { jobs: 0 });
    if (s.stdoutTo !== undefined) fs.writeFileSync(path.join(scratch, s.stdoutTo), stdout);
    if (s.expected === undefined) bareRuns.set(key, code);
    expect(printed).not.toMatch(/\n\s+at .+:\d+:\d+\)?\n/);
    if (s.expected === undefined) {
      // A bare command: it must run (0 pass, 1 expectations failed), not be refused as bad input.
      if (code !== 0 && code !== 1) expect(printed).toBe(`(exit ${code})`);
      expect([0, 1]).toContain(code);
      return;
    }
    const actual = normalise(printed.replace(/\n$/, ''), scratch);
    const expected = normalise(s.expected.join('\n').replace(/\n+$/, ''), scratch);
    if (!matches(expected, actual)) {
      // Shown as a diff by Jest: the doc's lines against what the command printed.
      expect(actual.join('\n')).toBe(expected.join('\n'));
    }
    expect(matches(expected, actual)).toBe(true);
  });
});
