// Fixture: linted as if it were shared-abi/fixture.ts; the ABI is a leaf and imports nothing.
import { EventEmitter } from 'eventemitter3';
import { VirtualClock } from '../sim/clock';

export const y = [EventEmitter, VirtualClock];
