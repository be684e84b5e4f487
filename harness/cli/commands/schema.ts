/** `apf schema`: print the JSON Schema of scenario files (the source of docs/scenario.schema.json). */
import { scenarioJsonSchemaText } from '../../scenario/json-schema';
import { flag, helpText, parse, type OptionSpecs } from '../args';
import type { CliIo } from '../io';

const OPTIONS: OptionSpecs = { help: { type: 'boolean', short: 'h', help: 'show this help' } };

export const SCHEMA_HELP = helpText('apf schema', ['Prints the JSON Schema of scenario files (docs/scenario.schema.json is this output).'], OPTIONS);

export function schemaCommand(argv: readonly string[], io: CliIo): number {
  const p = parse('schema', argv, OPTIONS, 0);
  if (flag(p, 'help')) {
    io.out(SCHEMA_HELP);
    return 0;
  }
  io.out(scenarioJsonSchemaText());
  return 0;
}
