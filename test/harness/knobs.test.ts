/**
 * The host and guest knobs are declared once (harness/scenario/knobs.ts): the file keys the schema
 * accepts, the layer fields the parsed scenario carries and the values the built machine gets
 * all come from that table.
 */
import { scenarioFromValue } from '../../harness/scenario/load';
import { GUEST_KNOBS, HOST_KNOBS } from '../../harness/scenario/knobs';
import { scenarioJsonSchema } from '../../harness/scenario/json-schema';
import { Simulation } from '../../sim/engine';
import { buildMachine } from '../../harness/machine';
import type { Kvm } from '../../host/kvm';

const tasks = [{ name: 'a', program: [{ op: 'compute', for: '1us' }] }];

describe('knobs declared once', () => {
  it('the schema offers exactly profile, toggles and the table keys', () => {
    const machine = (scenarioJsonSchema().properties as Record<string, { properties: Record<string, { properties: Record<string, unknown> }> }>).machine!.properties;
    expect(Object.keys(machine.host!.properties)).toEqual(['profile', 'toggles', ...Object.keys(HOST_KNOBS)]);
    expect(Object.keys(machine.guest!.properties)).toEqual(['profile', 'toggles', ...Object.keys(GUEST_KNOBS)]);
  });

  it('file keys arrive under the layer field names, converted, and reach the host', () => {
    const s = scenarioFromValue(
      {
        machine: {
          host: { lapic: 'in-kernel', hltPassthrough: true, protectedState: false, enforcePvCpuid: true, exitCost: '2us', tokenCounter: '0x10', stepJitter: '5ns', allocFailure: '1/4' },
          guest: { hz: 100, hungTaskTimeout: '3s', nmiUserRead: '0x7f0000000000', idleRead: '0x7f0000001000' },
        },
        tasks,
      },
      undefined,
    );
    expect(s.machine.host).toMatchObject({
      lapic: 'in-kernel',
      hltPassthrough: true,
      protectedState: false,
      enforcePvCpuid: true,
      exitCostNs: 2000,
      apfTokenCounter: 16,
      stepJitterNs: 5,
      asyncAllocFailure: { numerator: 1, denominator: 4 },
    });
    expect(s.machine.guest).toMatchObject({ hz: 100, hungTaskTimeoutNs: 3e9, nmiUserRead: 0x7f0000000000, idleRead: 0x7f0000001000 });
    let kvm: Kvm | undefined;
    buildMachine(s, new Simulation({ seed: 1 }), { inspect: (p) => (kvm = p.kvm) });
    expect(kvm!.stepJitterNs).toBe(5);
    expect(kvm!.vcpu(0).apf.id).toBe(16);
  });

  it('an unset knob is absent, so the layer default applies', () => {
    const s = scenarioFromValue({ tasks }, undefined);
    for (const k of Object.values(HOST_KNOBS)) expect(s.machine.host).not.toHaveProperty(k.to);
    for (const k of Object.values(GUEST_KNOBS)) expect(s.machine.guest).not.toHaveProperty(k.to);
  });
});
