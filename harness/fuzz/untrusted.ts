/**
 * Untrusted-guest mode: the host is the target. The guest is the bare-metal scripted guest
 * (guest/bare) running a hostile script — random MSR indices and values (APF EN with any GPA
 * and reserved bits, INT with any vector, ACK at any time, x2APIC registers, IPIs including INIT
 * to itself), stores anywhere in the shared struct and elsewhere (page tables, beyond RAM), enables
 * and disables, CPL and IF changes, LAPIC off/on, hostile handler policies (never zero the token,
 * never ACK, never EOI, keep the flags) — while the VMM injects NMIs, SMIs, INIT/RESET,
 * host-initiated MSR writes (migration restores of arbitrary values), save/restore and evictions
 * at random times. Pages are swapped, post-copy remote or failing; CPUID may hide features, with
 * or without PV CPUID enforcement.
 *
 * The script then tries to recover (CPL 0, LAPIC on, EOIs, zero the slot, re-enable, ACK, wait)
 * so that outstanding work gets a chance to complete. The properties (harness/fuzz/properties.ts,
 * case.ts): the host never throws; every host write lies in bytes 0–7 of the registered area and
 * none happens after a disable or reset (the `host-writes` checker); every work item it accepted
 * is answered, dropped by a documented path, or still held at the end, and its bookkeeping adds up.
 */
import fc from 'fast-check';
import { resolveHostProfile } from '../../host/profiles';
import { KVM_MSR, X86_MSR } from '../../shared-abi/msr';
import { CHECKERS } from '../checkers';
import { compact, hexStr, time, type Json, type JsonObject } from './doc';
import type { GenOptions } from './generators';

const MEM = 2 * 1024 * 1024;
/** APF areas the script may register (64-byte aligned; 0x2000–0x5fff holds the page tables). */
const AREAS = [0x1000, 0x1040, 0x1fc0, 0x8000] as const;
/** Data pages the script touches: gfns 0x100–0x107. */
const DATA_GFN = 0x100;
const DATA_PAGES = 8;

export const UNTRUSTED_BUDGET = { maxEvents: 30_000, maxTime: '12ms' } as const;

type Step = JsonObject;

const u64Str = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }).map((v) => hexStr(v));

/** EN values: an area in RAM (often the script's own), at its end, beyond it, or anywhere, with any low 6 bits. */
const enValue = (area: number): fc.Arbitrary<string> =>
  fc
    .tuple(
      fc.oneof(
        { weight: 4, arbitrary: fc.constant(area) },
        { weight: 2, arbitrary: fc.constantFrom(...AREAS) },
        { weight: 1, arbitrary: fc.constantFrom(MEM - 64, MEM, 0x1_0000_0000, 0) },
        { weight: 1, arbitrary: fc.integer({ min: 0, max: MEM / 64 - 1 }).map((x) => x * 64) },
      ),
      fc.oneof({ weight: 3, arbitrary: fc.constantFrom(0x1, 0x9, 0xb, 0x3, 0xd) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 63 }) }),
    )
    .map(([gpa, low]) => hexStr(BigInt(gpa) | BigInt(low)));

const otherMsr = fc.oneof(
  fc.constantFrom(KVM_MSR.WALL_CLOCK_NEW, KVM_MSR.SYSTEM_TIME_NEW, KVM_MSR.STEAL_TIME, KVM_MSR.PV_EOI_EN, KVM_MSR.POLL_CONTROL, KVM_MSR.MIGRATION_CONTROL),
  fc.constantFrom(X86_MSR.X2APIC_SPIV, X86_MSR.X2APIC_EOI, X86_MSR.IA32_TSC_DEADLINE, X86_MSR.X2APIC_LVT_TIMER, X86_MSR.X2APIC_TPR, X86_MSR.IA32_APIC_BASE),
  fc.integer({ min: 0, max: 0xffffffff }),
);

/** (msr, value) pairs a hostile guest or VMM writes. */
const msrWrite = (area: number): fc.Arbitrary<[string, string]> =>
  fc.oneof(
    { weight: 4, arbitrary: enValue(area).map((v): [string, string] => ['ASYNC_PF_EN', v]) },
    { weight: 2, arbitrary: fc.integer({ min: 0, max: 0x3ff }).map((v): [string, string] => ['ASYNC_PF_INT', hexStr(v)]) },
    { weight: 2, arbitrary: fc.integer({ min: 0, max: 3 }).map((v): [string, string] => ['ASYNC_PF_ACK', hexStr(v)]) },
    { weight: 2, arbitrary: fc.tuple(otherMsr, u64Str).map(([m, v]): [string, string] => [hexStr(m), v]) },
    {
      weight: 1,
      // An IPI from the ICR: fixed, NMI or INIT, to itself or everyone (INIT ends the script: the vCPU resets).
      arbitrary: fc.tuple(fc.integer({ min: 0, max: 255 }), fc.constantFrom(0, 0, 4, 5), fc.constantFrom(0, 1, 2)).map(([vec, dm, sh]): [string, string] => [hexStr(X86_MSR.X2APIC_ICR), hexStr(vec | (dm << 8) | (sh << 18))]),
    },
  );

