/**
 * Generated scenarios are valid scenario files (the loader's schema and cross-field checks), are
 * a function of (seed, run index) only, and cover what docs/fuzzing.md says is randomized.
 */
import { docToScenario } from '../../harness/fuzz/case';
import type { Json, JsonObject } from '../../harness/fuzz/doc';
import { predictedToken } from '../../harness/fuzz/generators';
import { caseDoc } from '../../harness/fuzz/search';
import { runSeed } from '../../harness/fuzz/seeds';
import { allocApfToken } from '../../shared-abi/apf';
import { spec } from './support';

const asObj = (v: Json | undefined): JsonObject => (v !== undefined && v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as JsonObject) : {});
const asArr = (v: Json | undefined): readonly Json[] => (Array.isArray(v) ? (v as readonly Json[]) : []);

/** Every `op`/`do` value anywhere in a document. */
function kinds(v: Json, out = new Set<string>()): Set<string> {
  if (Array.isArray(v)) for (const x of v as readonly Json[]) kinds(x, out);
  else if (v !== null && typeof v === 'object') {
    const o = v as JsonObject;
    if (typeof o.op === 'string') out.add(`op:${o.op}`);
    if (typeof o.do === 'string') out.add(`do:${o.do}`);
    for (const x of Object.values(o)) kinds(x, out);
  }
  return out;
}

describe('trusted-mode generator', () => {
  const combos = [
    spec('trusted'),
    spec('trusted', { size: 'medium' }),
    spec('trusted', { size: 'large' }),
    spec('trusted', { guest: 'linux-5.2', host: 'linux-4.19' }),
    spec('trusted', { guest: 'linux-5.9', host: 'linux-5.8', size: 'medium' }),
    spec('trusted', { guest: 'linux-6.6', host: 'linux-6.6' }),
  ];

  it.each(combos.map((s) => [`${s.gen.guest} on ${s.gen.host}, ${s.gen.size}`, s] as const))('produces valid scenarios: %s', (_name, s) => {
    for (let i = 0; i < 60; i++) {
      const doc = caseDoc(s, 11, i);
      expect(() => docToScenario(doc)).not.toThrow();
    }
  });

  it('is a function of (seed, run index) only', () => {
    const s = spec('trusted');
    expect(caseDoc(s, 5, 3)).toEqual(caseDoc(s, 5, 3));
    expect(caseDoc(s, 5, 3)).not.toEqual(caseDoc(s, 5, 4));
    expect(caseDoc(s, 5, 3)).not.toEqual(caseDoc(s, 6, 3));
    expect(runSeed('abc', 0)).toBe(runSeed('abc', 0));
    expect(runSeed(1, 0)).toBe(runSeed('1', 0));
  });

  it('covers the workload, host behaviour, injected events and schedule knobs', () => {
    const seen = new Set<string>();
    const s = spec('trusted', { size: 'medium' });
    for (let i = 0; i < 400; i++) {
      const d = caseDoc(s, 1, i);
      for (const k of kinds(d)) seen.add(k);
      const m = asObj(d.machine);
      const host = asObj(m.host);
      const guest = asObj(m.guest);
      for (const k of ['stepJitter', 'allocFailure', 'tokenCounter', 'exitCost']) if (host[k] !== undefined) seen.add(`host.${k}`);
      for (const k of ['nmiUserRead', 'hz']) if (guest[k] !== undefined) seen.add(`guest.${k}`);
      for (const [k, v] of Object.entries(asObj(guest.toggles))) seen.add(`guest.toggles.${k}=${String(v)}`);
      if (typeof m.vcpus === 'number') seen.add(`vcpus:${m.vcpus}`);
      const hm = asObj(d.hostMemory);
      for (const k of ['limitPages', 'evictions']) if (hm[k] !== undefined) seen.add(`hostMemory.${k}`);
      for (const p of asArr(hm.pages)) seen.add(`backing:${String(asObj(p).backing)}`);
      for (const l of Object.values(asObj(hm.latency))) seen.add(`latency:${typeof l === 'string' ? 'fixed' : Object.keys(asObj(l))[0] ?? '?'}`);
      for (const t of asArr(d.tasks)) {
        const task = asObj(t);
        seen.add(`task:${String(task.kind ?? 'user')}`);
        if (task.mm !== undefined) seen.add('task:thread');
        if (task.affinity !== undefined) seen.add('task:affinity');
      }
      for (const e of asArr(d.events)) seen.add(asObj(e).on !== undefined ? `on:${String(asObj(asObj(e).on).event)}` : 'at');
    }
    const want = [
      'vcpus:1', 'vcpus:2', 'vcpus:3', 'task:user', 'task:kthread', 'task:thread', 'task:affinity',
      'op:touch', 'op:compute', 'op:sleep', 'op:yield', 'op:syscall', 'op:loop', 'op:copy_from_user', 'op:copy_to_user', 'op:kernel_touch',
      'op:preempt_disable', 'op:local_irq_disable', 'op:rcu_read_lock', 'op:spin_lock', 'op:schedule',
      'backing:swapped', 'backing:remote', 'latency:fixed', 'latency:uniform', 'latency:exponential', 'hostMemory.limitPages', 'hostMemory.evictions',
      'host.stepJitter', 'host.allocFailure', 'host.tokenCounter', 'host.exitCost', 'guest.nmiUserRead', 'guest.hz',
      'guest.toggles.config_preempt=false', 'guest.toggles.nmi_saves_cr2=false',
      'do:nmi', 'do:smi', 'do:init', 'do:cpu_offline', 'do:cpu_online', 'do:apf_disable', 'do:apf_enable', 'do:lapic_disable', 'do:lapic_enable',
      'do:suspend', 'do:resume', 'do:save_restore', 'do:evict', 'do:irq', 'do:page_ready',
      'at', 'on:kvm_async_pf_not_present', 'on:kvm_inj_exception', 'on:apf_token_clear', 'on:kvm_async_pf_completed', 'on:sysvec_kvm_asyncpf_interrupt',
    ];
    expect(want.filter((k) => !seen.has(k))).toEqual([]);
  });

  it('predicts the tokens the host hands out', () => {
    expect(predictedToken(0, 0, 0, true)).toBe(0x1000);
    expect(predictedToken(1, 1, 0, true)).toBe(0x2001);
    expect(predictedToken(0, 0, 0, false)).toBe(0);
    let id = 0xffffe;
    const host: number[] = [];
    for (let i = 0; i < 3; i++) {
      const a = allocApfToken(id, 2, { avoidZero: true });
      host.push(a.token);
      id = a.nextId;
    }
    expect([0, 1, 2].map((n) => predictedToken(2, n, 0xffffe, true))).toEqual(host);
  });
});

