/**
 * Command-line parsing for the `apf` commands, on node:util's parseArgs, with messages in the
 * project's style ("apf run: unknown option --sed (did you mean --seed?)") and typed values.
 */
import { parseArgs } from 'node:util';
import { UsageError } from '../scenario/overrides';
import { closest, ownEntry } from '../util/names';
import { parseTime } from '../util/units';

export interface OptionSpec {
  readonly type: 'string' | 'boolean';
  readonly multiple?: boolean;
  readonly short?: string;
  /** Placeholder for the value in help, e.g. "N". */
  readonly value?: string;
  readonly help: string;
}

export type OptionSpecs = Readonly<Record<string, OptionSpec>>;

export interface Parsed {
  readonly values: Readonly<Record<string, string | boolean | string[] | undefined>>;
  readonly positionals: readonly string[];
}

/** Parses `argv` for command `cmd`; unknown options and missing values are UsageErrors. */
export function parse(cmd: string, argv: readonly string[], specs: OptionSpecs, maxPositionals: number): Parsed {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean; short?: string }> = {};
  for (const [name, s] of Object.entries(specs)) {
    options[name] = { type: s.type, ...(s.multiple === true ? { multiple: true } : {}), ...(s.short === undefined ? {} : { short: s.short }) };
  }
  let res: ReturnType<typeof parseArgs>;
  try {
    res = parseArgs({ args: joinNegativeValues(argv, specs), options, allowPositionals: true, strict: true });
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    const code = (e as { code?: string }).code;
    const opt = /'(-{1,2}[^' ]+)/.exec(msg)?.[1];
    if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' && opt !== undefined) {
      const h = closest(opt.replace(/^-+/, '').replace(/=.*$/, ''), Object.keys(specs));
      throw new UsageError(`apf ${cmd}: unknown option ${opt}${h === undefined ? '' : ` (did you mean --${h}?)`}; see apf ${cmd} --help`);
    }
    if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' && opt !== undefined) {
      const name = opt.replace(/^-+/, '');
      const spec = ownEntry(specs, name);
      throw new UsageError(spec?.type === 'boolean' ? `apf ${cmd}: ${opt} takes no value` : `apf ${cmd}: ${opt} needs a value (${opt} ${spec?.value ?? 'VALUE'})`);
    }
    throw new UsageError(`apf ${cmd}: ${msg}`);
  }
  if (res.positionals.length > maxPositionals) {
    const extra = res.positionals[maxPositionals] ?? '';
    throw new UsageError(`apf ${cmd}: unexpected argument "${extra}"${maxPositionals === 0 ? ' (this command takes no file)' : ''}; see apf ${cmd} --help`);
  }
  return { values: res.values as Parsed['values'], positionals: res.positionals };
}

/**
 * `--seed -1` as `--seed=-1`: node's parser takes any word starting with "-" for an option, so a
 * negative number after an option that needs a value would be reported as a missing value
 * instead of reaching the option's own check.
 */
function joinNegativeValues(argv: readonly string[], specs: OptionSpecs): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    const next = argv[i + 1];
    const m = /^--([^=]+)$/.exec(a);
    const spec = m === null ? undefined : ownEntry(specs, m[1] ?? '');
    if (spec?.type === 'string' && next !== undefined && /^-[\d.]/.test(next)) {
      out.push(`${a}=${next}`);
      i++;
    } else out.push(a);
  }
  return out;
}

export function str(p: Parsed, name: string): string | undefined {
  const v = p.values[name];
  return typeof v === 'string' ? v : undefined;
}

export function flag(p: Parsed, name: string): boolean {
  return p.values[name] === true;
}

export function list(p: Parsed, name: string): string[] {
  const v = p.values[name];
  return Array.isArray(v) ? v : typeof v === 'string' ? [v] : [];
}

/** A seed: a non-negative integer (decimal or 0x hex) or any other non-empty string. */
export function seedArg(cmd: string, p: Parsed): number | string | undefined {
  const v = str(p, 'seed');
  if (v === undefined) return undefined;
  if (v.trim() === '') throw new UsageError(`apf ${cmd}: --seed needs a value`);
  if (/^-\d/.test(v)) throw new UsageError(`apf ${cmd}: --seed ${v}: expected a non-negative integer (0 to 2^53-1) or a string seed`);
  if (/^\d+$/.test(v)) {
    const n = Number(v);
    if (!Number.isSafeInteger(n)) throw new UsageError(`apf ${cmd}: --seed ${v}: too large (use at most 2^53-1, or a string seed)`);
    return n;
  }
  return v;
}

export function positiveIntArg(cmd: string, p: Parsed, name: string): number | undefined {
  const v = str(p, name);
  if (v === undefined) return undefined;
  const n = Number(v.replace(/_/g, ''));
  if (!/^\d[\d_]*$/.test(v) || !Number.isSafeInteger(n) || n <= 0) throw new UsageError(`apf ${cmd}: --${name} ${v}: expected a positive whole number`);
  return n;
}

export function timeArg(cmd: string, p: Parsed, name: string): number | undefined {
  const v = str(p, name);
  if (v === undefined) return undefined;
  const t = parseTime(/^\d+$/.test(v) ? Number(v) : v);
  if (!t.ok || t.value <= 0) throw new UsageError(`apf ${cmd}: --${name} ${v}: expected a positive time like "10ms", "2s" or a number of ns`);
  return t.value;
}

/** `apf <cmd> --help` text from the option specs. */
export function helpText(usage: string, about: readonly string[], specs: OptionSpecs, extra: readonly string[] = []): string {
  const rows = Object.entries(specs).map(([name, s]) => {
    const left = `  ${s.short === undefined ? '    ' : `-${s.short}, `}--${name}${s.type === 'string' ? ` ${s.value ?? 'VALUE'}` : ''}`;
    return [left, s.help] as const;
  });
  const width = Math.max(...rows.map(([l]) => l.length)) + 2;
  return [`usage: ${usage}`, '', ...about, '', 'options:', ...rows.map(([l, h]) => l.padEnd(width) + h), ...(extra.length > 0 ? ['', ...extra] : [])].join('\n') + '\n';
}
