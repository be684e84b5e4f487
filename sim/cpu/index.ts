export * from './costs';
export * from './exceptions';
export * from './mmu';
export * from './vcpu';
