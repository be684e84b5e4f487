/** Expected field values are read with the catalogue's field types: hex-looking text for string fields, and values that could never match refused. */
import { ExpectationTracker } from '../../harness/scenario/expectations';
import { ScenarioError, scenarioFromValue } from '../../harness/scenario/load';
import { CheckerSet } from '../../harness/checkers';
import { typedRecord } from '../../harness/trace/consumer';
import { matches } from '../../harness/trace/match';
import { rec } from './helpers';

const load = (expect: Record<string, unknown>) =>
  scenarioFromValue({ tasks: [{ name: 'a', program: [{ op: 'touch', page: '0x7f0000001000' }] }], expect: { checkers: { pass: [] }, ...expect } }, undefined, 'test');
const crash = (message: string) => rec(5, 0, 'crash', { message }, 'guest');

describe('a string field given a hex-looking value', () => {
  it('matches the record whose string is exactly that text (it used to be read as the number 4096 and never match)', () => {
    const s = load({ counts: { crash: { min: 1, fields: { message: '0x1000' } } } });
    const t = new ExpectationTracker(s.expect);
    for (const r of [crash('0x1000'), crash('4096')]) t.onRecord(typedRecord(r));
    const [, count] = t.results({ outcome: 'completed', panic: undefined, endDetail: undefined, checkers: new CheckerSet({}) });
    expect(count).toMatchObject({ ok: true, detail: 'got 1' });
    expect(s.expect.counts[0]?.fields['message']).toEqual({ kind: 'eq', value: '0x1000' });
  });
  it('the matcher also takes the text for fields it cannot type ({"not": "0x1000"} excludes the text too)', () => {
    expect(matches({ event: 'crash', fields: { message: { kind: 'eq', value: 4096, text: '0x1000' } } }, crash('0x1000'))).toBe(true);
    expect(matches({ event: 'crash', fields: { message: { kind: 'not', value: 4096, text: '0x1000' } } }, crash('0x1000'))).toBe(false);
  });
  it('numeric fields still compare hex by value', () => {
    const s = load({ counts: { kvm_async_pf_ready: { min: 1, fields: { token: '0x1000' } } } });
    expect(s.expect.counts[0]?.fields['token']).toEqual({ kind: 'eq', value: 4096, text: '0x1000' });
  });
});

describe('values that can never match are refused', () => {
  it.each([
    [{ crash: { min: 1, fields: { message: 12 } } }, /counts\.crash\.fields\.message: "message" of crash is a string: the value 12 can never match it/],
    [{ kvm_async_pf_ready: { min: 1, fields: { token: 'abc' } } }, /"token" of kvm_async_pf_ready is a number: "abc" can never match it/],
    [{ kvm_async_pf_ready: { min: 1, fields: { notified: 'yes' } } }, /"notified" of kvm_async_pf_ready is true or false/],
    [{ kvm_async_pf_clear_queue: { min: 1, fields: { reason: 'disabled' } } }, /"reason" of kvm_async_pf_clear_queue is one of "disable", "reset"/],
  ])('%j', (counts, msg) => {
    expect(() => load({ counts })).toThrow(ScenarioError);
    expect(() => load({ counts })).toThrow(msg);
  });
  it('in sequences and event triggers too', () => {
    expect(() => load({ sequence: [{ event: 'kvm_async_pf_ready', fields: { token: 'abc' } }] })).toThrow(/expect\.sequence\[0\]\.fields\.token/);
  });
});
