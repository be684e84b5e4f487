// Compiles: correct emits through the bus, a source-bound emitter and a typed record.
import { TraceBus, type SourceTrace, type TraceRecordOf } from '../../sim/trace';
import { VirtualClock } from '../../sim/clock';

const bus = new TraceBus(new VirtualClock());
bus.emit('host', 0, 'kvm_async_pf_not_present', { token: 0x1001, gva: 0x7f0000001000, injected: true, halt: false });
bus.emit('worker', 0, 'kvm_async_pf_completed', { address: 0x1000, gva: 0x1000, ok: true });
bus.emit('worker', 0, 'kvm_async_pf_completed', { address: 0x1000, pfn: 7, gva: 0x1000, ok: true });
bus.emit('host', -1, 'host_page_fault_in', { gfn: 1, checksum: 2, ok: true, backing: 'swapped', why: 'sync' });
bus.emit('worker', -1, 'host_page_fault_in', { gfn: 1, checksum: 2, ok: true, backing: 'swapped', why: 'worker' });
bus.emit('cpu', 0, 'triple_fault');
bus.emit('harness', -1, 'inject', { what: 'nmi', at: 5 });

declare const guest: SourceTrace<'guest'>;
guest('apf_ack');
guest('kvm_async_pf_task_wake', { token: 1, found: true, dummy: false });

export function readyToken(rec: TraceRecordOf<'kvm_async_pf_ready'>): number {
  return rec.notified ? rec.token : -1;
}
