// An event name the catalogue does not have.
import { TraceBus } from '../../sim/trace';
import { VirtualClock } from '../../sim/clock';

const bus = new TraceBus(new VirtualClock());
bus.emit('host', 0, 'kvm_async_pf_not_presnt', { token: 1, gva: 0, injected: true, halt: false }); // error
