/**
 * The text trace prints every record of a kernel tracepoint in the kernel's format: a real run of
 * the default scenario, checked record by record against the catalogue's `tracepoint` links.
 */
import * as path from 'node:path';
import { TRACE_EVENT_SPECS } from '../../shared-abi/trace-catalogue';
import { runScenario } from '../../harness/runner';
import { loadScenarioFile } from '../../harness/scenario/load';
import { formatTextLine } from '../../harness/trace/text';
import { REPO } from './cli-helpers';

const KERNEL_FORMAT: Readonly<Record<string, RegExp>> = {
  kvm_msr: /: kvm_msr: msr_(read|write) [0-9a-f]+ = 0x[0-9a-f]+( \(#GP\))?$/,
  kvm_inj_exception: /: kvm_inj_exception: (#[A-Z]{2}|0x[0-9a-f]+) \(0x[0-9a-f]+\) \[address=0x[0-9a-f]+ async=(true|false)\]$/,
  kvm_inj_virq: /: kvm_inj_virq: irq \d+$/,
  kvm_apic_accept_irq: /: kvm_apic_accept_irq: apicid [0-9a-f]+ vec \d+ \((Fixed|NMI|INIT)\|edge\) \[coalesced=(true|false)\]$/,
  kvm_apic_eoi: /: kvm_apic_eoi: apicid [0-9a-f]+ vector \d+$/,
  kvm_page_fault: /: kvm_page_fault: address [0-9a-f]+ error_code [0-9a-f]+ \[gva=0x[0-9a-f]+\]$/,
  kvm_try_async_get_page: /: kvm_try_async_get_page: gva = 0x[0-9a-f]+, gfn = 0x[0-9a-f]+$/,
  kvm_async_pf_not_present: /: kvm_async_pf_not_present: token (0x[0-9a-f]+|0) gva (0x[0-9a-f]+|0) \[injected=(true|false) halt=(true|false)\]$/,
  kvm_async_pf_ready: /: kvm_async_pf_ready: token (0x[0-9a-f]+|0) gva (0x[0-9a-f]+|0) \[notified=(true|false)\]$/,
  kvm_async_pf_completed: /: kvm_async_pf_completed: gva (0x[0-9a-f]+|0) address 0x[0-9a-f]+ \[ok=(true|false)\]$/,
};

test('every record with a kernel tracepoint prints in its kernel format', () => {
  const lines = new Map<string, string[]>();
  runScenario(loadScenarioFile(path.join(REPO, 'scenarios/default.json'), 'scenarios/default.json'), {
    onRecord: (rec) => {
      if (TRACE_EVENT_SPECS[rec.event as keyof typeof TRACE_EVENT_SPECS]?.tracepoint === undefined) return;
      const l = lines.get(rec.event) ?? [];
      l.push(formatTextLine(rec));
      lines.set(rec.event, l);
    },
  });
  expect([...lines.keys()].sort()).toEqual(Object.keys(KERNEL_FORMAT).sort());
  for (const [event, ls] of lines) for (const l of ls) expect(l).toMatch(KERNEL_FORMAT[event] ?? /^$/);
});
