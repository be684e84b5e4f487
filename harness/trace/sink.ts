/**
 * Where trace records go besides the checkers: files in one of three formats (text, jsonl,
 * perfetto), written as the run goes. A sink gets every record and every checker violation, and
 * is closed exactly once, also when the run fails, so a trace file is always complete.
 */
import * as fs from 'node:fs';
import { hex } from '../../shared-abi/addr';
import type { TraceRecord } from '../../sim/trace';
import type { Violation } from '../checkers';

export interface TraceSink {
  record(rec: TraceRecord): void;
  violation(v: Violation): void;
  /** Finishes the file (closing brackets, flush). `endT` is the virtual time the run ended. */
  close(endT: number): void;
}

export const TRACE_FORMATS = ['text', 'jsonl', 'perfetto'] as const;
export type TraceFormat = (typeof TRACE_FORMATS)[number];

/** Format implied by a file name: .jsonl -> jsonl, .json -> perfetto, anything else -> text. */
export function formatForFile(file: string): TraceFormat {
  if (/\.jsonl$/i.test(file)) return 'jsonl';
  if (/\.json$/i.test(file)) return 'perfetto';
  return 'text';
}

export const EXTENSION: Readonly<Record<TraceFormat, string>> = { text: '.trace.txt', jsonl: '.trace.jsonl', perfetto: '.perfetto.json' };

/** Something text can be appended to: a file (buffered) or a string collector (tests). */
export interface TextOut {
  write(s: string): void;
  end(): void;
}

/** Buffered writes to a file descriptor; flushes every 64 KiB so a long run streams to disk. */
export class FileOut implements TextOut {
  private fd: number | undefined;
  private buf: string[] = [];
  private size = 0;
  constructor(readonly file: string) {
    this.fd = fs.openSync(file, 'w');
  }
  write(s: string): void {
    this.buf.push(s);
    this.size += s.length;
    if (this.size >= 65536) this.flush();
  }
  flush(): void {
    if (this.fd === undefined || this.buf.length === 0) return;
    fs.writeSync(this.fd, this.buf.join(''));
    this.buf = [];
    this.size = 0;
  }
  end(): void {
    if (this.fd === undefined) return;
    this.flush();
    fs.closeSync(this.fd);
    this.fd = undefined;
  }
}

/** Collects text in memory. */
export class StringOut implements TextOut {
  private parts: string[] = [];
  ended = false;
  write(s: string): void {
    this.parts.push(s);
  }
  end(): void {
    this.ended = true;
  }
  get text(): string {
    return this.parts.join('');
  }
}

/** Fields shown in hex in the text format (addresses, tokens, MSR values, vectors, checksums). */
export const HEX_FIELDS: ReadonlySet<string> = new Set([
  'token', 'pending_token', 'gva', 'gpa', 'gfn', 'address', 'fault_address', 'cr2', 'msr_en', 'msr_en_val', 'data', 'ecx', 'value', 'checksum',
  'pfn', 'vector', 'vec', 'irq', 'exception', 'error_code', 'old', 'new', 'flags', 'hva', 'hfn', 'old_hfn', 'new_hfn',
]);

/** JSON-safe value: bigints become "0x..." strings. */
export function jsonValue(v: unknown): unknown {
  return typeof v === 'bigint' ? hex(v) : v;
}

/** A record as a plain JSON object (key order: t, cpu, src, event, fields). */
export function recordJson(rec: TraceRecord): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k in rec) out[k] = jsonValue(rec[k]);
  return out;
}

/** Text of one field value: hex for address-like fields, JSON quoting for strings with spaces. */
export function fieldText(key: string, v: unknown): string {
  if (typeof v === 'bigint') return hex(v);
  if (typeof v === 'number' && HEX_FIELDS.has(key) && Number.isInteger(v) && v >= 0) return hex(v);
  if (typeof v === 'string') return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  return String(v);
}
