/** Nested virtualization in L0: nested VM entry/exit routing, nested state pages, migration with post-copy. */
export { handleVmenter, getNestedStatePages, reflectToL1, NESTED_EXIT, NESTED_PAGE_KINDS, nestedPageKind, setNestedPageFetcher } from './vmx';
export type { NestedPageFetcher } from './vmx';
export { DemandPager, pauseVcpu, resumeVcpu } from './postcopy';
export type { DemandPagerConfig, FetchVia, ListenerStart, RequestFrom } from './postcopy';
export { migrateNested } from './migrate';
export type { MigratedPage, NestedMigrationConfig, RestoreDesign } from './migrate';