describe('untrusted-guest generator', () => {
  it.each(['current', 'linux-5.8', 'linux-4.19', 'linux-3.0'] as const)('produces valid bare-guest scenarios for host %s', (host) => {
    for (const size of ['small', 'large'] as const) {
      for (let i = 0; i < 40; i++) {
        const doc = caseDoc(spec('untrusted', { host, size }), 3, i);
        const sc = docToScenario(doc);
        expect(sc.bare).toBeDefined();
        // Only host-writes judges the host in this mode; the others judge guests.
        expect(Object.entries(sc.checkers).filter(([, v]) => v !== false).map(([k]) => k)).toEqual(['host-writes']);
      }
    }
  });

  it('covers hostile MSRs, struct writes, GPAs, resets and re-enables', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 300; i++) {
      const d = caseDoc(spec('untrusted', { size: 'medium' }), 2, i);
      for (const k of kinds(d)) seen.add(k);
      for (const st of asArr(asObj(d.bare).script)) {
        const o = asObj(st);
        if (o.op === 'wrmsr') seen.add(`msr:${String(o.msr)}`);
      }
      if (asObj(d.machine).cpuid !== undefined) seen.add('cpuid');
    }
    for (const k of ['op:wrmsr', 'op:rdmsr', 'op:write_area', 'op:touch', 'op:apf_enable', 'op:apf_disable', 'op:ack', 'op:cpl', 'op:lapic', 'op:policy', 'op:wait', 'op:repeat',
      'msr:ASYNC_PF_EN', 'msr:ASYNC_PF_INT', 'msr:ASYNC_PF_ACK', 'msr:0x830', 'do:set_msr', 'do:init', 'do:reset', 'do:nmi', 'do:smi', 'do:save_restore', 'do:evict', 'cpuid']) {
      expect([k, seen.has(k)]).toEqual([k, true]);
    }
  });
});
