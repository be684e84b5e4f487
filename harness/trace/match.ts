/**
 * Matching trace records against scenario patterns (`Match`): event name, optional cpu and
 * source, and per-field matches. Numbers compare with bigints by value ("0x1001" in a scenario
 * matches a token field 4097 and an MSR field 4097n). A capture (`"$t"`) binds on its first use
 * and must be equal afterwards; captures live in the `Bindings` the caller passes.
 */
import type { TraceRecordHead } from '../../shared-abi/trace-catalogue';
import { hex } from '../../shared-abi/addr';
import { fieldOf } from './consumer';
import type { FieldMatch, Match } from '../scenario/types';

export type Bindings = Map<string, unknown>;

function toBig(v: unknown): bigint | undefined {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number' && Number.isSafeInteger(v)) return BigInt(v);
  return undefined;
}

/** Value equality across number/bigint; strings and booleans strictly. */
export function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  const x = toBig(a);
  const y = toBig(b);
  return x !== undefined && y !== undefined && x === y;
}

function asNumber(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  return undefined;
}

/** Whether one field matches; `bind` receives new captures (only when the whole record matches are they kept). */
export function fieldMatches(m: FieldMatch, got: unknown, bindings: Bindings | undefined, fresh: Map<string, unknown>): boolean {
  switch (m.kind) {
    case 'eq':
      // A hex-looking string also matches a string field that holds exactly that text.
      return sameValue(m.value, got) || (m.text !== undefined && got === m.text);
    case 'not':
      return got !== undefined && !sameValue(m.value, got) && !(m.text !== undefined && got === m.text);
    case 'range': {
      const n = asNumber(got);
      if (n === undefined) return false;
      return (m.min === undefined || n >= m.min) && (m.max === undefined || n <= m.max);
    }
    case 'capture': {
      if (got === undefined) return false;
      if (bindings?.has(m.name) === true) return sameValue(bindings.get(m.name), got);
      if (fresh.has(m.name)) return sameValue(fresh.get(m.name), got);
      fresh.set(m.name, got);
      return true;
    }
  }
}

/** Whether `rec` matches `m`. With `bindings`, captures are checked and, on a match, recorded. */
export function matches(m: Match, rec: TraceRecordHead, bindings?: Bindings): boolean {
  if (rec.event !== m.event) return false;
  if (m.cpu !== undefined && rec.cpu !== m.cpu) return false;
  if (m.src !== undefined && rec.src !== m.src) return false;
  const fresh = new Map<string, unknown>();
  for (const k in m.fields) {
    const f = m.fields[k];
    if (f !== undefined && !fieldMatches(f, fieldOf(rec, k), bindings, fresh)) return false;
  }
  if (bindings !== undefined) for (const [k, v] of fresh) bindings.set(k, v);
  return true;
}

/** One line describing a pattern, e.g. `kvm_async_pf_ready{cpu=0, token=$t, notified=true}`. */
export function describeMatch(m: Match): string {
  const parts: string[] = [];
  if (m.cpu !== undefined) parts.push(`cpu=${m.cpu}`);
  if (m.src !== undefined) parts.push(`src=${m.src}`);
  for (const k in m.fields) {
    const f = m.fields[k];
    if (f === undefined) continue;
    switch (f.kind) {
      case 'eq':
        parts.push(`${k}=${show(f.value)}`);
        break;
      case 'not':
        parts.push(`${k}!=${show(f.value)}`);
        break;
      case 'range':
        parts.push(`${k} in [${f.min ?? '-inf'}, ${f.max ?? 'inf'}]`);
        break;
      case 'capture':
        parts.push(`${k}=$${f.name}`);
        break;
    }
  }
  return parts.length === 0 ? m.event : `${m.event}{${parts.join(', ')}}`;
}

function show(v: unknown): string {
  if (typeof v === 'number' && v > 255) return hex(v);
  if (typeof v === 'bigint') return hex(v);
  if (typeof v === 'string') return JSON.stringify(v);
  return String(v);
}
