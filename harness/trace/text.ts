/**
 * text: lines like `trace-cmd report`:
 *
 *   cpus=2
 *          CPU 0/KVM-0     [000]     0.001203400: kvm_async_pf_not_present: token 0x1001 gva 0x7f0000001000 [injected=true halt=false]
 *
 * The "task" column says who emitted the record (`CPU n/KVM` for the host's vCPU thread,
 * `kworker/n` for the async page-in worker, `guest` and `vcpu` for the guest kernel and the CPU,
 * `apf` for the harness). Host tracepoints the kernel has are rendered with the kernel's format
 * string (shared-abi formatTracepoint): the async-PF ones and kvm_msr, kvm_inj_exception,
 * kvm_inj_virq, kvm_apic_accept_irq, kvm_apic_eoi (as kvm_eoi) and kvm_page_fault; fields the
 * kernel's tracepoint lacks follow in brackets.
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

type Value = number | bigint | boolean;
const isValue = (v: unknown): v is Value => typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean';

/** The kernel's text for tracepoint `key` from the given field values (shared-abi formatTracepoint). */
function render<K extends TracepointKey>(key: K, values: Readonly<Record<string, unknown>>, used: readonly string[]): { text: string; used: ReadonlySet<string> } | undefined {
  const def: TracepointDef = TRACEPOINTS[key];
  const fields: Record<string, Value> = {};
  for (const f of def.fields) {
    const v = values[f.name];
    if (!isValue(v)) return undefined;
    fields[f.name] = v;
  }
  return { text: formatTracepoint(key, fields as TracepointFields<K>), used: new Set(used) };
}

/** APIC delivery modes by the simulation's name, as the ICR's bits 8-10 encode them. */
const DELIVERY_MODE: Readonly<Record<string, number>> = { fixed: 0, lowprio: 1, smi: 2, nmi: 4, init: 5, sipi: 6, extint: 7 };

/**
 * Records whose fields differ from the kernel tracepoint's: how to get the kernel's fields. The
 * simulated LAPIC names the delivery mode and delivers edge-triggered interrupts only; its EOI
 * record is the kernel's kvm_eoi of the record's vCPU.
 */
const ADAPTERS: Readonly<Record<string, (rec: TraceRecord) => { key: TracepointKey; values: Record<string, unknown>; used: string[] } | undefined>> = {
  kvm_apic_accept_irq: (rec) => {
    const dm = typeof rec.dm === 'string' ? DELIVERY_MODE[rec.dm] : rec.dm;
    if (dm === undefined) return undefined;
    return { key: 'kvm_apic_accept_irq', values: { ...rec, dm: (typeof dm === 'number' ? dm : 0) << 8, tm: 0 }, used: ['apicid', 'dm', 'vec'] };
  },
  kvm_apic_eoi: (rec) => ({ key: 'kvm_eoi', values: { apicid: Math.max(rec.cpu, 0), vector: rec.vector }, used: ['vector'] }),
};

function kernelText(rec: TraceRecord): { text: string; used: ReadonlySet<string> } | undefined {
  const adapt = ADAPTERS[rec.event]?.(rec);
  if (adapt !== undefined) return render(adapt.key, adapt.values, adapt.used);
  if (rec.event === 'kvm_async_pf_completed') {
    const key = rec.pfn !== undefined ? 'kvm_async_pf_completed_old' : 'kvm_async_pf_completed';
    return render(key, rec, TRACEPOINTS[key].fields.map((f) => f.name));
  }
  if (!(rec.event in TRACEPOINTS) || rec.event === 'kvm_eoi') return undefined;
  const key = rec.event as TracepointKey;
  return render(key, rec, TRACEPOINTS[key].fields.map((f) => f.name));
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
