/**
 * The bare-metal guest beyond one script on vCPU 0: any vCPU and several at once, a #PF handler
 * with a body of its own (MSR write, spin, a nested cold-page touch), a periodic LAPIC timer, and
 * INIT followed by SIPI (wait-for-SIPI, start at the vector's `sipi_entry`, APF reset by INIT).
 */
import * as path from 'path';
import { loadScenarioFile, scenarioFromValue } from '../../harness/scenario/load';
import { runScenario } from '../../harness/runner';
import type { TraceRecord } from '../../sim/trace';

type Rec = TraceRecord & Record<string, unknown>;

const swapped = (count: number, latency = '100us') => ({ pages: [{ gfn: '0x100', count, backing: 'swapped' }], latency: { swap: latency } });
const enable = [
  { op: 'lapic', enable: true },
  { op: 'apf_enable', sendAlways: true },
  { op: 'sti' },
  { op: 'wait', until: { kind: 'wake_all' }, timeout: '1ms' },
];

function run(file: Record<string, unknown>): { outcome: string; recs: Rec[]; ev: (event: string, cpu?: number) => Rec[] } {
  const s = scenarioFromValue({ machine: { memory: '4MiB', host: { profile: 'current' }, ...(file.machine as object) }, ...file }, undefined);
  const recs: Rec[] = [];
  const r = runScenario(s, { onRecord: (rec) => recs.push(rec as Rec) });
  return { outcome: r.outcome, recs, ev: (event, cpu) => recs.filter((x) => x.event === event && (cpu === undefined || x.cpu === cpu)) };
}

