/**
 * The three layouts of `struct kvm_vcpu_pv_apf_data` (spec §2) as data, and typed accessors
 * over any little-endian memory that can read and write u32s.
 */

import { compareKernelVersions, parseKernelVersion } from './apf';
import type { HostEra } from './msr';

/** spec §2: names of the struct layouts, by the first kernel that used each. */
export type ApfLayoutName = 'v2.6.38' | 'v5.8' | 'v6.7';

/** spec §2: who stores to a field ('both': host sets it, guest clears it). */
export type FieldWriter = 'host' | 'guest' | 'both' | 'none';

/** spec §2: one field of the struct (offset and size in bytes). */
export interface ApfFieldSpec {
  readonly offset: number;
  readonly size: number;
  readonly writer: FieldWriter;
}

/** spec §2: one layout of the struct (all fields little-endian u32 except padding). */
export interface ApfLayout {
  readonly name: ApfLayoutName;
  readonly size: number;
  readonly align: 64;
  readonly fields: Readonly<Record<string, ApfFieldSpec>>;
}

/** spec §2.4/§1.6: the guest's per-CPU area is 64-byte aligned. */
export const APF_DATA_ALIGN = 64;

/** spec §2.1–§2.3: the struct layouts. */
export const APF_DATA_LAYOUTS = {
  /** spec §2.1: v2.6.38–v5.7. */
  'v2.6.38': {
    name: 'v2.6.38',
    size: 68,
    align: 64,
    fields: {
      reason: { offset: 0, size: 4, writer: 'both' },
      pad: { offset: 4, size: 60, writer: 'none' },
      enabled: { offset: 64, size: 4, writer: 'guest' },
    },
  },
  /** spec §2.2: v5.8–~v6.6. */
  'v5.8': {
    name: 'v5.8',
    size: 68,
    align: 64,
    fields: {
      flags: { offset: 0, size: 4, writer: 'both' },
      token: { offset: 4, size: 4, writer: 'both' },
      pad: { offset: 8, size: 56, writer: 'none' },
      enabled: { offset: 64, size: 4, writer: 'guest' },
    },
  },
  /** spec §2.3: ~v6.7/v6.8 onward (`enabled` removed). */
  'v6.7': {
    name: 'v6.7',
    size: 64,
    align: 64,
    fields: {
      flags: { offset: 0, size: 4, writer: 'both' },
      token: { offset: 4, size: 4, writer: 'both' },
      pad: { offset: 8, size: 56, writer: 'none' },
    },
  },
} as const satisfies { readonly [K in ApfLayoutName]: ApfLayout & { readonly name: K } };

/** spec §2: all layout names, oldest first. */
export const APF_LAYOUT_NAMES = ['v2.6.38', 'v5.8', 'v6.7'] as const satisfies readonly ApfLayoutName[];

/** spec §2: byte offset of `reason`/`flags` (every layout). */
export const APF_FLAGS_OFFSET = 0;
/** spec §2.2: byte offset of `token` (v5.8 onward). */
export const APF_TOKEN_OFFSET = 4;
/** spec §2.1/§2.2: byte offset of `enabled` (before ~v6.7). */
export const APF_ENABLED_OFFSET = 64;

/** spec §2: the layout object for a name. */
export const apfLayout = (name: ApfLayoutName): ApfLayout => APF_DATA_LAYOUTS[name];

/**
 * spec §2: the struct layout of a kernel version string. The v6.7 boundary is the spec's
 * "~v6.7/v6.8" (Oct 2023) [inference]; v6.7 is used here.
 */
export function layoutForKernel(version: string): ApfLayoutName {
  const v = parseKernelVersion(version);
  if (compareKernelVersions(v, [2, 6, 38]) < 0) throw new RangeError(`async PF does not exist before v2.6.38: ${version}`);
  if (compareKernelVersions(v, [5, 8, 0]) < 0) return 'v2.6.38';
  if (compareKernelVersions(v, [6, 7, 0]) < 0) return 'v5.8';
  return 'v6.7';
}

