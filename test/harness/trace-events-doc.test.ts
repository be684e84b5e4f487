/** docs/trace-events.md is generated from the trace catalogue: the checked-in copy must be current. */
import * as fs from 'node:fs';
import { TRACE_EVENTS_DOC, traceEventsDoc } from '../../harness/tools/trace-events-doc';
import { TRACE_EVENTS } from '../../harness/trace/vocabulary';

describe('docs/trace-events.md', () => {
  test('is what harness/tools/trace-events-doc.ts writes (run it after changing the catalogue)', () => {
    expect(fs.readFileSync(TRACE_EVENTS_DOC, 'utf8')).toBe(traceEventsDoc());
  });

  test('lists every catalogue event once, with each of its fields', () => {
    const doc = traceEventsDoc();
    for (const e of TRACE_EVENTS) {
      const rows = doc.split('\n').filter((l) => l.startsWith(`| \`${e.event}\``));
      expect({ event: e.event, rows: rows.length }).toEqual({ event: e.event, rows: 1 });
      for (const f of e.fields) expect(rows[0]).toContain(`\`${f}\` (`);
    }
  });
});
