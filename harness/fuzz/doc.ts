/**
 * Scenario documents as the fuzzer builds them: plain JSON values in the scenario file notation
 * (docs/scenario-format.md), so that a generated case is exactly what gets written to a file and
 * replayed with `apf run FILE`. Validation goes through the same loader as a file
 * (`scenarioFromValue`), never around it.
 */
export type Json = string | number | boolean | null | readonly Json[] | { readonly [k: string]: Json };
export type JsonObject = { readonly [k: string]: Json };

/** A time in file notation: "150us" when it is a whole number of microseconds, else "1234ns". */
export function time(ns: number): string {
  const n = Math.max(0, Math.round(ns));
  return n % 1000 === 0 && n > 0 ? `${n / 1000}us` : `${n}ns`;
}

/** A number as "0x..." (addresses, tokens, MSR values). */
export { hex as hexStr } from '../../shared-abi/addr';

/** Drops keys whose value is undefined (the file format has no "absent" value). */
export function compact<T extends Record<string, Json | undefined>>(o: T): { [K in keyof T]: Exclude<T[K], undefined> } {
  const out: Record<string, Json> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out as { [K in keyof T]: Exclude<T[K], undefined> };
}

/** Stable, readable JSON for scenario files (two-space indent, trailing newline). */
export function formatDoc(doc: JsonObject): string {
  return JSON.stringify(doc, null, 2) + '\n';
}

/** Counts the nodes of a document (objects, arrays and scalars): the "size" shown for a shrunk case. */
export function docSize(v: Json): number {
  if (v === null || typeof v !== 'object') return 1;
  if (Array.isArray(v)) return 1 + (v as readonly Json[]).reduce<number>((a, x) => a + docSize(x), 0);
  return 1 + Object.values(v as JsonObject).reduce<number>((a, x) => a + docSize(x), 0);
}
