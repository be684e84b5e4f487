/**
 * The scenario actions that change the guest address space (docs/caches.md): memslot delete,
 * re-add, move and resize, memory hot-unplug and host page migration, performed on the host.
 * A request the host refuses (KVM_SET_USER_MEMORY_REGION's -EINVAL / -EEXIST) is an `ActionError`.
 */
import { MemslotError } from '../host/memslots';
import type { Kvm } from '../host/kvm';
import { ActionError } from './machine-api';
import type { Action, PageRef } from './scenario/types';

export type AddressSpaceAction = Extract<Action, { do: 'memslot_delete' | 'memslot_readd' | 'memslot_move' | 'memslot_resize' | 'hot_unplug' | 'page_migrate' }>;

export function addressSpaceAction(kvm: Kvm, a: AddressSpaceAction, gfns: (refs: readonly PageRef[]) => number[]): void {
  try {
    switch (a.do) {
      case 'memslot_delete':
        return kvm.deleteMemslot(a.slot);
      case 'memslot_readd':
        return kvm.readdMemslot(a.slot, a.newBacking === true);
      case 'memslot_move':
        return kvm.moveMemslot(a.slot, a.gfn);
      case 'memslot_resize':
        return kvm.resizeMemslot(a.slot, a.count);
      case 'hot_unplug':
        return kvm.hotUnplug(a.slot);
      case 'page_migrate':
        kvm.migratePages(gfns(a.pages));
        return;
    }
  } catch (e) {
    if (e instanceof MemslotError) throw new ActionError(`${a.do}: ${e.message}`);
    throw e;
  }
}
