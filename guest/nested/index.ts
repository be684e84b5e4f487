/** guest/nested: an L1 guest kernel that is also a hypervisor running L2 guests (docs/nested.md). */
export { NestedHypervisor } from './hypervisor';
export type { L2Vm } from './hypervisor';
export { L2Guest } from './l2';
export type { L2Env } from './l2';
export { L2_STATE_PAGES, NestedLayoutError, l2Gfn, nestedFloor, planNested } from './layout';
export type { L2Region } from './layout';
export { DEFAULT_EXIT_HANDLING_NS, DEFAULT_L2_PAGES, DEFAULT_VMEXIT_TAIL_NS, l2Addresses, vcpuThreadName } from './program';
export type { L2KernelOp, L2Spec, L2UserOp, NestedConfig } from './program';
