/**
 * vCPU ids other than 0..n-1 (`machine.vcpuIds`): the host puts KVM's vcpu_id, unmasked, in its
 * tokens, routes IPIs by it (the x2APIC id), and accepts ids below the era's KVM_MAX_VCPU_IDS;
 * ids of 4096 and more alias in the token's counter bits, which the guest cannot tell apart.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Simulation } from '../../sim/engine';
import { GuestMemory } from '../../sim/memory';
import { Kvm } from '../../host/kvm';
import type { HostProfileName } from '../../host/config';
import { allocToken } from '../../host/x86/apf';
import { KVM_MAX_VCPU_IDS, makeToken, tokenIdAliases } from '../../shared-abi/apf';
import { RESCHEDULE_VECTOR } from '../../guest/lapic';
import { runScenario } from '../../harness/runner';
import { scenarioFromValue, ScenarioError } from '../../harness/scenario/load';

const REPO = path.join(__dirname, '..', '..');
const ALIAS = 'scenarios/vcpu-id-token-alias.json';

function vm(profile: HostProfileName): Kvm {
  const sim = new Simulation({ seed: 1 });
  return new Kvm(sim, new GuestMemory(1 << 20), { profile, kvmFeatures: 0, memory: { pages: [] } });
}

function scenarioJson(file: string): Record<string, unknown> & { machine: Record<string, unknown> } {
  return JSON.parse(fs.readFileSync(path.join(REPO, file), 'utf8')) as Record<string, unknown> & { machine: Record<string, unknown> };
}

describe('tokens carry the unmasked vcpu_id', () => {
  it('vcpu_id 4096 gives the same token as vcpu_id 0 one counter value on, and repeats its own tokens in pairs', () => {
    expect(tokenIdAliases(4095)).toBe(false);
    expect(tokenIdAliases(4096)).toBe(true);
    const kvm = vm('current');
    const a = kvm.createVcpu(0, 0);
    const b = kvm.createVcpu(1, 4096);
    expect(b.vcpuId).toBe(4096);
    // current: the counter skips 0, so each vCPU's first token uses id 1.
    expect(allocToken(a)).toBe(0x1000);
    expect(allocToken(b)).toBe(0x1000);
    // vcpu_id 4096 sets bit 12 itself: counter values 2 and 3 give one token.
    expect([allocToken(b), allocToken(b)]).toEqual([0x3000, 0x3000]);
    expect(makeToken(2, 4096)).toBe(makeToken(3, 0));
  });

  it('with the default ids the token is unchanged (the index is the vcpu_id)', () => {
    const kvm = vm('current');
    const v = kvm.createVcpu(3);
    expect(v.vcpuId).toBe(3);
    expect(allocToken(v)).toBe(0x1003);
  });
});

describe('KVM_MAX_VCPU_IDS per era', () => {
  it.each<[HostProfileName, number]>([
    ['linux-3.0', KVM_MAX_VCPU_IDS['v3.0']],
    ['linux-4.19', KVM_MAX_VCPU_IDS['v4.19']],
    ['linux-5.8', KVM_MAX_VCPU_IDS['v4.19']],
    ['linux-5.13', KVM_MAX_VCPU_IDS['v4.19']],
    ['linux-6.6', KVM_MAX_VCPU_IDS['v6.6']],
    ['current', KVM_MAX_VCPU_IDS.maxsmp],
  ])('%s accepts ids below %d and refuses that one', (profile, max) => {
    expect(vm(profile).createVcpu(0, max - 1).vcpuId).toBe(max - 1);
    expect(() => vm(profile).createVcpu(0, max)).toThrow(new RegExp(`vCPU id ${max} is refused: host ${profile} .*accepts ids 0-${max - 1}`));
  });

  it('refuses an id another vCPU has', () => {
    const kvm = vm('current');
    kvm.createVcpu(0, 7);
    expect(() => kvm.createVcpu(1, 7)).toThrow('vCPU id 7 is already used by vCPU 0');
  });
});

describe('the scenario', () => {
  it(`${ALIAS}: both vCPUs hand out 0x1000, the guest frees the other task's node and that task hangs`, () => {
    const s = scenarioFromValue(scenarioJson(ALIAS), ALIAS);
    const r = runScenario(s);
    expect(r.ok).toBe(true);
    expect(new Set(r.violations.map((v) => v.checker))).toEqual(new Set(['token-unique', 'guest-warn', 'apf-answered', 'hung-task']));
  });

  it('the same workload with ids 0 and 1 gets distinct tokens and completes quietly', () => {
    const j = scenarioJson(ALIAS);
    const s = scenarioFromValue({ ...j, machine: { ...j.machine, vcpuIds: [0, 1] }, expect: { outcome: 'completed' } }, ALIAS);
    const tokens: number[] = [];
    const r = runScenario(s, { onRecord: (rec) => void (rec.event === 'kvm_async_pf_not_present' && tokens.push(rec['token'] as number)) });
    expect(r.outcome).toBe('completed');
    expect(r.violations).toEqual([]);
    expect(tokens).toEqual([0x1000, 0x1001]);
  });

  it('one vCPU is enough: vcpu_id 4096 gives its second and third faults the same token, and the second task is lost', () => {
    const j = scenarioJson(ALIAS);
    const pages = ['0x7f0000001000', '0x7f0000002000', '0x7f0000003000'];
    const tasks = pages.map((page, i) => ({ name: `t${i}`, start: `${i * 20}us`, program: [{ op: 'touch', page }] }));
    const s = scenarioFromValue(
      {
        ...j,
        machine: { ...j.machine, vcpus: 1, vcpuIds: [4096] },
        hostMemory: { pages: pages.map((page) => ({ page, backing: 'swapped' })), latency: { swap: '200us' } },
        tasks,
        expect: { outcome: 'budget', checkers: { fire: ['token-unique', 'guest-warn', 'apf-answered', 'hung-task'] } },
      },
      ALIAS,
    );
    const tokens: number[] = [];
    const woken: string[] = [];
    const r = runScenario(s, {
      onRecord: (rec) => {
        if (rec.event === 'kvm_async_pf_not_present') tokens.push(rec['token'] as number);
        if (rec.event === 'kvm_async_pf_task_woken') woken.push(rec['task'] as string);
      },
    });
    expect(tokens).toEqual([0x1000, 0x3000, 0x3000]);
    expect(r.expectations.filter((e) => !e.ok)).toEqual([]);
    expect(r.ok).toBe(true);
    expect(woken).not.toContain('t1');
  });

  it('IPIs reach vCPUs by their x2APIC id: the default scenario with ids 5 and 9 passes like the original', () => {
    const j = scenarioJson('scenarios/default.json');
    const accepted: string[] = [];
    const r = runScenario(scenarioFromValue({ ...j, machine: { ...j.machine, vcpuIds: [5, 9] } }, 'default.json'), {
      onRecord: (rec) => void (rec.event === 'kvm_apic_accept_irq' && accepted.push(`cpu${rec.cpu} apicid ${String(rec['apicid'])} vec ${String(rec['vec'])}`)),
    });
    expect(r.ok).toBe(true);
    expect(r.violations).toEqual([]);
    // The guest's reschedule IPI (0xfd) to CPU 1 is addressed to x2APIC id 9 and arrives there.
    expect(accepted).toContain(`cpu1 apicid 9 vec ${RESCHEDULE_VECTOR}`);
  });

  it('an id the host profile refuses is a bad machine, named with its place in the file', () => {
    const j = scenarioJson(ALIAS);
    const r = runScenario(scenarioFromValue({ ...j, machine: { ...j.machine, host: { profile: 'linux-6.6' } } }, ALIAS));
    expect(r.outcome).toBe('bad_machine');
    expect(r.endDetail).toBe('machine.vcpuIds[1]: vCPU id 4096 is refused: host linux-6.6 (v6.6) accepts ids 0-4095 (KVM_MAX_VCPU_IDS 4096)');
  });

  it.each([
    [[0], 'machine.vcpuIds: expected one id per vCPU: 2 vCPUs, 1 id'],
    [[3, 3], 'machine.vcpuIds[1]: vCPU id 3 is already the id of vCPU 0'],
  ])('vcpuIds %j is refused before the run', (ids, message) => {
    const j = scenarioJson(ALIAS);
    let err: unknown;
    try {
      scenarioFromValue({ ...j, machine: { ...j.machine, vcpuIds: ids } }, ALIAS);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ScenarioError);
    expect((err as Error).message).toContain(message);
  });
});
