// A required field left out (`notified`).
import { TraceBus } from '../../sim/trace';
import { VirtualClock } from '../../sim/clock';

const bus = new TraceBus(new VirtualClock());
bus.emit('host', 0, 'kvm_async_pf_ready', { token: 1, gva: 0 }); // error
