/** The simulated host: KVM's x86 async page fault implementation and the VM it runs. */
export * from './config';
export * from './profiles';
export { Kvm, KvmVcpu, DEFAULT_EXIT_COST_NS, DEFAULT_SMM_NS } from './kvm';
export type { KvmRequest, KvmStats, KvmVcpuStats, PendingException, VcpuThread } from './kvm';
export { HostMemory, SWAP_POISON_BYTE, GUEST_RAM_HVA, GUEST_RAM_HOST_PFN } from './hostmem';
export type { HostMemoryStats, NoWaitLookup, PageInTicket } from './hostmem';
export { Lapic, X2APIC_MSR, SPIV_APIC_ENABLED, LVT_MASKED, MIN_TIMER_PERIOD_NS } from './lapic';
export { AsyncPf } from './async_pf';
export type { AsyncPfWork, ArchAsyncPf } from './async_pf';
export { ApfGfnHash, gfnHomeSlot, gfnHomeSlotPre47 } from './x86/gfn_hash';
export type { ApfState } from './x86/apf';
export { canDoAsyncPf, canDeliverAsyncPf, pvEnabled } from './x86/apf';
export type { FaultOutcome, SyncWhy } from './mmu';
