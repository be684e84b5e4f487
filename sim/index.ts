/** The simulation core: virtual time, event queue, PRNG, trace bus, guest memory, run loop. */
export * from './errors';
export * from './clock';
export * from './queue';
export * from './prng';
export * from './trace';
export * from './memory';
export * from './engine';
