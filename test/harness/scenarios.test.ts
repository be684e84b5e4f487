/**
 * Every scenario in scenarios/ runs from the CLI entry function with its expectations met; the
 * default scenario is deterministic and its Perfetto trace is valid trace-event JSON; and every
 * record the runs emit is in the harness's trace vocabulary (so expectations can name it).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { native } from '../support/native';
import { cli, REPO, tmpDir } from './cli-helpers';

const { scenarioFiles } = native<typeof import('../../harness/cli/commands/list')>('harness/cli/commands/list');
const { runScenario } = native<typeof import('../../harness/runner')>('harness/runner');
const { loadScenarioFile } = native<typeof import('../../harness/scenario/load')>('harness/scenario/load');
const { recordProblems } = native<typeof import('../../harness/trace/vocabulary')>('harness/trace/vocabulary');

const files = scenarioFiles(path.join(REPO, 'scenarios')).map((f) => path.relative(REPO, f));
const runs = tmpDir();
afterAll(() => fs.rmSync(runs, { recursive: true, force: true }));

describe('scenarios/', () => {
  it('has the default demo, the asyncpf.c replay and a scenario per capability', () => {
    expect(files).toEqual(expect.arrayContaining(['scenarios/default.json', 'scenarios/kvm-unit-tests-asyncpf.json']));
    expect(files.length).toBeGreaterThanOrEqual(15);
  });

  it.each(files)('%s runs from the CLI with its expectations met', (file) => {
    const r = cli(['run', file, '--quiet', '--runs-dir', runs], { cwd: REPO });
    expect(r.err).toBe('');
    expect(r.out).toMatch(/^PASS /);
    expect(r.code).toBe(0);
  });

  it('emits only records the trace catalogue describes: known events, sources and fields, values of the declared types', () => {
    const problems = new Set<string>();
    let n = 0;
    for (const file of files) {
      runScenario(loadScenarioFile(path.join(REPO, file), file), {
        onRecord: (rec) => {
          n++;
          for (const p of recordProblems(rec)) problems.add(p);
        },
      });
    }
    expect(n).toBeGreaterThan(1000);
    expect([...problems].sort()).toEqual([]);
  });
});

describe('toggles on the command line', () => {
  it('reverting one fix changes the verdict: SMI with the pre-2025 queue clearing strands the sleeper', () => {
    const r = cli(['run', 'scenarios/smi-keeps-queue.json', '--toggle', 'keep_queue_on_cr0_pg=off', '--json', '--runs-dir', runs], { cwd: REPO });
    expect(r.code).toBe(1);
    const j = JSON.parse(r.out) as { outcome: string; violations: Array<{ checker: string }>; replay: string; host: { toggles: Record<string, boolean> } };
    expect(j.outcome).toBe('budget');
    expect(j.violations.map((v) => v.checker)).toContain('hung-task');
    expect(j.host.toggles).toEqual({ keep_queue_on_cr0_pg: false });
    expect(j.replay).toBe('npx apf run scenarios/smi-keeps-queue.json --seed 1 --guest current --host current --toggle keep_queue_on_cr0_pg=off');
  });
});

describe('the default scenario', () => {
  it('is deterministic: the same seed gives the same trace hash, another seed may not', () => {
    const hash = (seed: string): string => {
      const r = cli(['run', '--json', '--seed', seed, '--runs-dir', runs], { cwd: REPO });
      return (JSON.parse(r.out) as { traceHash: string }).traceHash;
    };
    const a = hash('1');
    expect(a).toMatch(/^[0-9a-f]{16}$/);
    expect(hash('1')).toBe(a);
  });

  it('writes a Perfetto trace that parses as trace-event JSON with a track per vCPU and per worker', () => {
    const out = path.join(runs, 'default.perfetto.json');
    const r = cli(['run', '--quiet', '--trace', out, '--trace-format', 'perfetto', '--runs-dir', runs], { cwd: REPO });
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const j = JSON.parse(fs.readFileSync(out, 'utf8')) as { traceEvents: Array<{ ph: string; name: string; pid: number; tid: number; ts: number; args?: { name?: string } }> };
    const threads = j.traceEvents.filter((e) => e.ph === 'M' && e.name === 'thread_name').map((e) => e.args?.name);
    expect(threads).toEqual(expect.arrayContaining(['vCPU 0', 'vCPU 1', 'vCPU 0 (KVM)', 'vCPU 1 (KVM)', 'kworker (vCPU 0)', 'kworker (vCPU 1)']));
    const processes = j.traceEvents.filter((e) => e.ph === 'M' && e.name === 'process_name').map((e) => e.args?.name);
    expect(processes).toEqual(['guest vCPUs', 'host KVM', 'async_pf workers', 'harness']);
    for (const e of j.traceEvents) {
      expect(typeof e.ts).toBe('number');
      expect(Number.isFinite(e.ts)).toBe(true);
    }
    const names = new Set(j.traceEvents.filter((e) => e.ph === 'i').map((e) => e.name));
    for (const n of ['kvm_async_pf_not_present', 'kvm_async_pf_ready', 'sysvec_kvm_asyncpf_interrupt', 'kvm_async_pf_completed']) expect(names).toContain(n);
    // Task slices on the vCPU tracks and one async slice per token, all closed.
    const slices = j.traceEvents.filter((e) => e.ph === 'B' && e.pid === 1).map((e) => e.name);
    expect(slices).toEqual(expect.arrayContaining(['reader', 'spinner', 'writer']));
    const open = new Map<string, number>();
    for (const e of j.traceEvents) {
      const key = `${e.pid}:${e.tid}`;
      if (e.ph === 'B') open.set(key, (open.get(key) ?? 0) + 1);
      if (e.ph === 'E') {
        expect(open.get(key) ?? 0).toBeGreaterThan(0);
        open.set(key, (open.get(key) ?? 0) - 1);
      }
    }
    expect([...open.values()].every((n) => n === 0)).toBe(true);
    expect(j.traceEvents.filter((e) => e.ph === 'b').length).toBe(2);
    expect(j.traceEvents.filter((e) => e.ph === 'e').length).toBe(2);
  });
});
