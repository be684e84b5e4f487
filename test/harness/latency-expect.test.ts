/** Timing expectations: `expect.latency` (matched pairs of events) and counts within a `window`. */
import { ExpectationTracker, type ExpectationResult } from '../../harness/scenario/expectations';
import { ScenarioError, scenarioFromValue } from '../../harness/scenario/load';
import { CheckerSet } from '../../harness/checkers';
import { typedRecord } from '../../harness/trace/consumer';
import type { TraceRecord } from '../../sim/trace';
import { rec } from './helpers';

const us = 1_000;
const load = (expect: Record<string, unknown>) =>
  scenarioFromValue({ tasks: [{ name: 'a', program: [{ op: 'touch', page: '0x7f0000001000' }] }], expect: { checkers: { pass: [] }, ...expect } }, undefined, 'test');
const np = (t: number, token: number) => rec(t, 0, 'kvm_async_pf_not_present', { token, gva: 0x1000, injected: true, halt: false });
const ready = (t: number, token: number) => rec(t, 0, 'kvm_async_pf_ready', { token, gva: 0x1000, notified: true });

/** The results of the scenario's expectations other than the outcome, over `records`. */
function judge(expect: Record<string, unknown>, records: readonly TraceRecord[]): ExpectationResult[] {
  const t = new ExpectationTracker(load(expect).expect);
  for (const r of records) t.onRecord(typedRecord(r));
  return t.results({ outcome: 'completed', panic: undefined, endDetail: undefined, checkers: new CheckerSet({}) }).slice(1);
}

const pairByToken = (bounds: Record<string, string>) => ({
  latency: [{ from: { event: 'kvm_async_pf_not_present', fields: { token: '$t' } }, to: { event: 'kvm_async_pf_ready', fields: { token: '$t' } }, ...bounds }],
});

describe('expect.latency', () => {
  it('pairs each from with the first later to of the same capture, and reports the spread', () => {
    // Two tokens outstanding at once, answered out of order: each pairs with its own token.
    const r = judge(pairByToken({ max: '100us' }), [np(0, 0x1000), np(10 * us, 0x2000), ready(50 * us, 0x2000), ready(90 * us, 0x1000)]);
    expect(r).toEqual([{ what: 'latency kvm_async_pf_not_present{token=$t} -> kvm_async_pf_ready{token=$t} <= 100us', ok: true, detail: '2 pairs: shortest 40us, longest 90us' }]);
  });
  it('fails on a pair above max, naming both events, the capture and the measured time', () => {
    const [r] = judge(pairByToken({ max: '50us' }), [np(0, 0x1000), np(10 * us, 0x2000), ready(20 * us, 0x2000), ready(90 * us, 0x1000)]);
    expect(r?.ok).toBe(false);
    expect(r?.detail).toBe(
      '1 of 2 pairs out of bounds; first: kvm_async_pf_not_present at t=0ns on cpu0 ($t = 0x1000) -> kvm_async_pf_ready at t=90us on cpu0: 90us > max 50us',
    );
  });
  it('fails on a pair below min', () => {
    const [r] = judge(pairByToken({ min: '1ms' }), [np(0, 0x1000), ready(90 * us, 0x1000)]);
    expect(r).toMatchObject({ ok: false, detail: expect.stringContaining('90us < min 1ms') });
  });
  it('with max, a from never followed by its to fails; without max it does not count', () => {
    const recs = [np(0, 0x1000), ready(10 * us, 0x1000), np(20 * us, 0x3000)];
    expect(judge(pairByToken({ max: '1ms' }), recs)[0]).toMatchObject({ ok: false, detail: expect.stringMatching(/^kvm_async_pf_not_present at t=20us on cpu0 \(\$t = 0x3000\) was never followed by/) });
    expect(judge(pairByToken({ min: '1us' }), recs)[0]?.ok).toBe(true);
  });
  it('fails when nothing was measured at all', () => {
    expect(judge(pairByToken({ max: '1ms' }), [ready(10 * us, 0x1000)])[0]).toMatchObject({ ok: false, detail: expect.stringContaining('no pair measured') });
  });
  it('rejects a latency without bounds, inverted bounds, and unknown events or fields (exit 2 material)', () => {
    expect(() => load(pairByToken({}))).toThrow(ScenarioError);
    expect(() => load(pairByToken({}))).toThrow(/expect\.latency\[0\]: give "min", "max" or both/);
    expect(() => load(pairByToken({ min: '2ms', max: '1ms' }))).toThrow(/min \(2ms\) is above max \(1ms\)/);
    expect(() => load({ latency: [{ from: { event: 'kvm_async_pf_not_presnt' }, to: { event: 'kvm_async_pf_ready' }, max: '1ms' }] })).toThrow(/did you mean "kvm_async_pf_not_present"/);
  });
});

describe('counts within a window', () => {
  const count = (window: Record<string, string>) => ({ counts: { kvm_async_pf_ready: { min: 1, max: 1, window } } });
  const recs = [ready(10 * us, 0x1000), ready(100 * us, 0x2000), ready(2_000 * us, 0x3000)];
  it('counts only records with from <= t < to', () => {
    expect(judge(count({ from: '50us', to: '1ms' }), recs)).toEqual([{ what: 'count kvm_async_pf_ready in [50us, 1ms) = 1', ok: true, detail: 'got 1' }]);
    expect(judge(count({ from: '100us', to: '1ms' }), recs)[0]?.ok).toBe(true);
    expect(judge(count({ from: '10us', to: '100us' }), recs)[0]?.ok).toBe(true);
    expect(judge(count({ from: '1ms' }), recs)[0]).toMatchObject({ what: 'count kvm_async_pf_ready in [1ms, end) = 1', ok: true });
    expect(judge(count({ to: '1ms' }), recs)[0]).toMatchObject({ ok: false, detail: 'got 2' });
  });
  it('rejects an empty window', () => {
    expect(() => load(count({ from: '1ms', to: '1ms' }))).toThrow(/window: the window is empty/);
  });
});
