export * from './script';
export * from './guest';
