/** The simulated guest: the kernel (scheduler, IDT, kvm.c PV driver) and the bare-metal guest. */
export { GuestKernel, PerCpu, mmName, planGuestLayout } from './kernel';
export type { GuestHypervisor, GuestKernelOptions, GuestStats, KernelMode, CpuState, PanicInfo, TaskView } from './kernel';
export { GUEST_PROFILES, GUEST_PROFILE_NAMES, GUEST_TOGGLES, GUEST_TOGGLE_NAMES, isGuestProfileName, resolveGuestProfile } from './profiles';
export type { GuestProfileFacts, GuestProfileName, GuestToggle, GuestToggles, PageReadyVia, PfEntryKind, ResolvedGuestConfig, WaitKind } from './profiles';
export { ADMIN_ACTIONS, MGMT_VECTOR, isAdminAction } from './admin';
export type { AdminAction } from './admin';
export { APF_HANDLER_NAMES } from './handlers';
export type { ApfApi, ApfField, ApfHandlerName, ApfHandlers, BugKind, TaskInfo } from './handlers';
export {
  apfTaskWakeAll,
  apfTaskWakeOne,
  doAsyncPageFault,
  kvmAsyncPfTaskWaitHalt,
  kvmAsyncPfTaskWaitSchedule,
  kvmAsyncPfTaskWake,
  kvmGuestCpuInit,
  kvmHandleAsyncPf,
  kvmPvDisableApf,
  kvmReadAndResetApfFlags,
  profileDefaultHandlers,
  sysvecKvmAsyncpfInterrupt,
} from './kvm';
export { SleepNode, SleeperTable } from './sleepers';
export type { SleeperBucket, SleeperStats } from './sleepers';
export { Frame, FrameRunner, GuestCodeError, insn, compute, load32, store32, readCr2 } from './code';
export type { Code, FrameKind } from './code';
export { GuestLayout, GuestLayoutPlan, PAGE_OFFSET, directMap } from './layout';
export type { AddressSpace } from './layout';
export { NR } from './workload';
export { SLICE_NS } from './sched';
export * from './program';
export * from './bare';
