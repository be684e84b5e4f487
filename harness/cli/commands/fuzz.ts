/** `apf fuzz`: seeded interleaving exploration (issue 7). Not built yet: says so, exit 2. */
import { flag, helpText, parse, type OptionSpecs } from '../args';
import type { CliIo } from '../io';

const OPTIONS: OptionSpecs = {
  runs: { type: 'string', value: 'N', help: 'number of random scenarios to run' },
  seed: { type: 'string', value: 'S', help: 'campaign seed' },
  jobs: { type: 'string', value: 'J', help: 'worker threads (default: number of cores)' },
  guest: { type: 'string', value: 'PROFILE', help: 'guest profile' },
  host: { type: 'string', value: 'PROFILE', help: 'host profile' },
  toggle: { type: 'string', multiple: true, value: 'NAME=on|off', help: 'toggle (repeatable)' },
  help: { type: 'boolean', short: 'h', help: 'show this help' },
};

export const FUZZ_HELP = helpText(
  'apf fuzz --runs N --seed S [--jobs J] [--guest P] [--host P] [--toggle NAME=on|off ...]',
  ['Not implemented yet (issue 7): seeded fuzzing of workloads, host behaviour, injected events and', 'interleavings, with shrinking and a replay line for every failure.'],
  OPTIONS,
);

export function fuzzCommand(argv: readonly string[], io: CliIo): number {
  const p = parse('fuzz', argv, OPTIONS, 0);
  if (flag(p, 'help')) {
    io.out(FUZZ_HELP);
    return 0;
  }
  io.err('apf fuzz: not implemented yet (issue 7 builds it); use apf run or apf compare meanwhile\n');
  return 2;
}
