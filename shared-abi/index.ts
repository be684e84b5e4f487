/** spec §1–§6: the shared ABI barrel: everything host, guest and sim agree on. */
export * from './addr';
export * from './apf';
export * from './arch';
export * from './cpuid';
export * from './hash';
export * from './layout';
export * from './msr';
export * from './trace-catalogue';
export * from './tracepoints';
export * from './vectors';
