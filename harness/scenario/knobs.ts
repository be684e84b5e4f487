/**
 * Every host and guest configuration knob a scenario file can set, declared once: the key in the
 * file, the field of the layer's own config it sets (`VmConfig` for the host, `GuestKernelOptions`
 * for the guest), the file notation (a zod schema whose output has that field's type, checked by
 * the compiler), and its description. The scenario schema's `machine.host` / `machine.guest`
 * entries, the parsed `HostSpec` / `GuestSpec` types and the mapping into the layers' configs are
 * all derived from these tables; the default of each knob is the layer's own (see its field).
 *
 * A new knob: add the field to `VmConfig` or `GuestKernelOptions`, then one line here.
 */
import { z } from 'zod';
import type { Gpa, Gva } from '../../shared-abi/addr';
import type { VmConfig } from '../../host/config';
import type { GuestKernelOptions } from '../../guest/kernel';
import { bool, choice, GvaHex, HexOrInt, int, Time, U32 } from './scalars';

/** One knob: the layer field `to`, the file notation `schema`, and what it means. */
export interface Knob<To extends string, V> {
  readonly to: To;
  readonly schema: z.ZodType<V>;
  readonly description: string | undefined;
}

type AnyKnobs = Readonly<Record<string, Knob<string, unknown>>>;

/** A knob of a layer config `C`: the schema's output must have the type of `C[to]`. */
const knobOf =
  <C>() =>
  <K extends keyof C & string>(to: K, schema: z.ZodType<NonNullable<C[K]>>, description?: string): Knob<K, NonNullable<C[K]>> => ({ to, schema, description });

const host = knobOf<VmConfig>();
const guest = knobOf<GuestKernelOptions>();

const Probability = z.string({ error: 'expected a probability like "1/8"' }).transform((v, ctx) => {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(v);
  const num = Number(m?.[1]);
  const den = Number(m?.[2]);
  if (m === null || !(den > 0) || num > den) {
    ctx.addIssue({ code: 'custom', message: `expected a probability like "1/8" (numerator <= denominator), got "${v}"`, input: v });
    return z.NEVER;
  }
  return { numerator: num, denominator: den };
});

const Address = GvaHex.transform((v) => v as Gva);

const GpaPage = HexOrInt('a guest-physical page address').transform((v, ctx) => {
  if (v % 4096 !== 0 || v < 0x1000 || v > 0xf000) {
    ctx.addIssue({ code: 'custom', message: `expected a page-aligned guest-physical address from 0x1000 to 0xf000 (the free low pages), got 0x${v.toString(16)}`, input: v });
    return z.NEVER;
  }
  return v as Gpa;
});

/** `machine.host` knobs besides `profile` and `toggles`, in the order the schema lists them. */
export const HOST_KNOBS = {
  lapic: host('lapic', choice(['in-kernel', 'userspace'], 'expected "in-kernel" or "userspace"')),
  hltPassthrough: host('hltPassthrough', bool('hltPassthrough'), 'KVM_X86_DISABLE_EXITS_HLT.'),
  protectedState: host('protectedState', bool('protectedState'), 'SEV-ES/SNP/TDX: CPL not readable by the host.'),
  enforcePvCpuid: host('enforcePvCpuid', bool('enforcePvCpuid'), 'KVM_CAP_ENFORCE_PV_FEATURE_CPUID.'),
  exitCost: host('exitCostNs', Time, 'Cost of a VM exit round trip.'),
  tokenCounter: host('apfTokenCounter', U32, 'Initial APF token counter of every vCPU (apf.id), e.g. 0xfffff to reach the wrap-around.'),
  workerStart: host(
    'workerStartNs',
    Time,
    'Delay from queueing an async page fault to its worker starting the page-in (default 0). A queue clear cancels work not yet started (its page is never fetched) and waits for work already paging in.',
  ),
  stepJitter: host(
    'stepJitterNs',
    Time,
    'Schedule perturbation (default off): each vCPU run-loop iteration comes up to this much later, uniformly, from the PRNG stream host.jitter.',
  ),
  allocFailure: host('asyncAllocFailure', Probability, 'Probability that allocating an async PF work item fails ("1/8"): the fault goes synchronous.'),
} as const satisfies AnyKnobs;

/** `machine.guest` knobs besides `profile` and `toggles`, in the order the schema lists them. */
export const GUEST_KNOBS = {
  hz: guest('hz', int('a timer frequency in Hz', 1, 10_000), 'Guest timer tick rate (CONFIG_HZ).'),
  hungTaskTimeout: guest('hungTaskTimeoutNs', Time, 'Hung-task detector timeout (virtual time).'),
  nmiUserRead: guest('nmiUserRead', Address, "Address the perf-style NMI handler reads in the interrupted task's address space (an NMI that can fault)."),
  dummyAllocFailures: guest(
    'dummyAllocFailures',
    int('a count', 0, 1_000_000),
    'The first n kzalloc(GFP_ATOMIC) calls for dummy nodes in kvm_async_pf_task_wake fail (default 0): the guest relaxes and looks again.',
  ),
  entryStack: guest(
    'entryStack',
    GpaPage,
    'Guest-physical page holding the CPUs\' entry stacks (TSS.RSP0/IST, CPU n at +64n), 0x1000-0xf000: every event delivered through the IDT pushes its frame there, so a swapped-out page makes the delivery exit and the event be re-injected (default: delivery touches no memory).',
  ),
  idleRead: guest(
    'idleRead',
    Address,
    'Kernel address the idle task reads, interrupts on, on every pass of its idle loop (a kernel-mode fault in the idle task when the host swapped it out).',
  ),
} as const satisfies AnyKnobs;

/** The values of a knob table after parsing, under the layer's field names (all optional). */
export type KnobValues<T extends AnyKnobs> = { readonly [K in keyof T as T[K]['to']]?: T[K] extends Knob<string, infer V> ? V : never };

/** The zod shape of a knob table: each knob optional, under its file key. */
export function knobShape<T extends AnyKnobs>(table: T): { [K in keyof T]: z.ZodOptional<T[K]['schema']> } {
  const shape: Record<string, z.ZodOptional<z.ZodType>> = {};
  for (const [key, k] of Object.entries(table)) {
    const opt = k.schema.optional();
    shape[key] = k.description === undefined ? opt : opt.meta({ description: k.description });
  }
  return shape as { [K in keyof T]: z.ZodOptional<T[K]['schema']> };
}

/** The knobs set in `parsed` (file keys), renamed to the layer's fields; unset knobs are absent. */
export function knobValues<T extends AnyKnobs>(table: T, parsed: Readonly<Record<string, unknown>> | undefined): KnobValues<T> {
  const out: Record<string, unknown> = {};
  if (parsed !== undefined) for (const [key, k] of Object.entries(table)) if (parsed[key] !== undefined) out[k.to] = parsed[key];
  return out as KnobValues<T>;
}

/** The knobs of `spec` (already under the layer's field names), for the layer's config; unset knobs are absent. */
export function layerKnobs<T extends AnyKnobs>(table: T, spec: KnobValues<T>): KnobValues<T> {
  const src = spec as Readonly<Record<string, unknown>>;
  const out: Record<string, unknown> = {};
  for (const k of Object.values(table)) if (src[k.to] !== undefined) out[k.to] = src[k.to];
  return out as KnobValues<T>;
}
