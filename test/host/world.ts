/**
 * Test fixtures for host tests: a simulation, guest memory, a VM with one or more vCPUs running
 * scripted guests, identity-mapped page tables, and the usual protocol programs (enable APF,
 * page-not-present handler, page-ready interrupt handler).
 */
import { PAGE_SIZE, type Gva } from '../../shared-abi/addr';
import { CR0_PE, CR0_PG, PTE_P, PTE_RW, PTE_US, type Insn, type InsnResult } from '../../shared-abi/arch';
import { kvmFeatureEax } from '../../shared-abi/cpuid';
import {
  encodeAsyncPfEn,
  MSR_KVM_ASYNC_PF_ACK,
  MSR_KVM_ASYNC_PF_EN,
  MSR_KVM_ASYNC_PF_INT,
  X86_MSR,
} from '../../shared-abi/msr';
import { HYPERVISOR_CALLBACK_VECTOR } from '../../shared-abi/vectors';
import { Simulation } from '../../sim/engine';
import { GuestMemory } from '../../sim/memory';
import { TraceRecorder, type TraceRecord } from '../../sim/trace';
import type { HostMemoryConfig, HostProfileName, HostToggle, VmConfig } from '../../host/config';
import { Kvm, type KvmVcpu } from '../../host/kvm';
import { ScriptedGuest, type Handler, type Program, type ScriptedGuestOptions } from '../support/scripted-guest';

export const MEM_PAGES = 1024; // 4 MiB
/** Per-vCPU APF areas: gfn 1, at 0x1000 + 0x40 * vcpu. */
export const AREA = 0x1000;
export const areaOf = (vcpu: number): number => AREA + 0x40 * vcpu;
/** Page tables from gfn 0x10 (identity map of all guest memory, user-accessible). */
export const PT_ROOT = 0x10 * PAGE_SIZE;
/** Data pages tests make non-resident. */
export const DATA_GFN = 0x100;
export const dataGpa = (i: number): number => (DATA_GFN + i) * PAGE_SIZE;

export const ALL_APF_FEATURES = kvmFeatureEax('ASYNC_PF', 'ASYNC_PF_VMEXIT', 'ASYNC_PF_INT');
export const SPIV_ON = 0x1ffn;

/** Writes a 4-level identity map of `pages` frames at PT_ROOT (PML4, PDPT, PD, PTs). */
export function identityMap(mem: GuestMemory, pages: number): void {
  const flags = PTE_P | PTE_RW | PTE_US;
  const pml4 = PT_ROOT;
  const pdpt = pml4 + PAGE_SIZE;
  const pd = pdpt + PAGE_SIZE;
  const pt0 = pd + PAGE_SIZE;
  const entry = (at: number, target: number): void => {
    mem.writeU32(at, (target | flags) >>> 0);
    mem.writeU32(at + 4, 0);
  };
  entry(pml4, pdpt);
  entry(pdpt, pd);
  const nPt = Math.ceil(pages / 512);
  for (let t = 0; t < nPt; t++) {
    entry(pd + t * 8, pt0 + t * PAGE_SIZE);
    for (let i = 0; i < 512 && t * 512 + i < pages; i++) entry(pt0 + t * PAGE_SIZE + i * 8, (t * 512 + i) * PAGE_SIZE);
  }
}

export interface WorldOptions {
  readonly profile?: HostProfileName;
  readonly toggles?: Partial<Record<HostToggle, boolean>>;
  readonly vm?: Partial<Omit<VmConfig, 'profile' | 'toggles' | 'memory'>>;
  readonly memory?: HostMemoryConfig;
  /** Guests per vCPU (default: one vCPU with `guest`). */
  readonly guests?: readonly ScriptedGuestOptions[];
  readonly guest?: ScriptedGuestOptions;
  /** Paging on with the identity map (default true). */
  readonly paging?: boolean;
  readonly cpl?: 0 | 1 | 2 | 3;
  readonly ifFlag?: boolean;
  readonly seed?: number;
  readonly start?: boolean;
}

export interface World {
  readonly sim: Simulation;
  readonly mem: GuestMemory;
  readonly kvm: Kvm;
  readonly v: KvmVcpu;
  readonly guest: ScriptedGuest;
  readonly guests: readonly ScriptedGuest[];
  readonly rec: TraceRecorder;
  /** Host-side records by event name. */
  ev(event: string, pattern?: Readonly<Record<string, unknown>>): TraceRecord[];
  run(ns: number): void;
}

