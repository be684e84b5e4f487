/** Shared pieces of the fuzz tests. */
import type { FuzzMode } from '../../harness/fuzz/case';
import type { FuzzSize, GenOptions } from '../../harness/fuzz/generators';
import type { SearchSpec } from '../../harness/fuzz/search';
import type { GuestProfileName } from '../../guest/profiles';
import type { HostProfileName } from '../../host/config';

export function gen(o: Partial<{ guest: GuestProfileName; host: HostProfileName; size: FuzzSize }> = {}): GenOptions {
  return { guest: o.guest ?? 'current', host: o.host ?? 'current', hostToggles: {}, guestToggles: {}, size: o.size ?? 'small' };
}

export function spec(mode: FuzzMode = 'trusted', o: Partial<{ guest: GuestProfileName; host: HostProfileName; size: FuzzSize; canary: string }> = {}): SearchSpec {
  return { gen: gen(o), case: { mode, ...(o.canary === undefined ? {} : { canary: o.canary }) } };
}
