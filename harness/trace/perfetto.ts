/**
 * perfetto: Chrome trace-event JSON (the "JSON Object Format" that ui.perfetto.dev and
 * chrome://tracing open). Layout:
 *
 * - process 1 "guest vCPUs": one thread (track) per vCPU. Slices show which task runs
 *   (from `sched_switch`); every guest and CPU record is an instant event on its vCPU's track.
 * - process 2 "host KVM": per vCPU a track "vCPU n (KVM)" with host records as instants, and a
 *   track "vCPU n blocked" with a slice per block (`kvm_vcpu_block` .. `kvm_vcpu_wakeup`) and
 *   per artificial halt (`kvm_async_pf_halt` .. `kvm_async_pf_unhalt`, its own track).
 * - process 3 "async_pf workers": per vCPU a track "kworker (vCPU n)" with the worker's records,
 *   and an async slice per outstanding fault, from `kvm_async_pf_not_present` to its
 *   `kvm_async_pf_ready` (named by token).
 * - process 4 "harness": injected events and checker violations.
 *
 * Timestamps are microseconds (the format's unit) with nanosecond fractions; record fields are
 * the event's `args` (bigints as "0x..." strings). Events stream out as the run goes; `close`
 * ends open slices at the end time and closes the JSON.
 */
import { KVM_APF_WAKE_ALL_TOKEN as WAKE_ALL } from '../../shared-abi/apf';
import type { TraceRecord } from '../../sim/trace';
import type { Violation } from '../checkers';
import { jsonValue, type TextOut, type TraceSink } from './sink';

export const PID = { vcpus: 1, host: 2, workers: 3, harness: 4 } as const;
/** Thread ids: vCPU tracks are the vCPU index; host tracks are offset per kind. */
export const TID = { hostVcpu: 100, blocked: 200, apfHalt: 300, worker: 1000, harness: 1 } as const;


interface Ev {
  name: string;
  ph: string;
  ts: number;
  pid: number;
  tid: number;
  cat?: string;
  s?: string;
  id?: string;
  args?: Record<string, unknown>;
}

export interface PerfettoOptions {
  readonly cpus: number;
  /** Free-form metadata put in `otherData` (scenario, seed, profiles). */
  readonly meta?: Readonly<Record<string, string | number | boolean>>;
}

export class PerfettoSink implements TraceSink {
  private first = true;
  private readonly running = new Map<number, string>();
  private readonly open = new Set<string>();
  private readonly asyncOpen = new Map<number, number>();
  private readonly named = new Set<string>();

  constructor(
    private readonly out: TextOut,
    private readonly opts: PerfettoOptions,
  ) {
    out.write(`{"displayTimeUnit":"ns","otherData":${JSON.stringify(opts.meta ?? {})},"traceEvents":[\n`);
    this.meta(PID.vcpus, undefined, 'process_name', 'guest vCPUs');
    this.meta(PID.host, undefined, 'process_name', 'host KVM');
    this.meta(PID.workers, undefined, 'process_name', 'async_pf workers');
    this.meta(PID.harness, undefined, 'process_name', 'harness');
    this.meta(PID.harness, TID.harness, 'thread_name', 'injections and checks');
    for (let c = 0; c < opts.cpus; c++) this.vcpuTracks(c);
  }

  private emit(e: Ev): void {
    this.out.write((this.first ? '' : ',\n') + JSON.stringify(e));
    this.first = false;
  }

  private meta(pid: number, tid: number | undefined, kind: 'process_name' | 'thread_name', name: string, sort?: number): void {
    this.emit({ name: kind, ph: 'M', ts: 0, pid, tid: tid ?? 0, args: { name } });
    if (sort !== undefined) this.emit({ name: kind === 'thread_name' ? 'thread_sort_index' : 'process_sort_index', ph: 'M', ts: 0, pid, tid: tid ?? 0, args: { sort_index: sort } });
  }

  private vcpuTracks(c: number): void {
    const key = `cpu${c}`;
    if (this.named.has(key)) return;
    this.named.add(key);
    this.meta(PID.vcpus, c, 'thread_name', `vCPU ${c}`, c);
    this.meta(PID.host, TID.hostVcpu + c, 'thread_name', `vCPU ${c} (KVM)`, 3 * c);
    this.meta(PID.host, TID.blocked + c, 'thread_name', `vCPU ${c} blocked`, 3 * c + 1);
    this.meta(PID.host, TID.apfHalt + c, 'thread_name', `vCPU ${c} APF halt`, 3 * c + 2);
    this.meta(PID.workers, TID.worker + c, 'thread_name', `kworker (vCPU ${c})`, c);
  }

