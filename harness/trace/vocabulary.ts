/**
 * The trace vocabulary, derived from the trace catalogue (shared-abi/trace-catalogue.ts): every
 * event name with its sources and field names. Scenario validation uses it to reject a typo in an
 * expectation ("kvm_async_pf_not_presnt" would otherwise match nothing, silently), and tests use
 * `recordProblems` to hold every record a run emits to the catalogue. docs/trace-events.md is
 * written from the same catalogue (harness/tools/trace-events-doc.ts).
 */
import {
  TRACE_EVENT_SPECS,
  fieldValueOk,
  isTraceEventName,
  specSources,
  type TraceEventName,
  type TraceEventSpec,
  type TraceSource,
} from '../../shared-abi/trace-catalogue';

export interface EventInfo {
  readonly event: TraceEventName;
  /** The first (usual) source; `sources` lists all. */
  readonly src: TraceSource;
  readonly sources: readonly TraceSource[];
  readonly fields: readonly string[];
  /** Any further field name is accepted (records whose fields depend on what they describe). */
  readonly open: boolean;
  readonly spec: TraceEventSpec;
}

function infoOf(event: TraceEventName, spec: TraceEventSpec): EventInfo {
  const sources = specSources(spec);
  return { event, src: sources[0]!, sources, fields: Object.keys(spec.fields), open: spec.open === true, spec };
}

/** Every event of the catalogue, in its order. */
export const TRACE_EVENTS: readonly EventInfo[] = (Object.keys(TRACE_EVENT_SPECS) as TraceEventName[]).map((e) => infoOf(e, TRACE_EVENT_SPECS[e]));

const BY_NAME = new Map<string, EventInfo>(TRACE_EVENTS.map((e) => [e.event, e]));

/** The catalogue entry of `event`, or undefined for a name the catalogue does not have. */
export function eventInfo(event: string): EventInfo | undefined {
  return isTraceEventName(event) ? BY_NAME.get(event) : undefined;
}

export function knownEventNames(): string[] {
  return [...BY_NAME.keys()];
}

/** Whether `field` may appear in (and be matched on) records of `info`. */
export function hasField(info: EventInfo, field: string): boolean {
  return info.open || info.fields.includes(field);
}

const RESERVED = new Set(['t', 'cpu', 'src', 'event']);

/**
 * What is wrong with a record as the catalogue sees it (empty: nothing): an unknown event, a
 * source the event does not come from, a field it does not have, a required field missing, a value
 * of the wrong type or outside the field's closed set.
 */
export function recordProblems(rec: { readonly event: string; readonly src: string; readonly [k: string]: unknown }): string[] {
  const info = eventInfo(rec.event);
  if (info === undefined) return [`unknown event ${rec.event}`];
  const out: string[] = [];
  if (!(info.sources as readonly string[]).includes(rec.src)) out.push(`${rec.event}: source ${rec.src}, expected ${info.sources.join(' or ')}`);
  for (const k of Object.keys(rec)) {
    if (RESERVED.has(k)) continue;
    const f = info.spec.fields[k];
    if (f === undefined) {
      if (!info.open) out.push(`${rec.event}.${k}: not a field of the event`);
    } else if (!fieldValueOk(f, rec[k])) {
      out.push(`${rec.event}.${k}: ${typeof rec[k]} ${String(rec[k])} is not a ${f.values === undefined ? f.kind : f.values.join('|')}`);
    }
  }
  for (const [k, f] of Object.entries(info.spec.fields)) if (f.optional !== true && !(k in rec)) out.push(`${rec.event}.${k}: missing`);
  return out;
}
