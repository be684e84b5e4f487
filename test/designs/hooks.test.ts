/**
 * The design hooks on both sides: each design's own delivery shows in the trace, and without
 * `machine.design` (or with `current`) a run is the same run as before (same trace hash).
 */
import * as path from 'node:path';
import { DESIGN_NAMES } from '../../shared-abi/designs';
import type { TraceRecord } from '../../sim/trace';
import { native } from '../support/native';

// The runs happen outside Jest's sandbox (test/support/native.ts).
const { runScenario } = native<typeof import('../../harness/runner')>('harness/runner');
const { loadScenarioFile } = native<typeof import('../../harness/scenario/load')>('harness/scenario/load');
const { withDesign } = native<typeof import('../../harness/tools/designs-doc')>('harness/tools/designs-doc');

const REPO = path.join(__dirname, '..', '..');
const base = loadScenarioFile(path.join(REPO, 'scenarios/page-failure/user-sigbus.json'), 'user-sigbus.json');

function records(design: (typeof DESIGN_NAMES)[number]): TraceRecord[] {
  const out: TraceRecord[] = [];
  runScenario(withDesign(base, design), { onRecord: (r) => out.push(r) });
  return out;
}

test('design current is the run without a design', () => {
  expect(runScenario(withDesign(base, 'current')).traceHash).toBe(runScenario(base).traceHash);
});

test('the default scenario is unchanged by naming design current', () => {
  const d = loadScenarioFile(path.join(REPO, 'scenarios/default.json'), 'default.json');
  expect(runScenario(withDesign(d, 'current')).traceHash).toBe(runScenario(d).traceHash);
});

test.each([
  ['error_code', (r: TraceRecord) => r.event === 'kvm_inj_exception' && r.exception === 14 && r.error_code === 0xaaaa],
  ['ve', (r: TraceRecord) => r.event === 'kvm_inj_exception' && r.exception === 20],
  ['mc', (r: TraceRecord) => r.event === 'kvm_async_pf_design' && r.what === 'mce_for_token'],
  ['error_flag', (r: TraceRecord) => r.event === 'kvm_async_pf_design' && r.what === 'page_ready_error_flag'],
  ['retry_pf', (r: TraceRecord) => r.event === 'kvm_async_pf_design' && r.what === 'real_pf'],
] as const)('%s: the host delivers its own way', (design, pred) => {
  const rs = records(design);
  expect(rs.some(pred)).toBe(true);
  expect(rs.find((r) => r.event === 'signal')).toMatchObject({ task: 'victim', sig: 'SIGBUS' });
});

test('error_code never reads the flags word; ve and current do not use error code 0xaaaa', () => {
  expect(records('error_code').some((r) => r.event === 'kvm_read_and_reset_apf_flags')).toBe(false);
  for (const d of ['current', 've'] as const) expect(records(d).some((r) => r.event === 'kvm_inj_exception' && r.error_code === 0xaaaa)).toBe(false);
});

test('mc: the guest wakes the waiter from the #MC handler, and the retry never happens', () => {
  const rs = records('mc');
  expect(rs.some((r) => r.event === 'apf_design_entry' && r.entry === 'mce_token')).toBe(true);
  expect(rs.some((r) => r.event === 'kvm_mce_inject')).toBe(false);
  expect(rs.find((r) => r.event === 'apf_page_error')).toMatchObject({ task: 'victim', action: 'sigbus' });
});