  private begin(pid: number, tid: number, name: string, ts: number, args?: Record<string, unknown>): void {
    const key = `${pid}:${tid}`;
    if (this.open.has(key)) this.end(pid, tid, ts);
    this.open.add(key);
    this.emit({ name, ph: 'B', ts, pid, tid, ...(args === undefined ? {} : { args }) });
  }

  private end(pid: number, tid: number, ts: number): void {
    const key = `${pid}:${tid}`;
    if (!this.open.delete(key)) return;
    this.emit({ name: '', ph: 'E', ts, pid, tid });
  }

  record(rec: TraceRecord): void {
    const ts = rec.t / 1000;
    const cpu = rec.cpu;
    if (cpu >= 0) this.vcpuTracks(cpu);
    const args: Record<string, unknown> = {};
    for (const k in rec) if (k !== 't' && k !== 'cpu' && k !== 'src' && k !== 'event') args[k] = jsonValue(rec[k]);

    // Slices.
    switch (rec.event) {
      case 'sched_switch':
        if (cpu >= 0 && typeof rec.next === 'string') {
          this.running.set(cpu, rec.next);
          this.begin(PID.vcpus, cpu, rec.next, ts);
        }
        break;
      case 'kvm_vcpu_block':
        if (cpu >= 0) this.begin(PID.host, TID.blocked + cpu, `blocked${typeof rec.why === 'string' ? ` (${rec.why})` : ''}`, ts);
        break;
      case 'kvm_vcpu_wakeup':
        if (cpu >= 0) this.end(PID.host, TID.blocked + cpu, ts);
        break;
      case 'kvm_async_pf_halt':
        if (cpu >= 0) this.begin(PID.host, TID.apfHalt + cpu, `artificial halt${typeof rec.why === 'string' ? ` (${rec.why})` : ''}`, ts, args);
        break;
      case 'kvm_async_pf_unhalt':
        if (cpu >= 0) this.end(PID.host, TID.apfHalt + cpu, ts);
        break;
      case 'kvm_async_pf_not_present':
        if (typeof rec.token === 'number' && rec.injected !== false) {
          this.asyncOpen.set(rec.token, cpu);
          this.emit({ name: `token 0x${rec.token.toString(16)}`, cat: 'apf', ph: 'b', id: `0x${rec.token.toString(16)}`, ts, pid: PID.workers, tid: TID.worker + Math.max(cpu, 0), args });
        }
        break;
      case 'kvm_async_pf_ready':
        if (typeof rec.token === 'number' && rec.token !== WAKE_ALL) this.endAsync(rec.token, ts);
        break;
      case 'kvm_async_pf_clear_queue':
        if (typeof rec.tokens === 'string') {
          for (const t of rec.tokens.split(',')) {
            const n = Number(t.trim());
            if (t.trim() !== '' && Number.isFinite(n)) this.endAsync(n, ts);
          }
        }
        break;
      case 'task_exit':
        if (cpu >= 0 && this.running.get(cpu) === rec.task) {
          this.running.delete(cpu);
          this.end(PID.vcpus, cpu, ts);
        }
        break;
    }

    // The record itself as an instant on its track.
    const track = this.trackOf(rec);
    this.emit({ name: rec.event, cat: rec.src, ph: 'i', s: 't', ts, pid: track.pid, tid: track.tid, args });
  }

  private endAsync(token: number, ts: number): void {
    const cpu = this.asyncOpen.get(token);
    if (cpu === undefined) return;
    this.asyncOpen.delete(token);
    this.emit({ name: `token 0x${token.toString(16)}`, cat: 'apf', ph: 'e', id: `0x${token.toString(16)}`, ts, pid: PID.workers, tid: TID.worker + Math.max(cpu, 0) });
  }

  private trackOf(rec: TraceRecord): { pid: number; tid: number } {
    const cpu = Math.max(rec.cpu, 0);
    switch (rec.src) {
      case 'guest':
      case 'cpu':
        return { pid: PID.vcpus, tid: cpu };
      case 'host':
        return { pid: PID.host, tid: TID.hostVcpu + cpu };
      case 'worker':
        return { pid: PID.workers, tid: TID.worker + cpu };
      default:
        return { pid: PID.harness, tid: TID.harness };
    }
  }

  violation(v: Violation): void {
    this.emit({ name: `violation: ${v.checker}`, cat: 'check', ph: 'i', s: 'g', ts: v.t / 1000, pid: PID.harness, tid: TID.harness, args: { checker: v.checker, cpu: v.cpu, message: v.message } });
  }

  close(endT: number): void {
    const ts = endT / 1000;
    for (const token of [...this.asyncOpen.keys()]) this.endAsync(token, ts);
    for (const key of [...this.open]) {
      const [pid, tid] = key.split(':').map(Number);
      this.end(pid ?? 0, tid ?? 0, ts);
    }
    this.out.write('\n]}\n');
    this.out.end();
  }
}
