/**
 * The nested part of a machine (docs/nested.md): the L1 guest kernel's hypervisor and its L2
 * guests from `machine.nested`, the host backing of their frames, and the `nested_migrate` action
 * (the VMM's post-copy switch-over, host/nested/migrate.ts). machine.ts plugs it in.
 */
import { PAGE_SIZE } from '../shared-abi/addr';
import type { HostMemoryConfig, PageRangeConfig } from '../host/config';
import type { Kvm } from '../host/kvm';
import type { MigratedPage } from '../host/nested/migrate';
import type { GuestKernel } from '../guest/kernel';
import { NestedHypervisor } from '../guest/nested/hypervisor';
import type { L2Region } from '../guest/nested/layout';
import type { NestedSpec } from './scenario/nested';
import type { Action } from './scenario/types';
import { hex } from './util/units';

type MigrateAction = Extract<Action, { do: 'nested_migrate' }>;

export interface NestedMachine {
  readonly hypervisor: NestedHypervisor;
  /** `base` plus the backing of the L2 guests' memory. */
  hostMemory(base: HostMemoryConfig): HostMemoryConfig;
  /** Throws when the nested regions and L1's own layout overlap. */
  check(kernel: GuestKernel): void;
  /** The `nested_migrate` action. */
  migrate(kvm: Kvm, a: MigrateAction): void;
  /** A name for a frame the nested guests use (for the timeline). */
  pageName(gfn: number): string | undefined;
  describe(): string;
}

const frame = (gpa: number): number => Math.floor(gpa / PAGE_SIZE);

function statePages(r: L2Region): MigratedPage[] {
  return [
    { gfn: frame(r.msrBitmap), name: `msr_bitmap of ${r.name}` },
    { gfn: frame(r.vapic), name: `virtual_apic of ${r.name}` },
  ];
}

function memoryPages(r: L2Region): MigratedPage[] {
  const out: MigratedPage[] = [];
  for (let off = 0; off < r.memSize; off += PAGE_SIZE) out.push({ gfn: frame(r.memBase + off), name: `${r.name} memory ${hex(off)}` });
  return out;
}

export function buildNested(memoryBytes: number, spec: NestedSpec): NestedMachine {
  const hypervisor = new NestedHypervisor(memoryBytes, {
    l2: spec.l2,
    ...(spec.vmexitTailNs === undefined ? {} : { vmexitTailNs: spec.vmexitTailNs }),
    ...(spec.exitHandlingNs === undefined ? {} : { exitHandlingNs: spec.exitHandlingNs }),
  });
  const regions = hypervisor.regions;
  const names = new Map<number, string>();
  for (const r of regions) {
    names.set(frame(r.vmcs12), `vmcs12 of ${r.name}`);
    for (const p of [...statePages(r), ...memoryPages(r)]) names.set(p.gfn, p.name);
  }
  return {
    hypervisor,
    hostMemory(base) {
      const pages: PageRangeConfig[] = [...(base.pages ?? [])];
      spec.l2.forEach((g, i) => {
        const r = regions[i]!;
        if (g.backing !== undefined && g.backing !== 'resident') pages.push({ gfn: frame(r.memBase), count: r.memSize / PAGE_SIZE, backing: g.backing });
      });
      return { ...base, pages };
    },
    check(kernel) {
      hypervisor.checkLayout(kernel);
    },
    migrate(kvm, a) {
      kvm.migrateNested({
        restore: a.restore ?? 'two_step',
        fetch: a.fetch ?? 'listener',
        listener: a.listener ?? 'before_set_nested_state',
        statePages: regions.flatMap(statePages),
        ...(a.l2Memory === true ? { otherPages: regions.flatMap(memoryPages) } : {}),
        ...(a.fetchFails === true ? { fetchFails: true } : {}),
      });
    },
    pageName: (gfn) => names.get(gfn),
    describe: () =>
      `L1 hypervisor running ${regions.length} L2 guest${regions.length === 1 ? '' : 's'}: ` +
      regions.map((r) => `${r.name} (vmcs12 ${hex(r.vmcs12)}, ${r.memSize / PAGE_SIZE} pages at ${hex(r.memBase)})`).join(', '),
  };
}
