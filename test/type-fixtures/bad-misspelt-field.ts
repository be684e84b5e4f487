// A field name the event does not have (`tokn` for `token`).
import { TraceBus } from '../../sim/trace';
import { VirtualClock } from '../../sim/clock';

const bus = new TraceBus(new VirtualClock());
bus.emit('host', 0, 'kvm_async_pf_ready', { tokn: 1, gva: 0, notified: true }); // error
