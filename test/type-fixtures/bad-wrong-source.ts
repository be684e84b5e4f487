// A guest event emitted by the host.
import type { SourceTrace } from '../../sim/trace';

declare const host: SourceTrace<'host'>;
host('kvm_async_pf_task_wake', { token: 1, found: true, dummy: false }); // error
