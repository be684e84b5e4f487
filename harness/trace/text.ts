/**
 * text: lines like `trace-cmd report`:
 *
 *   cpus=2
 *          CPU 0/KVM-0     [000]     0.001203400: kvm_async_pf_not_present: token 0x1001 gva 0x7f0000001000 [injected=true halt=false]
 *
 * The "task" column says who emitted the record (`CPU n/KVM` for the host's vCPU thread,
 * `kworker/n` for the async page-in worker, `guest` and `vcpu` for the guest kernel and the CPU,
 * `apf` for the harness). Host tracepoints the kernel has are rendered with the kernel's format
 * string (shared-abi formatTracepoint); fields the kernel's tracepoint lacks follow in brackets.
 */
import { formatTracepoint, TRACEPOINTS, type TracepointDef, type TracepointFields, type TracepointKey } from '../../shared-abi/tracepoints';
import { formatTime } from '../../sim/clock';
import type { TraceRecord } from '../../sim/trace';
import type { Violation } from '../checkers';
import { fieldText, type TextOut, type TraceSink } from './sink';

const RESERVED = new Set(['t', 'cpu', 'src', 'event']);

function comm(rec: { src: string; cpu: number }): string {
  switch (rec.src) {
    case 'host':
      return rec.cpu >= 0 ? `CPU ${rec.cpu}/KVM` : 'kvm';
    case 'worker':
      return `kworker/${rec.cpu >= 0 ? rec.cpu : 'u'}`;
    case 'guest':
      return 'guest';
    case 'cpu':
      return 'vcpu';
    case 'harness':
      return 'apf';
    default:
      return rec.src;
  }
}

/** The kernel's text for tracepoint `key` (shared-abi formatTracepoint), when the record carries its fields. */
function render<K extends TracepointKey>(key: K, rec: TraceRecord): { text: string; used: ReadonlySet<string> } | undefined {
  const def: TracepointDef = TRACEPOINTS[key];
  const fields: Record<string, number | bigint> = {};
  for (const f of def.fields) {
    const v = rec[f.name];
    if (typeof v !== 'number' && typeof v !== 'bigint') return undefined;
    fields[f.name] = v;
  }
  return { text: formatTracepoint(key, fields as TracepointFields<K>), used: new Set(def.fields.map((f) => f.name)) };
}

function kernelText(rec: TraceRecord): { text: string; used: ReadonlySet<string> } | undefined {
  if (rec.event === 'kvm_async_pf_completed') return render(rec.pfn !== undefined ? 'kvm_async_pf_completed_old' : 'kvm_async_pf_completed', rec);
  return rec.event in TRACEPOINTS ? render(rec.event as TracepointKey, rec) : undefined;
}

/** One record as a trace-cmd style line (no newline). */
export function formatTextLine(rec: TraceRecord): string {
  const who = `${comm(rec)}-${rec.cpu >= 0 ? rec.cpu : 0}`.padStart(16);
  const cpu = rec.cpu >= 0 ? String(rec.cpu).padStart(3, '0') : '---';
  const kt = kernelText(rec);
  const rest: string[] = [];
  for (const k in rec) {
    if (RESERVED.has(k) || kt?.used.has(k) === true) continue;
    const v = rec[k];
    if (v === undefined) continue;
    rest.push(`${k}=${fieldText(k, v)}`);
  }
  let details = kt?.text ?? rest.join(' ');
  if (kt !== undefined && rest.length > 0) details += ` [${rest.join(' ')}]`;
  return `${who} [${cpu}] ${formatTime(rec.t, 15)}: ${rec.event}:${details === '' ? '' : ' ' + details}`;
}

export interface TextHeader {
  readonly cpus: number;
  readonly comment?: readonly string[];
}

export class TextSink implements TraceSink {
  constructor(
    private readonly out: TextOut,
    header: TextHeader,
  ) {
    for (const c of header.comment ?? []) out.write(`# ${c}\n`);
    out.write(`cpus=${header.cpus}\n`);
  }
  record(rec: TraceRecord): void {
    this.out.write(formatTextLine(rec) + '\n');
  }
  violation(v: Violation): void {
    this.out.write(formatTextLine({ t: v.t, cpu: v.cpu, src: 'check', event: 'violation', checker: v.checker, message: v.message }) + '\n');
  }
  close(): void {
    this.out.end();
  }
}