const addrArb = (area: number): fc.Arbitrary<number> =>
  fc.oneof(
    { weight: 10, arbitrary: fc.tuple(fc.integer({ min: 0, max: DATA_PAGES - 1 }), fc.integer({ min: 0, max: 1023 })).map(([p, w]) => (DATA_GFN + p) * 4096 + w * 4) },
    { weight: 3, arbitrary: fc.integer({ min: 0, max: 31 }).map((w) => area + w * 4) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: MEM / 4 - 1 }).map((w) => w * 4) },
    { weight: 1, arbitrary: fc.integer({ min: MEM / 4, max: MEM / 2 }).map((w) => w * 4) },
  );

const areaValue = fc.oneof(fc.constantFrom(0, 1, 2, 0xffffffff), fc.integer({ min: 0, max: 0xffffffff }));

const simpleStep = (area: number): fc.Arbitrary<Step> =>
  fc.oneof(
    { weight: 4, arbitrary: msrWrite(area).map(([msr, value]): Step => ({ op: 'wrmsr', msr, value })) },
    { weight: 1, arbitrary: msrWrite(area).map(([msr]): Step => ({ op: 'rdmsr', msr })) },
    { weight: 3, arbitrary: fc.record({ field: fc.constantFrom('flags', 'token'), value: areaValue }).map((r): Step => ({ op: 'write_area', ...r })) },
    {
      weight: 12,
      arbitrary: fc.record({ addr: addrArb(area), write: fc.boolean(), value: fc.integer({ min: 0, max: 0xffffffff }) }).map((r): Step =>
        compact({ op: 'touch', addr: hexStr(r.addr), write: r.write ? true : undefined, value: r.write ? r.value : undefined }),
      ),
    },
    {
      weight: 2,
      arbitrary: fc
        .record({ sendAlways: fc.boolean(), int: fc.boolean(), vector: fc.option(fc.integer({ min: 0, max: 255 }), { nil: undefined }), pfVmexit: fc.boolean(), intAfterEn: fc.boolean(), reserved: fc.constantFrom(0, 0, 0, 0x10, 0x20, 0x30) })
        .map((r): Step =>
          compact({
            op: 'apf_enable',
            sendAlways: r.sendAlways ? true : undefined,
            int: r.int ? undefined : false,
            vector: r.vector,
            pfVmexit: r.pfVmexit ? true : undefined,
            intAfterEn: r.intAfterEn ? true : undefined,
            reserved: r.reserved === 0 ? undefined : hexStr(r.reserved),
          }),
        ),
    },
    { weight: 1, arbitrary: fc.constantFrom<Step>({ op: 'apf_disable' }, { op: 'ack' }, { op: 'eoi' }, { op: 'sti' }, { op: 'cli' }, { op: 'read_area' }) },
    { weight: 1, arbitrary: fc.constantFrom(0, 3).map((cpl): Step => ({ op: 'cpl', cpl })) },
    { weight: 1, arbitrary: fc.integer({ min: 1, max: 50_000 }).map((ns): Step => ({ op: 'spin', for: time(ns) })) },
    { weight: 1, arbitrary: fc.boolean().map((enable): Step => ({ op: 'lapic', enable })) },
    {
      weight: 1,
      arbitrary: fc
        .record({ clearFlags: fc.boolean(), wait: fc.constantFrom('none', 'none', 'sti_hlt'), waitFor: fc.constantFrom('token', 'token_or_wake_all'), limit: fc.integer({ min: 10, max: 300 }), zeroToken: fc.boolean(), ack: fc.boolean(), eoi: fc.boolean() })
        .map((r): Step => ({ op: 'policy', pf: { clearFlags: r.clearFlags, wait: r.wait, waitFor: r.waitFor, limit: `${r.limit}us` }, pageReady: { zeroToken: r.zeroToken, ack: r.ack, eoi: r.eoi } })),
    },
    {
      weight: 1,
      arbitrary: fc
        .record({
          until: fc.oneof(
            fc.constant<JsonObject>({ kind: 'page_ready' }),
            fc.constant<JsonObject>({ kind: 'wake_all' }),
            fc.integer({ min: 1, max: 4 }).map((count): JsonObject => ({ kind: 'async_pf', count })),
            fc.integer({ min: 0, max: 0x3fff }).map((t): JsonObject => ({ kind: 'token', token: hexStr(t << 12) })),
          ),
          timeout: fc.integer({ min: 5, max: 300 }),
        })
        .map((r): Step => ({ op: 'wait', until: r.until, timeout: `${r.timeout}us`, mode: 'spin' })),
    },
    { weight: 1, arbitrary: fc.constantFrom(0x40000000, 0x40000001, 1, 0x80000001).map((leaf): Step => ({ op: 'cpuid', leaf: hexStr(leaf) })) },
  );

