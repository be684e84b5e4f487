/**
 * Building blocks of the scenario schema: times, sizes, addresses, strict objects whose errors
 * list the allowed keys, name lists whose errors list the valid names. Each converts the file's
 * notation to the simulation's numbers.
 */
import { z } from 'zod';
import { gva as toGva, PAGE_SIZE, type Gva } from '../../shared-abi/addr';
import { parseHexBig, parseHexNumber, parseSize, parseTime } from '../util/units';
import { closest, oneOf } from '../util/names';

// ---------------------------------------------------------------------------------------------
// Scalars
// ---------------------------------------------------------------------------------------------

export const TIME_HELP = 'a number of nanoseconds or a string like "10us", "1.5ms", "2s"';

/** A virtual time or duration: integer ns, or "<n><unit>" (ns, us, ms, s). Output: integer ns. */
export const Time = z
  .union([z.number(), z.string()], { error: `expected a time: ${TIME_HELP}` })
  .transform((v, ctx) => {
    const p = parseTime(v);
    if (p.ok) return p.value;
    ctx.addIssue({ code: 'custom', message: `expected ${p.error}`, input: v });
    return z.NEVER;
  })
  .meta({ id: 'Time', description: `A virtual time or duration: ${TIME_HELP}.`, examples: ['10us', '1.5ms', 2000] });

/** Guest memory size: bytes, or "<n>KiB/MiB/GiB"; a positive multiple of 4 KiB. */
export const Size = z
  .union([z.number(), z.string()], { error: 'expected a size like "64MiB" or a number of bytes' })
  .transform((v, ctx) => {
    const p = parseSize(v);
    if (!p.ok) {
      ctx.addIssue({ code: 'custom', message: `expected ${p.error}`, input: v });
      return z.NEVER;
    }
    if (p.value % PAGE_SIZE !== 0) {
      ctx.addIssue({ code: 'custom', message: `expected a multiple of 4KiB (got ${p.value} bytes)`, input: v });
      return z.NEVER;
    }
    return p.value;
  })
  .meta({ description: 'A size in bytes, or a string like "64MiB" (K/KiB, M/MiB, G/GiB are powers of 1024).', examples: ['64MiB'] });

const GVA_HELP = 'expected a GVA like "0x7f0000001000"';

/** A guest-virtual address written as hex (canonical 64-bit form accepted). Output: `Gva`. */
export const GvaHex = z
  .string({
    error: (iss) =>
      typeof iss.input === 'number' && Number.isSafeInteger(iss.input) && iss.input >= 0
        ? `${GVA_HELP}: write addresses as hex strings (got the number ${iss.input}, i.e. "0x${iss.input.toString(16)}")`
        : GVA_HELP,
  })
  .transform((v, ctx): Gva => {
    const p = parseHexBig(v);
    if (!p.ok) {
      ctx.addIssue({ code: 'custom', message: `${GVA_HELP} (got "${v}")`, input: v });
      return z.NEVER;
    }
    try {
      return toGva(p.value);
    } catch {
      ctx.addIssue({ code: 'custom', message: `${GVA_HELP}: ${v} is not a canonical 48-bit virtual address`, input: v });
      return z.NEVER;
    }
  })
  .meta({ description: 'A guest-virtual address in hex, e.g. "0x7f0000001000" (kernel addresses in canonical form, "0xffff888000000000").' });

/** A page address: a GVA aligned to 4 KiB. */
export const PageGva = GvaHex.check((ctx) => {
  if (ctx.value % PAGE_SIZE !== 0) {
    ctx.issues.push({
      code: 'custom',
      message: `expected a page address (4KiB aligned); "0x${ctx.value.toString(16)}" is not (put the byte in "offset")`,
      input: ctx.value,
    });
  }
}).meta({ id: 'PageGva', description: 'A page-aligned guest-virtual address in hex, e.g. "0x7f0000001000".' });

/** A non-negative integer written as a number or hex string. */
export const HexOrInt = (what: string) =>
  z
    .union([z.number(), z.string()], { error: `expected ${what}: a number or a hex string like "0x1000"` })
    .transform((v, ctx) => {
      const p = parseHexNumber(v, true);
      if (p.ok) return p.value;
      ctx.addIssue({ code: 'custom', message: `expected ${what}: ${p.error}`, input: v });
      return z.NEVER;
    });

/** A 64-bit value (MSR data) as a hex string or a number. Output: bigint. */
export const U64 = z
  .union([z.number(), z.string()], { error: 'expected a 64-bit value: a hex string like "0x1" or a number' })
  .transform((v, ctx) => {
    if (typeof v === 'number') {
      if (Number.isSafeInteger(v) && v >= 0) return BigInt(v);
    } else {
      const p = parseHexBig(v);
      if (p.ok && p.value < 1n << 64n) return p.value;
    }
    ctx.addIssue({ code: 'custom', message: `expected a 64-bit value: a hex string like "0x4b564d02" or a non-negative integer (got ${JSON.stringify(v)})`, input: v });
    return z.NEVER;
  });

