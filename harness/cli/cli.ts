/**
 * The `apf` command line: dispatch to a command, turn every input problem into a one-line
 * message and exit status 2, and never show a stack trace for a mistake of the user's.
 *
 *   apf run [FILE]      run a scenario (default: scenarios/default.json)
 *   apf list            scenarios, profiles, toggles, checkers
 *   apf compare FILE    one scenario over guest × host profiles
 *   apf diff A B        two traces (or one scenario under two settings) aligned per vCPU
 *   apf fuzz            seeded search for failing interleavings, with shrinking and replay
 *   apf schema          JSON Schema of scenario files
 *   apf check           guest handlers against every applicable scenario and a fuzz campaign
 */
import type { MachineFactory } from '../machine-api';
import { ScenarioError } from '../scenario/load';
import { UsageError } from '../scenario/overrides';
import { closest, ownEntry } from '../util/names';
import { runCommand } from './commands/run';
import { processIo, type CliIo } from './io';

/** Replaceable parts, for tests. */
export interface CliDeps {
  readonly machine?: MachineFactory;
  /**
   * Worker threads a command starts when its --jobs is not given (`apf fuzz`, `apf fuzz merge`,
   * `apf check`, suite runs); default the machine's cores. A test running many commands in one
   * process sets 0 (this thread): the results are the same whatever the number of workers.
   */
  readonly jobs?: number;
}

type Command = (argv: readonly string[], io: CliIo, deps: CliDeps) => number;

const COMMANDS: Readonly<Record<string, { run: Command; about: string }>> = {
  run: { run: runCommand, about: 'run a scenario and print its timeline, summary and verdict (default: scenarios/default.json); DIR or several files: a suite' },
  // Every command but run loads on first use: `apf run` is the one whose start-up counts.
  list: { run: (a, io) => (require('./commands/list') as typeof import('./commands/list')).listCommand(a, io), about: 'list scenarios, profiles, toggles, checkers (--json)' },
  compare: { run: (a, io, d) => (require('./commands/compare') as typeof import('./commands/compare')).compareCommand(a, io, d), about: 'run one scenario over guest × host profiles and print a table of outcomes' },
  diff: { run: (a, io, d) => (require('./commands/diff') as typeof import('./commands/diff')).diffCommand(a, io, d), about: 'align two traces per vCPU (two jsonl files, or one scenario under two settings) and show the first divergence' },
  fuzz: { run: (a, io, d) => (require('./commands/fuzz') as typeof import('./commands/fuzz')).fuzzCommand(a, io, d), about: 'seeded search for failing interleavings: random scenarios on worker threads, shrunk failures with replay lines' },
  schema: { run: (a, io) => (require('./commands/schema') as typeof import('./commands/schema')).schemaCommand(a, io), about: 'print the JSON Schema of scenario files' },
  check: { run: (a, io, d) => (require('./commands/check') as typeof import('./commands/check')).checkCommand(a, io, d), about: 'check guest handlers (--handlers FILE): every applicable scenario plus a fuzz campaign, one verdict table' },
};

export const MAIN_HELP =
  [
    'usage: apf <command> [options]',
    '',
    'kvm-apf-harness: a simulated guest kernel on a simulated KVM, exercising the x86 paravirtual',
    'async page fault ABI. Describe a situation in a scenario file, run it, read each vCPU\'s timeline.',
    '',
    'commands:',
    ...Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(9)} ${c.about}`),
    '',
    'apf <command> --help shows the options of a command. Exit status: 0 expectations hold,',
    '1 they do not (or a checker fired, or the harness itself failed: --debug shows its stack trace),',
    '2 bad input. Docs: docs/cli.md, docs/scenario-format.md.',
  ].join('\n') + '\n';

/** Runs the CLI with `argv` (without node and script). Returns the exit status. */
export function runCli(argv0: readonly string[], io: CliIo = processIo(), deps: CliDeps = {}): number {
  // --debug (anywhere): a harness bug propagates with its stack trace instead of one line.
  const debug = argv0.includes('--debug');
  const argv = debug ? argv0.filter((a) => a !== '--debug') : argv0;
  const [cmd, ...rest] = argv;
  if (cmd === undefined) {
    io.err(MAIN_HELP);
    return 2;
  }
  if (cmd === '--help' || cmd === '-h' || cmd === 'help') {
    const sub = rest[0];
    if (cmd === 'help' && sub !== undefined && ownEntry(COMMANDS, sub) !== undefined) return runCli([sub, '--help'], io, deps);
    io.out(MAIN_HELP);
    return 0;
  }
  const command = ownEntry(COMMANDS, cmd);
  if (command === undefined) {
    const h = closest(cmd, Object.keys(COMMANDS));
    io.err(`apf: unknown command "${cmd}"${h === undefined ? '' : ` (did you mean "${h}"?)`}; commands: ${Object.keys(COMMANDS).join(', ')}\n`);
    return 2;
  }
  try {
    return command.run(rest, io, deps);
  } catch (e) {
    if (e instanceof ScenarioError && rest.includes('--all-errors')) {
      io.err(e.allLines().join('\n') + '\n');
      return 2;
    }
    if (e instanceof ScenarioError || e instanceof UsageError) {
      io.err(e.message + '\n');
      return 2;
    }
    if (debug) throw e;
    // Not the user's mistake: a bug in the harness. One line; --debug shows where.
    const msg = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    io.err(`apf ${cmd}: internal error (a bug in the harness, please report it): ${msg.split('\n')[0] ?? msg}; rerun with --debug for the stack trace\n`);
    return 1;
  }
}