const stepArb = (area: number): fc.Arbitrary<Step> =>
  fc.oneof(
    { weight: 12, arbitrary: simpleStep(area) },
    { weight: 1, arbitrary: fc.record({ times: fc.integer({ min: 2, max: 3 }), body: fc.array(simpleStep(area), { minLength: 1, maxLength: 3 }) }).map((r): Step => ({ op: 'repeat', ...r })) },
  );

const pageRefArb = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: 0, max: DATA_PAGES - 1 }).map((p): JsonObject => ({ gfn: hexStr(DATA_GFN + p) })) },
  { weight: 1, arbitrary: fc.constantFrom(1, 2, 3, 4, 5, 8).map((g): JsonObject => ({ gfn: hexStr(g) })) },
);

const eventActionArb = (area: number): fc.Arbitrary<JsonObject> =>
  fc.oneof(
    { weight: 3, arbitrary: fc.constant<JsonObject>({ do: 'nmi', cpu: 0 }) },
    { weight: 2, arbitrary: fc.integer({ min: 2, max: 50 }).map((us): JsonObject => ({ do: 'smi', cpu: 0, duration: `${us}us` })) },
    { weight: 1, arbitrary: fc.constantFrom<JsonObject>({ do: 'init', cpu: 0 }, { do: 'reset', cpu: 0 }) },
    { weight: 4, arbitrary: msrWrite(area).map(([msr, value]): JsonObject => ({ do: 'set_msr', cpu: 0, msr, value })) },
    { weight: 2, arbitrary: fc.record({ order: fc.constantFrom('en-int', 'int-en'), reset: fc.boolean() }).map((r): JsonObject => ({ do: 'save_restore', cpu: 0, ...compact({ order: r.order === 'en-int' ? undefined : r.order, reset: r.reset ? undefined : false }) })) },
    { weight: 3, arbitrary: fc.array(pageRefArb, { minLength: 1, maxLength: 3 }).map((pages): JsonObject => ({ do: 'evict', pages })) },
  );

const latency = (lo: number, hi: number): fc.Arbitrary<Json> =>
  fc.oneof(
    fc.integer({ min: lo, max: hi }).map((ns): Json => time(ns)),
    fc.tuple(fc.integer({ min: lo, max: hi }), fc.integer({ min: 0, max: hi })).map(([min, span]): Json => ({ uniform: { min: time(min), max: time(min + span) } })),
  );

const KVM_FEATURE_SETS: readonly (readonly string[] | null)[] = [null, ['ASYNC_PF'], ['ASYNC_PF', 'ASYNC_PF_INT'], ['ASYNC_PF_INT'], ['ASYNC_PF', 'ASYNC_PF_VMEXIT', 'ASYNC_PF_INT'], []];

/** A guest that sets APF up properly first (LAPIC on, INT then EN, IF=1, optionally CPL 3). */
export function setupSteps(prefix: { readonly sendAlways: boolean; readonly user: boolean } | null, interruptPageReady: boolean): Step[] {
  if (prefix === null) return [];
  return [
    { op: 'lapic', enable: true },
    { op: 'apf_enable', ...(prefix.sendAlways ? { sendAlways: true } : {}), ...(interruptPageReady ? {} : { int: false }) },
    { op: 'sti' },
    ...(prefix.user ? [{ op: 'cpl', cpl: 3 }] : []),
  ];
}

/** The recovery suffix: a well-behaved kvm-unit-tests guest, for this host's page-ready style. */
export function healSteps(interruptPageReady: boolean): Step[] {
  return [
    { op: 'log', message: 'recovery: behave from here on' },
    { op: 'cpl', cpl: 0 },
    { op: 'cli' },
    { op: 'policy', pf: { clearFlags: true, wait: 'sti_hlt', waitFor: 'token_or_wake_all', limit: '500us' }, pageReady: { zeroToken: true, ack: interruptPageReady, eoi: true } },
    { op: 'lapic', enable: true },
    { op: 'eoi' },
    { op: 'eoi' },
    { op: 'eoi' },
    { op: 'write_area', field: 'flags', value: 0 },
    { op: 'write_area', field: 'token', value: 0 },
    { op: 'apf_enable', sendAlways: true, ...(interruptPageReady ? {} : { int: false }) },
    ...(interruptPageReady ? [{ op: 'ack' }] : []),
    { op: 'sti' },
    { op: 'wait', until: { kind: 'page_ready', count: 1_000_000 }, timeout: '3ms' },
  ];
}