export function makeWorld(o: WorldOptions = {}): World {
  const sim = new Simulation({ seed: o.seed ?? 1, maxEvents: 2_000_000 });
  const mem = new GuestMemory(MEM_PAGES * PAGE_SIZE);
  const rec = new TraceRecorder(sim.trace);
  identityMap(mem, MEM_PAGES);
  const kvm = new Kvm(sim, mem, {
    profile: o.profile ?? 'current',
    toggles: o.toggles,
    kvmFeatures: ALL_APF_FEATURES,
    memory: o.memory,
    ...o.vm,
  });
  const specs = o.guests ?? [o.guest ?? {}];
  const guests = specs.map((s) => new ScriptedGuest(s));
  guests.forEach((g, i) => {
    const v = kvm.createVcpu(i);
    v.cpu.attach(g);
    if (o.paging !== false) {
      v.cpu.cr3 = PT_ROOT;
      v.cpu.setCr0(CR0_PE | CR0_PG);
    }
    v.cpu.cpl = o.cpl ?? 3;
    v.cpu.ifFlag = o.ifFlag ?? true;
  });
  if (o.start !== false) kvm.start();
  const matches = (r: TraceRecord, p: Readonly<Record<string, unknown>>): boolean => Object.entries(p).every(([k, x]) => r[k] === x);
  return {
    sim,
    mem,
    kvm,
    v: kvm.vcpu(0),
    guest: guests[0]!,
    guests,
    rec,
    ev: (event, pattern = {}) => rec.records.filter((r) => r.event === event && matches(r, pattern)),
    run: (ns) => void sim.runFor(ns),
  };
}

/** EN value for the per-vCPU area: ENABLED | DELIVERY_AS_INT (a v5.9+ guest). */
export const enModern = (vcpu = 0, extra: { sendAlways?: boolean; vmexit?: boolean } = {}): bigint =>
  encodeAsyncPfEn({ enabled: true, deliveryAsInt: true, sendAlways: extra.sendAlways, deliveryAsPfVmexit: extra.vmexit, gpa: areaOf(vcpu) });
/** EN value of a ≤v5.8 guest: ENABLED only (plus SEND_ALWAYS if asked). */
export const enOld = (vcpu = 0, sendAlways = false): bigint => encodeAsyncPfEn({ enabled: true, sendAlways, gpa: areaOf(vcpu) });

/** Host-initiated setup as a v5.9+ guest would do it: LAPIC on, INT = 0xf3, EN. */
export function enableModern(w: World, vcpu = 0, extra: { sendAlways?: boolean; vmexit?: boolean } = {}): void {
  expectTrue(w.kvm.setMsr(vcpu, X86_MSR.X2APIC_SPIV, SPIV_ON));
  expectTrue(w.kvm.setMsr(vcpu, MSR_KVM_ASYNC_PF_INT, BigInt(HYPERVISOR_CALLBACK_VECTOR)));
  expectTrue(w.kvm.setMsr(vcpu, MSR_KVM_ASYNC_PF_EN, enModern(vcpu, extra)));
}

function expectTrue(b: boolean): void {
  if (!b) throw new Error('setup MSR write refused');
}

/** A main program that touches each address once (4-byte loads) and records each value. */
export const touch =
  (...gvas: number[]): Program =>
  function* (g) {
    for (const a of gvas) {
      const val: InsnResult = yield { op: 'load', gva: a as Gva, size: 4 };
      g.note('touched', { gva: a, value: val });
    }
  };

/** A v5.9+-style page-ready interrupt handler: EOI, read token, clear it, ACK. */
export const pageReadyHandler =
  (vcpu = 0): Handler =>
  function* (_frame, g) {
    yield { op: 'wrmsr', msr: X86_MSR.X2APIC_EOI, value: 0n };
    const token: InsnResult = yield { op: 'load', gva: (areaOf(vcpu) + 4) as Gva, size: 4 };
    g.note('page_ready', { token });
    yield { op: 'store', gva: (areaOf(vcpu) + 4) as Gva, size: 4, value: 0 };
    yield { op: 'wrmsr', msr: MSR_KVM_ASYNC_PF_ACK, value: 1n };
  };

/** #PF handler: read and clear flags, note (flags, CR2), return (the access is retried). */
export const apfPfHandler =
  (vcpu = 0): Handler =>
  function* (frame, g) {
    const flags: InsnResult = yield { op: 'load', gva: areaOf(vcpu) as Gva, size: 4 };
    yield { op: 'store', gva: areaOf(vcpu) as Gva, size: 4, value: 0 };
    const cr2: InsnResult = yield { op: 'read_cr', cr: 2 };
    g.note('pf', { flags, cr2, cpl: frame.savedCpl });
  };

/** Instruction helpers. */
export const wrmsr = (msr: number, value: bigint): Insn => ({ op: 'wrmsr', msr, value });
export const rdmsr = (msr: number): Insn => ({ op: 'rdmsr', msr });