/** spec §2: the minimal little-endian memory the accessors need (sim's GuestMemory fits it). */
export interface LeMemory {
  readU32(addr: number): number;
  writeU32(addr: number, v: number): void;
}

/** spec §1.6: the host's cached mapping of the area: its first 4 bytes (≤ v5.7) or 8 bytes (v5.8+). */
export interface HostWritableRange {
  readonly offset: 0;
  readonly length: 4 | 8;
}

/** spec §1.6: length of the host's cached mapping of the area, per host era. */
export const hostCachedMappingLength = (era: HostEra): 4 | 8 => (era === 'v5.8' ? 8 : 4);

/** spec §1.6/§2: bytes of the area the host can write: 0..3 with the old layout, 0..7 from v5.8. */
export function hostWritableBytes(layout: ApfLayout | ApfLayoutName): HostWritableRange {
  const name = typeof layout === 'string' ? layout : layout.name;
  return { offset: 0, length: name === 'v2.6.38' ? 4 : 8 };
}

/** spec §2: typed access to one instance of the struct at `base`. */
export interface ApfDataView {
  readonly layout: ApfLayout;
  readonly base: number;
  /** Whether the layout has `token` (v5.8 onward). */
  readonly hasToken: boolean;
  /** Whether the layout has `enabled` (before ~v6.7). */
  readonly hasEnabled: boolean;
  /** offset 0: `flags` (`reason` in the v2.6.38 layout). */
  readFlags(): number;
  writeFlags(v: number): void;
  /** offset 4: `token`; throws on the v2.6.38 layout. */
  readToken(): number;
  writeToken(v: number): void;
  /** offset 64: `enabled`; throws on the v6.7 layout. */
  readEnabled(): number;
  writeEnabled(v: number): void;
}

function u32(v: number, what: string): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`kvm_vcpu_pv_apf_data.${what}: not a u32: ${v}`);
  return v;
}

/** spec §2: a view of the struct in `mem` at `base` (64-byte aligned) using `layout`. */
export function apfDataView(layout: ApfLayout | ApfLayoutName, mem: LeMemory, base: number): ApfDataView {
  const l = typeof layout === 'string' ? apfLayout(layout) : layout;
  if (!Number.isSafeInteger(base) || base < 0 || base % APF_DATA_ALIGN !== 0) {
    throw new RangeError(`kvm_vcpu_pv_apf_data must be 64-byte aligned: 0x${base.toString(16)}`);
  }
  const flags = l.fields.flags ?? l.fields.reason;
  const token = l.fields.token;
  const enabled = l.fields.enabled;
  if (flags === undefined) throw new Error(`layout ${l.name} has no field at offset 0`);
  const need = (f: ApfFieldSpec | undefined, name: string, why: string): ApfFieldSpec => {
    if (f === undefined) throw new Error(`kvm_vcpu_pv_apf_data layout ${l.name} has no '${name}' field (${why})`);
    return f;
  };
  const noToken = 'offset 4 is padding before v5.8';
  const noEnabled = 'removed from the struct in ~v6.7; the guest keeps its own per-CPU flag';
  return {
    layout: l,
    base,
    hasToken: token !== undefined,
    hasEnabled: enabled !== undefined,
    readFlags: () => mem.readU32(base + flags.offset),
    writeFlags: (v) => mem.writeU32(base + flags.offset, u32(v, 'flags')),
    readToken: () => mem.readU32(base + need(token, 'token', noToken).offset),
    writeToken: (v) => mem.writeU32(base + need(token, 'token', noToken).offset, u32(v, 'token')),
    readEnabled: () => mem.readU32(base + need(enabled, 'enabled', noEnabled).offset),
    writeEnabled: (v) => mem.writeU32(base + need(enabled, 'enabled', noEnabled).offset, u32(v, 'enabled')),
  };
}
