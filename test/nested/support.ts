/** Helpers for the nested-virtualization tests: running scenarios in-process and reading their records. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { TraceRecord } from '../../sim/trace';
import type { MachineExtras } from '../../harness/machine';
import type { RunReport } from '../../harness/runner';
import { native } from '../support/native';

// The runs happen outside Jest's sandbox (test/support/native.ts).
const { buildMachine } = native<typeof import('../../harness/machine')>('harness/machine');
const { runScenario } = native<typeof import('../../harness/runner')>('harness/runner');
const { scenarioFromValue } = native<typeof import('../../harness/scenario/load')>('harness/scenario/load');

export const REPO = path.resolve(__dirname, '..', '..');
export const NESTED_DIR = path.join(REPO, 'scenarios', 'nested');

/** The nested scenario files, sorted. */
export function nestedScenarioFiles(): string[] {
  return fs
    .readdirSync(NESTED_DIR)
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => path.join(NESTED_DIR, f));
}

/** Run a scenario given as a value, keeping its records. */
export function run(value: object, extras: MachineExtras = {}): RunReport {
  const s = scenarioFromValue(value, undefined, 'test');
  return runScenario(s, { keepRecords: 1_000_000, machine: (sc, sim) => buildMachine(sc, sim, extras) });
}

/** Records of `event` whose fields include `fields`. */
export function recs(r: RunReport, event: string, fields: Record<string, unknown> = {}): TraceRecord[] {
  return r.records.filter((x) => x.event === event && Object.entries(fields).every(([k, v]) => x[k] === v));
}

/** Index of the first record of `event` (with `fields`) at or after `from`; -1 if none. */
export function indexOf(r: RunReport, event: string, fields: Record<string, unknown> = {}, from = 0): number {
  for (let i = from; i < r.records.length; i++) {
    const x = r.records[i]!;
    if (x.event === event && Object.entries(fields).every(([k, v]) => x[k] === v)) return i;
  }
  return -1;
}

/** The failed expectations of a report, for a readable assertion message. */
export function failures(r: RunReport): string[] {
  return r.expectations.filter((e) => !e.ok).map((e) => `${e.what}: ${e.detail}`);
}

export interface L2FaultCase {
  /** CPUID has KVM_FEATURE_ASYNC_PF_VMEXIT, so L1 sets DELIVERY_AS_PF_VMEXIT. */
  readonly bit2: boolean;
  /** L2's CPL at the faulting access. */
  readonly cpl: 0 | 3;
  /** L1 sets SEND_ALWAYS. */
  readonly sendAlways: boolean;
  /** Host toggle nested_payload (default on). */
  readonly payload?: boolean;
}

const WRITE_READ = [
  { op: 'touch', addr: '0x1000', write: true, value: 42 },
  { op: 'touch', addr: '0x1000' },
];

/** One L2 guest that faults once on swapped-out memory, at the CPL asked for; an L1 task shares the vCPU. */
export function l2FaultScenario(c: L2FaultCase): object {
  return {
    machine: {
      vcpus: 1,
      ...(c.bit2 ? {} : { cpuid: ['ASYNC_PF', 'ASYNC_PF_INT'] }),
      ...(c.sendAlways ? { guest: { toggles: { send_always: true } } } : {}),
      ...(c.payload === false ? { host: { toggles: { nested_payload: false } } } : {}),
      nested: { l2: [{ name: 'l2a', cpu: 0, pages: 4, backing: 'swapped', program: c.cpl === 3 ? WRITE_READ : [{ op: 'syscall', body: WRITE_READ }] }] },
    },
    tasks: [{ name: 'other', cpu: 0, nice: 5, program: [{ op: 'compute', for: '300us' }] }],
  };
}
