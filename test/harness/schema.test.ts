import * as fs from 'node:fs';
import * as path from 'node:path';
import { scenarioJsonSchemaText } from '../../harness/scenario/json-schema';
import { scenarioFromText, scenarioFromValue, ScenarioError } from '../../harness/scenario/load';
import { parseSize, parseTime } from '../../harness/util/units';
import { REPO } from './cli-helpers';

describe('docs/scenario.schema.json', () => {
  it('is up to date with the zod schema (regenerate: apf schema > docs/scenario.schema.json)', () => {
    const onDisk = fs.readFileSync(path.join(REPO, 'docs', 'scenario.schema.json'), 'utf8');
    expect(onDisk).toBe(scenarioJsonSchemaText());
  });
  it('is a JSON Schema that forbids unknown keys at the top level', () => {
    const s = JSON.parse(scenarioJsonSchemaText()) as { $schema: string; additionalProperties: boolean; properties: Record<string, unknown> };
    expect(s.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    expect(s.additionalProperties).toBe(false);
    expect(Object.keys(s.properties)).toEqual(expect.arrayContaining(['machine', 'hostMemory', 'tasks', 'events', 'expect', 'checkers', 'budget']));
  });
});

describe('units', () => {
  it('parses times', () => {
    expect(parseTime('10us')).toEqual({ ok: true, value: 10_000 });
    expect(parseTime('1.5ms')).toEqual({ ok: true, value: 1_500_000 });
    expect(parseTime('2s')).toEqual({ ok: true, value: 2e9 });
    expect(parseTime(' 250 ns ')).toEqual({ ok: true, value: 250 });
    expect(parseTime(42)).toEqual({ ok: true, value: 42 });
    expect(parseTime('1.5ns').ok).toBe(false);
    expect(parseTime(-1).ok).toBe(false);
    expect(parseTime('10 min').ok).toBe(false);
  });
  it('parses sizes', () => {
    expect(parseSize('64MiB')).toEqual({ ok: true, value: 64 * 1024 * 1024 });
    expect(parseSize('512K')).toEqual({ ok: true, value: 512 * 1024 });
    expect(parseSize(8192)).toEqual({ ok: true, value: 8192 });
    expect(parseSize('lots').ok).toBe(false);
  });
});

describe('scenario loading', () => {
  const base = { tasks: [{ name: 'a', program: [{ op: 'touch', page: '0x7f0000001000' }] }] };
  it('fills defaults and converts units', () => {
    const s = scenarioFromValue(
      { ...base, machine: { vcpus: 2, memory: '16MiB' }, events: [{ at: '1ms', do: 'smi', cpu: 1, duration: '20us' }], budget: { maxTime: '2s' } },
      'x.json',
      'x',
    );
    expect(s.name).toBe('x');
    expect(s.seed).toBe(1);
    expect(s.machine).toMatchObject({ vcpus: 2, memoryBytes: 16 * 1024 * 1024, guest: { profile: 'current', toggles: {} }, host: { profile: 'current' }, cpuid: 'auto' });
    expect(s.tasks[0]).toMatchObject({ name: 'a', kind: 'user', pages: [0x7f0000001000], program: [{ op: 'touch', page: 0x7f0000001000 }] });
    expect(s.events[0]).toEqual({ index: 0, trigger: { kind: 'at', t: 1_000_000 }, after: 0, action: { do: 'smi', cpu: 1, duration: 20_000 } });
    expect(s.budget).toEqual({ maxEvents: 5_000_000, maxTime: 2e9 });
    expect(s.expect).toMatchObject({ outcome: 'completed', fire: [] });
  });
  it('converts programs to the guest types (compute/sleep "for" -> ns, syscall bodies, loops)', () => {
    const s = scenarioFromValue(
      {
        tasks: [
          {
            name: 'a',
            program: [
              { op: 'compute', for: '5us' },
              { op: 'syscall', name: 'read', body: [{ op: 'preempt_disable' }, { op: 'copy_to_user', page: '0x7f0000002000', value: '0x2a' }, { op: 'preempt_enable' }] },
              { op: 'loop', times: 2, body: [{ op: 'sleep', for: '1ms' }] },
            ],
          },
          { name: 'k', kind: 'kthread', program: [{ op: 'rcu_read_lock' }, { op: 'kernel_touch', page: '0x7f0000003000' }, { op: 'rcu_read_unlock' }] },
        ],
      },
      undefined,
    );
    expect(s.tasks[0]?.program).toEqual([
      { op: 'compute', ns: 5000 },
      { op: 'syscall', name: 'read', body: [{ op: 'preempt_disable' }, { op: 'copy_to_user', page: 0x7f0000002000, value: 42 }, { op: 'preempt_enable' }] },
      { op: 'loop', times: 2, body: [{ op: 'sleep', ns: 1_000_000 }] },
    ]);
    expect(s.tasks[0]?.pages).toEqual([0x7f0000002000]);
    expect(s.tasks[1]?.kind).toBe('kthread');
  });
  it('warns when a task touches a page it does not map', () => {
    const s = scenarioFromValue({ tasks: [{ name: 'a', pages: ['0x7f0000002000'], program: [{ op: 'touch', page: '0x7f0000001000' }] }] }, undefined);
    expect(s.warnings).toEqual(['tasks[0] ("a") touches page 0x7f0000001000 which is not in its "pages": that access faults as SIGSEGV']);
  });
  it('reads YAML with hex addresses kept as strings', () => {
    const s = scenarioFromText('tasks:\n  - name: a\n    program:\n      - {op: touch, page: 0x7f0000001000}\n', 'a.yaml');
    expect(s.tasks[0]?.pages).toEqual([0x7f0000001000]);
  });
  it('names host-memory pages by GVA', () => {
    const s = scenarioFromValue({ tasks: [{ name: 'a', program: [{ op: 'touch', page: '0x7f0000001000' }] }], hostMemory: { pages: [{ page: '0x7f0000001000', backing: 'swapped' }] } }, undefined);
    expect(s.hostMemory.pages).toEqual([{ ref: { kind: 'gva', page: 0x7f0000001000 }, backing: 'swapped' }]);
  });
  it('counts further problems in the message', () => {
    expect(() => scenarioFromValue({ tasks: [{ name: 'a', program: [{ op: 'touch', page: 'x' }, { op: 'compute', for: 'y' }] }] }, 'f.json')).toThrow(
      new ScenarioError('f.json', 'tasks[0].program[0].page', 'expected a GVA like "0x7f0000001000" (got "x")', [{ where: '', problem: '' }]),
    );
  });
});

describe('examples in the docs', () => {
  const jsonBlocks = (file: string): string[] => [...fs.readFileSync(path.join(REPO, file), 'utf8').matchAll(/```json\n([\s\S]*?)```/g)].map((m) => m[1] ?? '');
  it('the README example is a valid scenario', () => {
    const first = jsonBlocks('README.md')[0] ?? '';
    expect(() => scenarioFromText(first, 'README.md')).not.toThrow();
  });
  it('the first example of docs/scenario-format.md is a valid scenario', () => {
    const first = jsonBlocks('docs/scenario-format.md')[0] ?? '';
    expect(scenarioFromText(first, 'example.json').name).toBe('two-tasks');
  });
  it('docs/scenario-format.md lists every shipped scenario', () => {
    const doc = fs.readFileSync(path.join(REPO, 'docs', 'scenario-format.md'), 'utf8');
    for (const f of fs.readdirSync(path.join(REPO, 'scenarios')).filter((x) => x.endsWith('.json'))) expect(doc).toContain(`(../scenarios/${f})`);
  });
});
