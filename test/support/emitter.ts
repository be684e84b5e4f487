/** A `TraceEmitter` for tests that stand in for the trace bus. */
import type { TraceEmitter, TraceFields, TraceSource } from '../../sim/trace';

/** An emitter that hands every record to `fn` as it was emitted (the catalogue's checks stay at the emit sites). */
export function recordingEmitter(fn: (src: TraceSource, cpu: number, event: string, fields: TraceFields | undefined) => void): TraceEmitter {
  return { emit: fn } as TraceEmitter;
}
