// A consumer reading a field the record does not have.
import type { TraceRecordOf } from '../../sim/trace';

export function token(rec: TraceRecordOf<'kvm_async_pf_ready'>): number {
  return rec.tokn; // error
}