export const int = (what: string, min: number, max: number) =>
  z
    .number({ error: `expected ${what}: an integer from ${min} to ${max}` })
    .int({ error: `expected ${what}: an integer from ${min} to ${max}` })
    .min(min, { error: `expected ${what}: an integer from ${min} to ${max}` })
    .max(max, { error: `expected ${what}: an integer from ${min} to ${max}` });

export const U32 = z
  .union([z.number(), z.string()], { error: 'expected a 32-bit value: a number or a hex string' })
  .transform((v, ctx) => {
    const p = parseHexNumber(v, true);
    if (p.ok && p.value <= 0xffffffff) return p.value;
    ctx.addIssue({ code: 'custom', message: `expected a 32-bit value (0 to 0xffffffff), got ${JSON.stringify(v)}`, input: v });
    return z.NEVER;
  });

export const bool = (what: string) => z.boolean({ error: `expected ${what}: true or false` });

/** A strict object whose unknown keys are reported with the keys that are allowed. */
export function obj<T extends z.core.$ZodLooseShape>(shape: T, description?: string) {
  const keys = Object.keys(shape);
  const schema = z.strictObject(shape, {
    error: (iss) => {
      if (iss.code === 'unrecognized_keys') {
        const k = iss.keys[0] ?? '';
        const hint = closest(k, keys);
        const more = iss.keys.length > 1 ? ` (and ${iss.keys.slice(1).map((x) => `"${x}"`).join(', ')})` : '';
        return `unknown key "${k}"${more}${hint === undefined ? '' : ` (did you mean "${hint}"?)`}; allowed keys: ${keys.join(', ')}`;
      }
      if (iss.code === 'invalid_type') return `expected an object with keys ${keys.join(', ')}`;
      return undefined;
    },
  });
  return description === undefined ? schema : schema.meta({ description });
}

/** A string from a fixed list; the error lists the list. */
export function nameOf<const T extends string>(what: string, names: () => readonly T[]) {
  const list = names();
  return z.enum(list as unknown as readonly [T, ...T[]], {
    error: (iss) => {
      const got = typeof iss.input === 'string' ? `"${iss.input}"` : JSON.stringify(iss.input);
      const hint = typeof iss.input === 'string' ? closest(iss.input, list) : undefined;
      return `unknown ${what} ${got}${hint === undefined ? '' : ` (did you mean "${hint}"?)`}; valid: ${oneOf([...list])}`;
    },
  });
}

/** A string from a short fixed list; `message` says what is expected, and a near miss gets "did you mean". */
export function choice<const T extends readonly [string, ...string[]]>(values: T, message: string) {
  return z.enum(values, {
    error: (iss) => {
      const h = typeof iss.input === 'string' ? closest(iss.input, values) : undefined;
      return h === undefined ? message : `${message} (got "${String(iss.input)}"; did you mean "${h}"?)`;
    },
  });
}

/** `{toggle: bool}` for a list of toggle names with descriptions. */
export function toggles(what: string, info: () => readonly { name: string; description: string }[]) {
  const shape: Record<string, z.ZodOptional<z.ZodBoolean>> = {};
  for (const t of info()) shape[t.name] = z.boolean({ error: `expected true or false for ${what} toggle "${t.name}"` }).optional().meta({ description: t.description });
  const names = info().map((t) => t.name);
  return z.strictObject(shape, {
    error: (iss) => {
      if (iss.code === 'unrecognized_keys') {
        const k = iss.keys[0] ?? '';
        const hint = closest(k, names);
        return `unknown ${what} toggle "${k}"${hint === undefined ? '' : ` (did you mean "${hint}"?)`}; valid: ${oneOf(names)}`;
      }
      return `expected an object of ${what} toggles, e.g. {"${names[0] ?? 'name'}": false}`;
    },
  });
}


/** Formats a zod path relative to some point: ["uniform", "max"] -> "uniform.max", [0, "a"] -> "[0].a". */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else if (typeof p === 'string' && /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(p)) out += (out === '' ? '' : '.') + p;
    else out += `[${JSON.stringify(String(p))}]`;
  }
  return out;
}

/**
 * A union whose error, when every option fails, comes from the option the input's type matched
 * (so `{"uniform": {"max": "x"}}` reports `uniform.max: expected a time ...` rather than a generic
 * "expected a latency"); `fallback` when no option matched the type.
 */
export function union<const T extends readonly [z.core.SomeType, ...z.core.SomeType[]]>(options: T, fallback: string) {
  return z.union(options, {
    error: (iss) => {
      if (iss.code !== 'invalid_union') return fallback;
      for (const branch of iss.errors) {
        const first = branch[0];
        if (first === undefined) continue;
        if (first.code === 'invalid_type' && first.path.length === 0) continue;
        if (first.code === 'invalid_union' && first.path.length === 0 && 'errors' in first && Array.isArray(first.errors) && first.errors.length > 0) continue;
        const rel = formatPath(first.path);
        return rel === '' ? first.message : `${rel}: ${first.message}`;
      }
      return fallback;
    },
  });
}
