/**
 * The one way to read the trace: a `TraceConsumer` declares the events it acts on and receives
 * records of those events only, typed by the trace catalogue (`TraceRecordOf<E>`: a switch on
 * `rec.event` narrows the fields, and naming an event the consumer did not declare is a compile
 * error). Checkers, the fuzz observers, the run summary, the timeline and the scenario
 * expectations are all consumers; a `TraceRouter` hands each record to the consumers that declared
 * its event.
 */
import { TRACE_EVENT_SPECS, type TraceRecordHead } from '../../shared-abi/trace-catalogue';
import type { AnyTraceRecord, TraceEventName, TraceRecord, TraceRecordOf } from '../../sim/trace';

export type { AnyTraceRecord, TraceEventName, TraceRecordOf } from '../../sim/trace';

/** Reads records of the events it declares. */
export interface TraceConsumer<E extends TraceEventName = TraceEventName> {
  /** The events `onRecord` acts on. Records of other events are not delivered to it. */
  readonly events: ReadonlySet<E>;
  onRecord(rec: TraceRecordOf<E>): void;
}

/** Every event of the catalogue: the `events` of a consumer that looks at all records (the run summary counts them). */
export const ALL_TRACE_EVENTS: ReadonlySet<TraceEventName> = new Set(Object.keys(TRACE_EVENT_SPECS) as TraceEventName[]);

/**
 * The value of field `name` of a record, for code that reads fields named at run time (scenario
 * patterns, trace writers); code that knows the event reads the typed property instead.
 */
export function fieldOf(rec: TraceRecordHead, name: string): unknown {
  return (rec as unknown as Readonly<Record<string, unknown>>)[name];
}

/** The event names of an `events` set (`EventsIn<typeof MY_EVENTS>`). */
export type EventsIn<S> = S extends ReadonlySet<infer E> ? E : never;

/** The union of event-name groups, as a consumer's `events`. */
export function eventSet<const E extends TraceEventName>(...groups: ReadonlyArray<Iterable<E>>): ReadonlySet<E> {
  const out = new Set<E>();
  for (const g of groups) for (const e of g) out.add(e);
  return out;
}

/**
 * A bus record read as the catalogue's typed record. Sound because `TraceBus.emit` only accepts
 * what the catalogue declares (and the scenario tests hold every emitted record to it at run time).
 */
export function typedRecord(rec: TraceRecord): AnyTraceRecord {
  return rec as unknown as AnyTraceRecord;
}

/** A consumer from its events and a function (small consumers: tests, CLI). */
export function consumer<const E extends TraceEventName>(events: readonly E[], onRecord: (rec: TraceRecordOf<E>) => void): TraceConsumer<E> {
  return { events: new Set(events), onRecord };
}

/**
 * Hands each record to the consumers whose `events` name it, in the order they were added. The
 * routes per event name are built on first sight. With `routing` false every record goes to every
 * consumer (the reference test/harness/checker-routing.test.ts compares routing against).
 */
export class TraceRouter {
  private readonly consumers: TraceConsumer[] = [];
  private readonly routes = new Map<string, TraceConsumer[]>();

  constructor(
    consumers: readonly TraceConsumer[] = [],
    private readonly routing = true,
  ) {
    for (const c of consumers) this.add(c);
  }

  add(c: TraceConsumer): void {
    this.consumers.push(c);
    this.routes.clear();
  }

  /** The events some consumer acts on (every catalogue event when not routing): what to subscribe to on the bus. */
  get events(): ReadonlySet<TraceEventName> {
    if (!this.routing) return ALL_TRACE_EVENTS;
    return eventSet(...this.consumers.map((c) => c.events));
  }

  /** Delivers one record (the bus's `record` listener). */
  readonly onRecord = (rec: TraceRecord): void => {
    const typed = typedRecord(rec);
    if (!this.routing) {
      for (const c of this.consumers) c.onRecord(typed);
      return;
    }
    let to = this.routes.get(rec.event);
    if (to === undefined) {
      to = this.consumers.filter((c) => (c.events as ReadonlySet<string>).has(rec.event));
      this.routes.set(rec.event, to);
    }
    for (const c of to) c.onRecord(typed);
  };
}
