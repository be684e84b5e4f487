/**
 * docs/designs.md: every cell of the comparison table comes from a scenario run made here, not from
 * prose — the checked-in table must equal what harness/tools/designs-doc.ts generates from runs of
 * the context scenarios under each design.
 */
import * as fs from 'node:fs';
import { DESIGN_NAMES } from '../../shared-abi/designs';
import type { Cell } from '../../harness/tools/designs-doc';
import { native } from '../support/native';

// The runs happen outside Jest's sandbox (test/support/native.ts).
const { BEGIN, CONTEXTS, DESIGNS_DOC, END, renderDoc, runCells, tableMarkdown } = native<typeof import('../../harness/tools/designs-doc')>('harness/tools/designs-doc');

let cells: Cell[] = [];
beforeAll(() => {
  cells = runCells();
});

const cell = (design: string, context: string): Cell | undefined => cells.find((c) => c.design === design && c.context === context);

test('one run per design and modelled context', () => {
  expect(CONTEXTS.every((c) => c.file !== null)).toBe(true);
  expect(CONTEXTS.map((c) => c.id)).toEqual(['user', 'kernel-fixup', 'kernel-nofixup', 'irqs-off', 'pf-irqs-off', 'nmi', 'nested']);
  expect(cells).toHaveLength(CONTEXTS.length * DESIGN_NAMES.length);
});

test('the checked-in table is the generated one (regenerate: npx ts-node --transpile-only harness/tools/designs-doc.ts)', () => {
  const doc = fs.readFileSync(DESIGNS_DOC, 'utf8');
  expect(doc).toContain(BEGIN);
  expect(doc).toContain(END);
  expect(renderDoc(doc, tableMarkdown(cells))).toBe(doc);
});

test('the findings the prose states hold in the runs', () => {
  for (const d of DESIGN_NAMES) expect(cell(d, 'user')?.sees).toMatch(/^SIGBUS/);
  expect(cell('retry_pf', 'kernel-nofixup')?.sees).toContain('unable to handle page fault');
  expect(cell('current', 'kernel-nofixup')?.sees).toContain('Machine check from kernel context');
  // IRQs off for 10 s: only the #MC design reaches the guest kernel before they are enabled again.
  expect(cell('mc', 'irqs-off')?.notified).toMatch(/µs/);
  for (const d of DESIGN_NAMES.filter((x) => x !== 'mc')) expect(cell(d, 'irqs-off')?.notified).toMatch(/^10\.0 s/);
  // The error flag shares the flags word with the #PF entry: an unrelated #PF consumes it.
  expect(cell('error_flag', 'pf-irqs-off')).toMatchObject({ outcome: 'panic' });
  expect(cell('error_flag', 'pf-irqs-off')?.lost).toContain('error lost');
  for (const d of DESIGN_NAMES.filter((x) => x !== 'error_flag')) expect(cell(d, 'pf-irqs-off')?.lost).toBe('no');
  for (const c of cells) expect(c.lost).not.toContain('wake-up lost');
});