describe('the bare guest on any vCPU and on several', () => {
  test('"cpu": 2 runs the script on vCPU 2 only: its faults carry index 2 in the token, its area defaults to 0x1080', () => {
    const r = run({ machine: { vcpus: 4 }, hostMemory: swapped(2), bare: { cpu: 2, script: [...enable, { op: 'touch', addr: '0x100000', write: true }, { op: 'touch', addr: '0x101000' }] } });
    expect(r.outcome).toBe('completed');
    expect(r.ev('kvm_async_pf_enable').map((e) => [e.cpu, e.gpa])).toEqual([[2, 0x1080]]);
    const np = r.ev('kvm_async_pf_not_present');
    expect(np.map((e) => e.cpu)).toEqual([2, 2]);
    expect(np.map((e) => (e.token as number) & 0xfff)).toEqual([2, 2]);
    expect(r.ev('bare_interrupt').filter((e) => e.result === 'page_ready').map((e) => [e.cpu, e.token])).toEqual(np.map((e) => [2, e.token]));
    // The other three vCPUs ran an empty script: done at once, nothing else.
    expect(r.ev('bare_done').map((e) => e.cpu).sort()).toEqual([0, 1, 2, 3]);
    expect(r.ev('bare_msr').every((e) => e.cpu === 2)).toBe(true);
  });

  test('the last of 64 vCPUs: its default area 0x1fc0 ends where the page tables begin, and they stay intact', () => {
    const r = run({ machine: { vcpus: 64 }, hostMemory: swapped(1), bare: { cpu: 63, script: [...enable, { op: 'touch', addr: '0x100000', write: true }] } });
    expect(r.outcome).toBe('completed');
    expect(r.ev('kvm_async_pf_enable').map((e) => [e.cpu, e.gpa])).toEqual([[63, 0x1fc0]]);
    expect(r.ev('kvm_async_pf_not_present', 63)).toEqual([expect.objectContaining({ injected: true, token: 0x1000 | 63 })]);
    expect(r.ev('bare_done')).toHaveLength(64);
  });

    test('"cpus": two scripts at once, each with its own area and settings; section policies override the file-wide ones', () => {
    const touch = { op: 'touch', addr: '0x100000', write: true };
    const r = run({
      machine: { vcpus: 2 },
      hostMemory: swapped(2),
      bare: {
        pf: { wait: 'sti_hlt', waitFor: 'token' },
        cpus: [
          { cpu: 0, script: [...enable, touch] },
          { cpu: 1, apfArea: '0x800', pf: { wait: 'none' }, script: [...enable, { ...touch, addr: '0x101000' }, { op: 'wait', until: { kind: 'page_ready', count: 2 }, timeout: '1ms' }] },
        ],
      },
    });
    expect(r.outcome).toBe('completed');
    expect(r.ev('kvm_async_pf_enable').map((e) => [e.cpu, e.gpa])).toEqual([[0, 0x1000], [1, 0x800]]);
    // vCPU 0's handler waited for its token (file-wide policy); vCPU 1's returned at once (its own).
    expect(r.ev('bare_wait', 0).filter((e) => e.token !== undefined).map((e) => e.result)).toEqual(['token']);
    expect(r.ev('bare_wait', 1).filter((e) => e.token !== undefined)).toEqual([]);
    for (const cpu of [0, 1]) expect(r.ev('bare_interrupt', cpu).filter((e) => e.result === 'page_ready')).toHaveLength(1);
  });

  test('validation: a vCPU that does not exist, a second section for a vCPU, a shared area, an area on the page tables, sipi_entry inside repeat', () => {
    const bad = (bare: unknown, vcpus = 2): string => {
      try {
        scenarioFromValue({ machine: { vcpus }, bare }, undefined);
        return 'accepted';
      } catch (e) {
        return String(e instanceof Error ? e.message : e);
      }
    };
    expect(bad({ cpu: 3, script: [] })).toMatch(/vCPU 3 does not exist/);
    expect(bad({ cpus: [{ cpu: 1, script: [] }, { cpu: 1, script: [] }] })).toMatch(/vCPU 1 already has a script/);
    expect(bad({ cpus: [{ cpu: 0, script: [], apfArea: '0x1040' }, { cpu: 1, script: [] }] })).toMatch(/each vCPU needs its own/);
    expect(bad({ script: [{ op: 'repeat', times: 2, body: [{ op: 'sipi_entry', vector: 1 }] }] })).toMatch(/top level/);
    expect(bad({ cpu: 1, apfArea: '0x3000', script: [] })).toMatch(/overlaps the bare guest's page tables/);
    expect(bad({ script: [], pf: { body: [{ op: 'sipi_entry', vector: 1 }] } })).toMatch(/cannot run inside the #PF handler/);
    expect(bad({ cpus: [{ cpu: 0, script: [] }, { cpu: 1, script: [] }] })).toBe('accepted');
  });
});

describe('a #PF handler with a body', () => {
  const body = (steps: unknown[]) =>
    run({
      hostMemory: swapped(3),
      bare: { pf: { wait: 'sti_hlt', waitFor: 'token', body: steps }, script: [...enable, { op: 'touch', addr: '0x100000', write: true }, { op: 'cli' }] },
    });

  test('IF clear in the handler: the ACK is written, and a cold-page touch is faulted in synchronously, with no async #PF and no halt', () => {
    const r = body([{ op: 'ack' }, { op: 'spin', for: '5us' }, { op: 'touch', addr: '0x101000' }]);
    expect(r.outcome).toBe('completed');
    expect(r.ev('kvm_async_pf_not_present').map((e) => e.gva)).toEqual([0x100000]);
    expect(r.ev('kvm_async_pf_sync')).toEqual([expect.objectContaining({ gfn: 0x101, why: 'cannot_do', ok: true })]);
    expect(r.ev('kvm_async_pf_halt')).toEqual([]);
    const note = r.ev('bare_note').find((e) => String(e.message).startsWith('#PF handler body'));
    expect(note).toMatchObject({ if: false, cpl: 0 });
    // The ACK write came after the #PF was logged and before the handler's wait ended.
    const i = (pred: (e: Rec) => boolean) => r.recs.findIndex(pred);
    const pf = i((e) => e.event === 'bare_exception' && e.result === 'not_present');
    const ack = i((e) => e.event === 'kvm_msr' && e.ecx === 0x4b564d07 && e.write === true && e.t > (r.recs[pf]?.t ?? 0));
    const waited = i((e) => e.event === 'bare_wait' && e.result === 'token');
    expect(pf).toBeGreaterThanOrEqual(0);
    expect(ack).toBeGreaterThan(pf);
    expect(waited).toBeGreaterThan(ack);
  });

  test('after STI (and past the STI shadow) a touch in the handler is a nested async #PF, handled first; the body does not run again inside it', () => {
    const r = body([{ op: 'sti' }, { op: 'spin', for: '1us' }, { op: 'touch', addr: '0x101000' }]);
    expect(r.outcome).toBe('completed');
    const np = r.ev('kvm_async_pf_not_present');
    expect(np.map((e) => [e.gva, e.injected])).toEqual([[0x100000, true], [0x101000, true]]);
    const [outer, inner] = np.map((e) => e.token);
    expect(r.ev('bare_wait').filter((e) => e.token !== undefined).map((e) => e.token)).toEqual([inner, outer]);
    expect(r.ev('bare_note').filter((e) => String(e.message).startsWith('#PF handler body'))).toHaveLength(1);
    expect(r.ev('kvm_async_pf_sync')).toEqual([]);
  });

  test('re-enabling APF inside the handler queues a wake-all: a handler waiting for its token or a wake-all stops on the wake-all', () => {
    const r = run({
      hostMemory: swapped(1, '1ms'),
      bare: { pf: { waitFor: 'token_or_wake_all', body: [{ op: 'apf_enable', sendAlways: true }] }, script: [...enable, { op: 'touch', addr: '0x100000' }] },
    });
    expect(r.outcome).toBe('completed');
    expect(r.ev('kvm_async_pf_enable')).toHaveLength(2);
    const np = r.ev('kvm_async_pf_not_present');
    expect(np).toHaveLength(1);
    const pfWait = r.ev('bare_wait').find((e) => e.token === np[0]!.token);
    expect(pfWait).toMatchObject({ result: 'wake_all' });
    // The page-in was not dropped by the re-enable: its page-ready still comes (after the wait ended).
    expect(r.ev('kvm_async_pf_ready').map((e) => e.token)).toEqual([0xffffffff, 0xffffffff, np[0]!.token]);
  });

    test('touching the page being faulted in, from the handler with IF set: the gfn is outstanding, so the host halts the vCPU until it is in', () => {
    const r = body([{ op: 'sti' }, { op: 'spin', for: '1us' }, { op: 'touch', addr: '0x100000' }]);
    expect(r.outcome).toBe('completed');
    expect(r.ev('kvm_async_pf_not_present')).toHaveLength(1);
    expect(r.ev('kvm_async_pf_repeated_fault')).toEqual([expect.objectContaining({ gfn: 0x100 })]);
    expect(r.ev('kvm_async_pf_halt')).toEqual([expect.objectContaining({ gfn: 0x100, why: 'repeated' })]);
    expect(r.ev('kvm_async_pf_sync')).toEqual([]);
  });

    test('a touch right after STI is still in the STI shadow: interrupts are not allowed, so it is synchronous', () => {
    const r = body([{ op: 'sti' }, { op: 'touch', addr: '0x101000' }]);
    expect(r.ev('kvm_async_pf_not_present')).toHaveLength(1);
    expect(r.ev('kvm_async_pf_sync')).toEqual([expect.objectContaining({ gfn: 0x101, why: 'cannot_do' })]);
  });
});

describe('the LAPIC timer from the bare guest', () => {
  const timer = (mode: string, period: string, extra: unknown[] = []) =>
    run({
      hostMemory: swapped(1, '1ms'),
      bare: { script: [{ op: 'lapic', enable: true }, { op: 'lapic_timer', mode, period }, ...enable.slice(1), { op: 'touch', addr: '0x100000' }, ...extra], pf: { waitFor: 'token' } },
    });
  const ticks = (r: ReturnType<typeof run>) => r.ev('bare_interrupt').filter((e) => e.vector === 0xec).map((e) => e.t);

  test('periodic: a tick every period while the #PF handler waits; the wait still ends on its own token', () => {
    const r = timer('periodic', '250us');
    const t = ticks(r);
    expect(t.length).toBe(4);
    for (let i = 1; i < t.length; i++) expect(t[i]! - t[i - 1]!).toBe(250_000);
    expect(r.ev('bare_wait').filter((e) => e.token !== undefined).map((e) => e.result)).toEqual(['token']);
  });

  test('periodic below KVM\'s 200 us minimum is clamped to 200 us', () => {
    const r = timer('periodic', '50us');
    const t = ticks(r);
    expect(t.length).toBeGreaterThanOrEqual(4);
    for (let i = 1; i < t.length; i++) expect(t[i]! - t[i - 1]!).toBe(200_000);
  });

  test('one-shot fires once; off masks the timer', () => {
    expect(ticks(timer('oneshot', '250us'))).toHaveLength(1);
    const off = run({
      hostMemory: swapped(1, '1ms'),
      bare: {
        script: [{ op: 'lapic', enable: true }, { op: 'lapic_timer', mode: 'periodic', period: '250us' }, { op: 'sti' }, { op: 'wait', until: { kind: 'vector', vector: 0xec, count: 2 } }, { op: 'lapic_timer', mode: 'off' }, { op: 'wait', until: { kind: 'time', t: '2ms' }, mode: 'spin' }],
      },
    });
    expect(off.outcome).toBe('completed');
    expect(ticks(off)).toHaveLength(2);
  });
});

describe('INIT then SIPI', () => {
  const ap = (events: unknown[], script: unknown[] = []) =>
    run({
      machine: { vcpus: 2 },
      hostMemory: swapped(3),
      events,
      bare: {
        pf: { waitFor: 'token' },
        cpus: [
          {
            cpu: 1,
            script: [...enable, { op: 'touch', addr: '0x100000', write: true }, { op: 'wait', until: { kind: 'time', t: '1ms' } }, { op: 'sipi_entry', vector: 0x20 }, { op: 'rdmsr', msr: 'ASYNC_PF_EN' }, ...enable, { op: 'touch', addr: '0x101000' }, ...script],
          },
        ],
      },
    });

  test('an AP waits for the SIPI after INIT (no guest instruction), then starts at its sipi_entry with EN and INT cleared, and APF works again', () => {
    const r = ap([{ at: '300us', do: 'init', cpu: 1 }, { at: '500us', do: 'sipi', cpu: 1, vector: 0x20 }]);
    expect(r.outcome).toBe('completed');
    const init = r.ev('kvm_vcpu_init', 1)[0]!;
    const sipi = r.ev('kvm_vcpu_deliver_sipi_vector', 1)[0]!;
    expect(sipi).toMatchObject({ vector: 0x20, delivered: true });
    expect(r.ev('kvm_vcpu_block', 1).filter((e) => e.why === 'init_received').length).toBeGreaterThanOrEqual(1);
    // The script stopped at the INIT, and between INIT and SIPI vCPU 1 ran nothing.
    expect(r.ev('bare_note', 1).find((e) => e.message === 'INIT: the script stops')?.t).toBe(init.t);
    expect(r.recs.filter((e) => e.cpu === 1 && e.t > init.t && e.t < sipi.t && (e.src === 'guest' || e.src === 'cpu' || e.event === 'kvm_msr'))).toEqual([]);
    expect(r.ev('bare_msr', 1).find((e) => e.write === false)).toMatchObject({ msr: 0x4b564d02, value: 0n, ok: true });
    expect(r.ev('kvm_async_pf_enable', 1)).toHaveLength(2);
    expect(r.ev('kvm_async_pf_not_present', 1).map((e) => e.gva)).toEqual([0x100000, 0x101000]);
    expect(r.ev('bare_wait', 1).filter((e) => e.token !== undefined).map((e) => e.result)).toEqual(['token', 'token']);
  });

  test('the BSP does not wait for a SIPI: after INIT it runs on (from its reset vector), and a later SIPI is dropped', () => {
    const r = run({
      hostMemory: swapped(1),
      events: [{ at: '50us', do: 'init', cpu: 0 }, { at: '100us', do: 'sipi', cpu: 0, vector: 0x20 }],
      bare: { script: [...enable, { op: 'wait', until: { kind: 'time', t: '1ms' } }] },
    });
    expect(r.ev('kvm_vcpu_init', 0)).toHaveLength(1);
    expect(r.ev('kvm_vcpu_block', 0).filter((e) => e.why === 'init_received')).toEqual([]);
    expect(r.ev('kvm_vcpu_deliver_sipi_vector', 0)).toEqual([expect.objectContaining({ vector: 0x20, delivered: false })]);
    expect(r.ev('sipi')).toEqual([]);
  });

  test('a SIPI without an INIT before it is dropped; a SIPI whose vector has no sipi_entry leaves the AP halted', () => {
    const noInit = ap([{ at: '300us', do: 'sipi', cpu: 1, vector: 0x20 }]);
    expect(noInit.ev('kvm_vcpu_deliver_sipi_vector', 1)).toEqual([expect.objectContaining({ delivered: false })]);
    expect(noInit.ev('sipi')).toEqual([]);
    // The script ran on through its sipi_entry label (a no-op): EN was never cleared.
    expect(noInit.ev('bare_msr', 1).find((e) => e.write === false)?.value).not.toBe(0n);
    const wrong = ap([{ at: '300us', do: 'init', cpu: 1 }, { at: '500us', do: 'sipi', cpu: 1, vector: 0x21 }]);
    expect(wrong.outcome).not.toBe('completed');
    expect(wrong.ev('bare_note', 1).map((e) => e.message)).toContain('SIPI vector 0x21: no sipi_entry in the script, halting');
    expect(wrong.ev('kvm_async_pf_enable', 1)).toHaveLength(1);
  });

  test('INIT and SIPI through the x2APIC ICR (delivery modes 5 and 6) from another vCPU', () => {
    const r = run({
      machine: { vcpus: 2 },
      hostMemory: swapped(1),
      bare: {
        cpus: [
          { cpu: 0, script: [{ op: 'wrmsr', msr: '0x830', value: '0x100000500' }, { op: 'spin', for: '10us' }, { op: 'wrmsr', msr: '0x830', value: '0x100000607' }] },
          { cpu: 1, script: [{ op: 'wait', until: { kind: 'time', t: '5ms' }, mode: 'spin' }, { op: 'sipi_entry', vector: 7 }, { op: 'log', message: 'started by SIPI' }] },
        ],
      },
    });
    expect(r.outcome).toBe('completed');
    expect(r.ev('kvm_apic_accept_irq', 1).map((e) => [e.dm, e.vec])).toEqual([['init', 0], ['startup', 7]]);
    expect(r.ev('bare_note', 1).map((e) => e.message)).toContain('started by SIPI');
    expect(r.ev('bare_done', 1)[0]!.t).toBeLessThan(5_000_000);
  });
});

describe('the guest kernel brings an AP up with INIT, SIPI, SIPI', () => {
  test('an offline CPU given only an INIT stays down (waiting for a SIPI); INIT then SIPI brings it online', () => {
    const online = (sipi: boolean): number[] => {
      const events: unknown[] = [{ at: '100us', do: 'cpu_offline', cpu: 1 }, { on: { event: 'cpu_offline', cpu: 1 }, after: '200us', do: 'init', cpu: 1 }];
      if (sipi) events.push({ on: { event: 'kvm_vcpu_init', cpu: 1 }, after: '1us', do: 'sipi', cpu: 1, vector: 0x9a });
      const r = run({ machine: { vcpus: 2 }, tasks: [{ name: 't', program: [{ op: 'sleep', for: '3ms' }] }], events });
      expect(r.outcome).toBe('completed');
      return r.ev('cpu_online', 1).map((e) => e.t).filter((t) => t > 100_000);
    };
    expect(online(false)).toEqual([]);
    expect(online(true)).toHaveLength(1);
  });

  test('resume: each AP waits for the SIPI after the INIT, the first SIPI starts it, the second is dropped', () => {
    const s = loadScenarioFile(path.join(__dirname, '../../scenarios/suspend-resume.json'));
    const recs: Rec[] = [];
    expect(runScenario(s, { onRecord: (rec) => recs.push(rec as Rec) }).outcome).toBe('completed');
    const inits = recs.filter((e) => e.event === 'kvm_vcpu_init');
    expect(inits.length).toBeGreaterThan(0);
    for (const init of inits) {
      const after = recs.filter((e) => e.cpu === init.cpu && e.t >= init.t && (e.event === 'kvm_vcpu_block' || e.event === 'kvm_vcpu_deliver_sipi_vector' || e.event === 'sipi'));
      expect(after.slice(0, 4).map((e) => `${e.event}:${String(e.why ?? e.delivered ?? e.vector)}`)).toEqual([
        'kvm_vcpu_block:init_received',
        'kvm_vcpu_deliver_sipi_vector:true',
        'sipi:154',
        'kvm_vcpu_deliver_sipi_vector:false',
      ]);
    }
  });
});
