/**
 * The JSON Schema of the scenario format, generated from the zod schema (io: input, i.e. what a
 * file may contain). `apf schema` prints it; docs/scenario.schema.json is its checked-in copy and
 * a test fails when the two differ. Editors use it through a scenario's "$schema" key.
 */
import { z } from 'zod';
import { ScenarioSchema } from './schema';

export const SCENARIO_SCHEMA_ID = 'https://github.com/kvm-apf-harness/kvm-apf-harness/docs/scenario.schema.json';

export function scenarioJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(ScenarioSchema, { io: 'input', target: 'draft-2020-12', unrepresentable: 'any' }) as Record<string, unknown>;
  return { ...schema, $id: SCENARIO_SCHEMA_ID, title: 'kvm-apf-harness scenario' };
}

/** The schema as the text of docs/scenario.schema.json. */
export function scenarioJsonSchemaText(): string {
  return JSON.stringify(scenarioJsonSchema(), null, 2) + '\n';
}