/** Untrusted-guest scenario documents for the host profile and toggles of `opts`. */
export function untrustedDocArb(opts: GenOptions): fc.Arbitrary<JsonObject> {
  const host = resolveHostProfile(opts.host, opts.hostToggles);
  const maxSteps = opts.size === 'small' ? 8 : opts.size === 'medium' ? 14 : 24;
  const maxEvents = opts.size === 'small' ? 4 : opts.size === 'medium' ? 6 : 10;
  const checkersOff: Record<string, boolean> = {};
  for (const c of CHECKERS) if (c.name !== 'host-writes') checkersOff[c.name] = false;
  return fc.integer({ min: 0, max: AREAS.length - 1 }).chain((areaIdx) => {
    const area = AREAS[areaIdx] ?? 0x1000;
    return fc
      .record({
        seed: fc.integer({ min: 0, max: 0x7fffffff }),
        exitCost: fc.option(fc.integer({ min: 100, max: 2000 }), { nil: undefined }),
        jitter: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 3000 })),
        allocFailure: fc.option(fc.integer({ min: 2, max: 8 }), { nil: undefined, freq: 4 }),
        tokenCounter: fc.option(fc.constantFrom(0xffffe, 0xfffff), { nil: undefined, freq: 6 }),
        features: fc.constantFrom(...KVM_FEATURE_SETS.keys()),
        enforce: fc.boolean(),
        userspaceLapic: fc.oneof({ weight: 12, arbitrary: fc.constant(false) }, { weight: 1, arbitrary: fc.constant(true) }),
        pages: fc.array(fc.constantFrom('swapped', 'swapped', 'remote', 'failing', 'resident'), { minLength: DATA_PAGES, maxLength: DATA_PAGES }),
        swap: fc.option(latency(1000, 300_000), { nil: undefined }),
        remote: fc.option(latency(10_000, 800_000), { nil: undefined }),
        fail: fc.option(latency(1000, 200_000), { nil: undefined }),
        limitPages: fc.option(fc.integer({ min: 1, max: 4 }), { nil: undefined, freq: 4 }),
        // Mostly start as a guest that set APF up (so faults go async and the host has work items to
        // lose), then misbehave; sometimes misbehave from the first instruction.
        prefix: fc.oneof({ weight: 1, arbitrary: fc.constant(null) }, { weight: 3, arbitrary: fc.record({ sendAlways: fc.boolean(), user: fc.boolean() }) }),
        script: fc.array(stepArb(area), { minLength: 1, maxLength: maxSteps }),
        events: fc.array(fc.record({ t: fc.integer({ min: 0, max: 2_000_000 }), action: eventActionArb(area) }), { maxLength: maxEvents }),
      })
      .map((m): JsonObject => {
        const features = KVM_FEATURE_SETS[m.features] ?? null;
        const latencyDoc = compact({ swap: m.swap, remote: m.remote, fail: m.fail });
        return compact({
          name: 'fuzz-untrusted',
          seed: m.seed,
          machine: compact({
            vcpus: 1,
            memory: '2MiB',
            host: compact({
              profile: opts.host,
              toggles: Object.keys(opts.hostToggles).length > 0 ? (opts.hostToggles as Record<string, boolean>) : undefined,
              lapic: m.userspaceLapic ? 'userspace' : undefined,
              enforcePvCpuid: m.enforce ? true : undefined,
              exitCost: m.exitCost === undefined ? undefined : time(m.exitCost),
              allocFailure: m.allocFailure === undefined ? undefined : `1/${m.allocFailure}`,
              tokenCounter: m.tokenCounter === undefined ? undefined : hexStr(m.tokenCounter),
              stepJitter: m.jitter === 0 ? undefined : time(m.jitter),
            }),
            cpuid: features === null ? undefined : [...features],
          }),
          hostMemory: compact({
            pages: m.pages.map((backing, i): JsonObject => ({ gfn: hexStr(DATA_GFN + i), backing })).filter((p) => p.backing !== 'resident'),
            latency: Object.keys(latencyDoc).length > 0 ? latencyDoc : undefined,
            limitPages: m.limitPages,
          }),
          bare: compact({
            script: [...setupSteps(m.prefix, host.toggles.interrupt_page_ready), ...m.script, ...healSteps(host.toggles.interrupt_page_ready)],
            pf: { wait: 'none' },
            apfArea: area === 0x1000 ? undefined : hexStr(area),
          }),
          events: m.events.length > 0 ? m.events.map((e): JsonObject => ({ at: time(e.t), ...e.action })) : undefined,
          checkers: checkersOff,
          budget: { ...UNTRUSTED_BUDGET },
        });
      });
  });
}
