/**
 * Migrating a VM whose vCPUs run nested guests, with post-copy: the switch-over on the destination
 * as the VMM drives it (KVM_GET_NESTED_STATE on the source, KVM_SET_NESTED_STATE on the
 * destination, then KVM_RUN), while the pages the nested state points to are still on the source.
 *
 * The model migrates in place (like the `save_restore` action): at the switch-over every vCPU is
 * paused, the pages not yet transferred become `remote` (host/hostmem.ts), each vCPU's nested state
 * is restored with one of the two designs discussed on the KVM list, and the vCPUs resume:
 *
 * - `two_step`: KVM_SET_NESTED_STATE touches no guest memory; it raises
 *   KVM_REQ_GET_NESTED_STATE_PAGES and the pages are mapped at the first KVM_RUN, from the vCPU
 *   thread (which can exit to ask for a page, or block on the listener);
 * - `at_set_nested_state`: the pages must be reachable during KVM_SET_NESTED_STATE itself, which
 *   runs on the VMM thread: it blocks on the userfaultfd listener (so the listener must already run)
 *   or, without one, fails with -EFAULT.
 *
 * A failed restore aborts the migration: the destination VM is destroyed (the source would resume;
 * not modelled). docs/nested.md has the outcomes of every ordering.
 */
import { PAGE_SIZE } from '../../shared-abi/addr';
import type { Vmcs12 } from '../../shared-abi/arch';
import type { Kvm, KvmVcpu } from '../kvm';
import { DemandPager, pauseVcpu, resumeVcpu, type FetchVia, type ListenerStart } from './postcopy';
import { nestedPageKind } from './vmx';

// Bound once (docs/performance.md).
const { floor } = Math;

export type RestoreDesign = 'two_step' | 'at_set_nested_state';

/** A frame still on the source at the switch-over, with a name for traces and reports. */
export interface MigratedPage {
  readonly gfn: number;
  readonly name: string;
}

export interface NestedMigrationConfig {
  readonly restore: RestoreDesign;
  /** How a vCPU in KVM_RUN gets a page that is still on the source. */
  readonly fetch: FetchVia;
  /** When the VMM starts the userfaultfd listener. */
  readonly listener: ListenerStart;
  /** The nested state pages of every L2 (what the vmcs12s point to). */
  readonly statePages: readonly MigratedPage[];
  /** Other frames still on the source (e.g. L2 memory): they come in through the ordinary fault path. */
  readonly otherPages?: readonly MigratedPage[];
  /** The source cannot send the nested state pages (their fetch fails). */
  readonly fetchFails?: boolean;
}

interface Saved {
  readonly v: KvmVcpu;
  /** KVM_GET_NESTED_STATE: the vCPU was in guest mode, with this vmcs12. */
  readonly vmcs: Vmcs12 | null;
}

/** Run the switch-over now. Returns the demand pager that serves the destination from then on. */
export function migrateNested(kvm: Kvm, cfg: NestedMigrationConfig): DemandPager {
  const sim = kvm.sim;
  const vcpus = kvm.vcpus.filter((v) => v.life === 'alive');
  sim.trace.emit('host', -1, 'nested_migration', { phase: 'switchover', restore: cfg.restore, fetch: cfg.fetch, listener: cfg.listener });
  for (const v of vcpus) pauseVcpu(v);

  // Source: KVM_GET_NESTED_STATE of every vCPU (the vmcs12 itself travels in the stream).
  const saved: Saved[] = vcpus.map((v) => {
    const vmcs = v.cpu.guestMode ? v.cpu.currentVmcs : null;
    v.trace('kvm_get_nested_state', { guest_mode: vmcs !== null, vmcs12: vmcs?.gpa ?? -1 });
    return { v, vmcs };
  });

  // Destination: what the source has not sent yet.
  const names = new Map<number, string>();
  for (const p of [...cfg.statePages, ...(cfg.otherPages ?? [])]) names.set(p.gfn, p.name);
  const pager = new DemandPager(kvm, { fetch: cfg.fetch, listener: cfg.listener });
  const stateGfns = cfg.statePages.map((p) => p.gfn);
  kvm.hostMem.evict(stateGfns, 'postcopy', cfg.fetchFails === true ? 'failing' : 'remote');
  kvm.hostMem.evict((cfg.otherPages ?? []).map((p) => p.gfn), 'postcopy', 'remote');
  pager.addRemote(stateGfns, names);
  if (cfg.listener === 'before_set_nested_state') pager.startListener();

  const finish = (): void => {
    if (cfg.listener === 'after_set_nested_state') pager.startListener();
    sim.trace.emit('host', -1, 'nested_migration', { phase: 'resume', restore: cfg.restore, fetch: cfg.fetch, listener: cfg.listener });
    for (const s of saved) resumeVcpu(s.v);
  };

  const abort = (s: Saved, gfn: number, what: string): void => {
    s.v.trace('kvm_set_nested_state', { ok: false, guest_mode: true, restore: cfg.restore, gfn, page: what, error: 'EFAULT' });
    sim.trace.emit('host', -1, 'nested_migration', { phase: 'abort', restore: cfg.restore, fetch: cfg.fetch, listener: cfg.listener });
    kvm.destroyVm();
  };

  const restored = (s: Saved, guestMode: boolean): void => {
    s.v.trace('kvm_set_nested_state', { ok: true, guest_mode: guestMode, restore: cfg.restore, gfn: -1, page: '', error: '' });
  };

  /** KVM_SET_NESTED_STATE with the pages mapped now, page `j` onwards, then the next vCPU. */
  const setWithPages = (i: number, s: Saved, vmcs: Vmcs12, j: number): void => {
    if (j >= vmcs.pages.length) {
      restored(s, true);
      restoreFrom(i + 1);
      return;
    }
    const gfn = floor(vmcs.pages[j]! / PAGE_SIZE);
    const what = pager.nameOf(gfn, nestedPageKind(j));
    const look = kvm.hostMem.lookupNoWait(gfn);
    if (look === 'resident') return setWithPages(i, s, vmcs, j + 1);
    if (look === 'error') return abort(s, gfn, what);
    const retry = (): void => setWithPages(i, s, vmcs, j);
    if (!pager.covers(gfn)) {
      // Swapped out on the destination host: an ordinary blocking fault-in in the ioctl.
      kvm.hostMem.pageIn(gfn, 'sync', 'host', s.v.id, retry);
      return;
    }
    if (!pager.fetchForIoctl(s.v.id, gfn, what, retry)) abort(s, gfn, what);
  };

  const restoreFrom = (i: number): void => {
    if (kvm.destroyed) return;
    const s = saved[i];
    if (s === undefined) {
      finish();
      return;
    }
    if (s.vmcs === null) {
      restored(s, false);
      restoreFrom(i + 1);
      return;
    }
    if (cfg.restore === 'two_step') {
      restored(s, true);
      s.v.makeRequest('get_nested_state_pages');
      restoreFrom(i + 1);
      return;
    }
    setWithPages(i, s, s.vmcs, 0);
  };

  restoreFrom(0);
  return pager;
}
