/**
 * Generates docs/trace-events.md from the trace catalogue (shared-abi/trace-catalogue.ts): one
 * table per section, each event with its fields, their types (closed sets of strings listed) and
 * when it is emitted. test/harness/trace-events-doc.test.ts checks that the checked-in document is
 * what this produces.
 *
 *   npx ts-node --transpile-only harness/tools/trace-events-doc.ts           # rewrite docs/trace-events.md
 *   npx ts-node --transpile-only harness/tools/trace-events-doc.ts --check   # exit 1 if it is stale
 */
import * as path from 'node:path';
import { TRACEPOINTS } from '../../shared-abi/tracepoints';
import type { TraceFieldSpec, TraceSection, TraceSource } from '../../shared-abi/trace-catalogue';
import { PACKAGE_ROOT } from '../cli/io';
import { TRACE_EVENTS, type EventInfo } from '../trace/vocabulary';
import { writeOrCheckDoc } from './doc-file';

export const TRACE_EVENTS_DOC = path.join(PACKAGE_ROOT, 'docs', 'trace-events.md');

const INTRO = `# Trace event vocabulary

<!-- Generated from shared-abi/trace-catalogue.ts by harness/tools/trace-events-doc.ts: edit the catalogue, then run the tool. -->

Every record on the trace bus is \`{t, cpu, src, event, ...fields}\` (\`sim/trace.ts\`). \`t\` is
virtual nanoseconds, \`cpu\` the vCPU index (-1 when the event is not tied to one), \`src\` one of
\`host\`, \`worker\`, \`guest\`, \`cpu\`, \`harness\`, \`check\`. This page is the contract between the
emitters (\`host/\`, \`guest/\`, \`sim/cpu\`) and the observers (\`harness/\` checkers, timeline,
reports): checkers only ever look at these records.

The contract is enforced by the compiler: the trace catalogue (\`shared-abi/trace-catalogue.ts\`)
declares each event's sources and fields with their types, \`emit\` accepts only what it declares,
and consumers receive records typed by it. Field types below: \`number\`, \`bigint\` (MSR values),
\`string\`, \`boolean\`, or the closed list of strings a field takes; *optional* fields are
sometimes absent. Tokens, GPAs, GVAs and gfns are numbers; the text format prints them in hex.
A kernel tracepoint named in the last column has its format in \`shared-abi/tracepoints.ts\`.
`;

const SECTIONS: ReadonlyArray<{ section: TraceSection; title: string; intro?: string; src: TraceSource }> = [
  { section: 'host', title: "## Host (`src: host`, or `worker` for the async worker), KVM's own tracepoint names where one exists", src: 'host' },
  {
    section: 'memory',
    title: "## The guest address space and the host's caches of it",
    src: 'host',
    intro: `See [caches.md](caches.md). None of these appears while the layout is the default identity: they
start at VM start when \`memslots\` are configured, or with the first change (which first lists the
layout as it stood, \`change: existing\`). \`cpu\` is -1 except for the cache records.`,
  },
  {
    section: 'guest',
    title: '## Guest (`src: guest`), named after the kernel functions',
    src: 'guest',
    intro: 'Emitted by `guest/` (docs/guest.md). `task` fields are task names; tokens are u32 numbers.',
  },
  { section: 'cpu', title: '## CPU (`src: cpu`, `sim/cpu/vcpu.ts`)', src: 'cpu' },
  { section: 'harness', title: '## Harness (`src: harness`, `check`)', src: 'harness' },
];

function fieldText(name: string, f: TraceFieldSpec): string {
  const type = f.values !== undefined ? f.values.map((v) => `\`${v}\``).join(', ') : f.kind === 'numeric' ? 'number or bigint' : f.kind;
  const notes = [type, ...(f.optional === true ? ['optional'] : []), ...(f.doc === undefined ? [] : [f.doc])];
  return `\`${name}\` (${notes.join('; ')})`;
}

function row(e: EventInfo, defaultSrc: TraceSource): string {
  const src = e.sources.length === 1 && e.sources[0] === defaultSrc ? '' : ` (\`src: ${e.sources.join('` or `')}\`)`;
  const fields = Object.entries(e.spec.fields).map(([n, f]) => fieldText(n, f));
  if (e.open) fields.push('and any further field');
  const tp = e.spec.tracepoint;
  const kernel = tp === undefined ? '' : `\`${TRACEPOINTS[tp].event}\`${tp === TRACEPOINTS[tp].event ? '' : ` (\`${tp}\`)`}`;
  return `| \`${e.event}\`${src} | ${fields.join(', ')} | ${e.spec.when.replace(/\|/g, '\\|')} | ${kernel} |`;
}

/** The document's text. */
export function traceEventsDoc(): string {
  const out: string[] = [INTRO];
  for (const s of SECTIONS) {
    out.push(s.title, '');
    if (s.intro !== undefined) out.push(s.intro, '');
    out.push('| event | fields | when | kernel tracepoint |', '|---|---|---|---|');
    for (const e of TRACE_EVENTS) if (e.spec.section === s.section) out.push(row(e, s.src));
    out.push('');
  }
  return out.join('\n').replace(/\n+$/, '\n');
}

if (require.main === module) writeOrCheckDoc(TRACE_EVENTS_DOC, traceEventsDoc(), 'harness/tools/trace-events-doc.ts');
