/**
 * jsonl: one JSON object per line, `{t, cpu, src, event, ...fields}`, exactly the trace bus
 * records; bigints (MSR values) as "0x..." strings. Checker violations follow as records with
 * `src: "check"`, `event: "violation"`.
 */
import type { TraceRecord } from '../../sim/trace';
import type { Violation } from '../checkers';
import { recordJson, type TextOut, type TraceSink } from './sink';

export class JsonlSink implements TraceSink {
  constructor(private readonly out: TextOut) {}
  record(rec: TraceRecord): void {
    this.out.write(JSON.stringify(recordJson(rec)) + '\n');
  }
  violation(v: Violation): void {
    this.out.write(JSON.stringify({ t: v.t, cpu: v.cpu, src: 'check', event: 'violation', checker: v.checker, message: v.message }) + '\n');
  }
  close(): void {
    this.out.end();
  }
}
