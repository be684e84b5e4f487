/**
 * Host page-in failure end to end: a `failing` page's async fault-in fails, page ready is
 * still sent, the retry fails synchronously and the VMM injects an action-required #MC, which the
 * guest turns into SIGBUS (user mode), -EFAULT (kernel access with an exception-table entry) or a
 * panic (kernel access without one). Vivek Goyal's experiment: with IRQs off for 10 virtual
 * seconds after "page not present", the error reaches the task only once they are on again.
 */
import * as path from 'node:path';
import type { TraceRecord } from '../../sim/trace';
import type { RunReport } from '../../harness/runner';
import { native } from '../support/native';

// The runs happen outside Jest's sandbox (test/support/native.ts).
const { runScenario } = native<typeof import('../../harness/runner')>('harness/runner');
const { loadScenarioFile } = native<typeof import('../../harness/scenario/load')>('harness/scenario/load');

const REPO = path.join(__dirname, '..', '..');
const S = 1_000_000_000;

function run(file: string): { report: RunReport; records: TraceRecord[] } {
  const records: TraceRecord[] = [];
  const report = runScenario(loadScenarioFile(path.join(REPO, file), file), { onRecord: (r) => records.push(r) });
  return { report, records };
}
const first = (rs: readonly TraceRecord[], event: string): TraceRecord | undefined => rs.find((r) => r.event === event);

test('user mode: page ready is sent although the fault-in failed; the retry gets #MC and SIGBUS', () => {
  const { report, records } = run('scenarios/page-failure/user-sigbus.json');
  expect(report.ok).toBe(true);
  expect(first(records, 'kvm_async_pf_ready')).toBeDefined();
  expect(first(records, 'machine_check')).toMatchObject({ task: 'victim', cpl: 3, action: 'sigbus' });
  expect(records.find((r) => r.event === 'task_exit' && r.task === 'victim')).toMatchObject({ code: 128 + 7 });
  expect(records.some((r) => r.event === 'task_exit' && r.task === 'spinner' && r.code === 0)).toBe(true);
});

test('kernel access with a fixup: copy_from_user returns -EFAULT, nobody dies', () => {
  const { report, records } = run('scenarios/page-failure/kernel-fixup.json');
  expect(report.outcome).toBe('completed');
  expect(first(records, 'machine_check')).toMatchObject({ cpl: 0, action: 'fixup' });
  expect(first(records, 'uaccess_fixup')).toMatchObject({ task: 'victim' });
  expect(records.filter((r) => r.event === 'signal')).toEqual([]);
});

test('kernel access without a fixup: panic', () => {
  const { report, records } = run('scenarios/page-failure/kernel-panic.json');
  expect(report.outcome).toBe('panic');
  expect(report.panic).toContain('Machine check from kernel context');
  expect(first(records, 'machine_check')).toMatchObject({ cpl: 0, action: 'panic' });
});

test("Vivek Goyal's experiment: the failure is known 300us in, the task learns of it only after 10 s with IRQs off", () => {
  const { report, records } = run('scenarios/page-failure/vivek-irqs-off-10s.json');
  expect(report.ok).toBe(true);
  const failed = records.find((r) => r.event === 'host_page_fault_in');
  const mc = first(records, 'machine_check');
  expect(failed).toBeDefined();
  expect(mc).toBeDefined();
  expect(failed?.t ?? Infinity).toBeLessThan(0.001 * S);
  expect(mc?.t ?? 0).toBeGreaterThan(10 * S);
  const woken = first(records, 'kvm_async_pf_task_woken');
  expect(Number(woken?.waited_ns)).toBeGreaterThanOrEqual(10 * S - 0.001 * S);
});
