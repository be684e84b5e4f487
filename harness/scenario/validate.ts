/**
 * From the parsed file (schema output) to a `Scenario`: cross-field checks that the schema
 * cannot express, defaults, and conversion of programs to the guest's types. Problems are
 * collected as `{path, message}` so the loader reports them like schema errors.
 */
import type { Gva } from '../../shared-abi/addr';
import type { KernelOp, TaskSpec, UserOp } from '../../guest/program';
import { CHECKERS, type CheckerSetting } from '../checkers';
import { eventInfo, hasField, knownEventNames } from '../trace/vocabulary';
import { closest } from '../util/names';
import { fmtDuration, hex } from '../util/units';
import type { FieldMatch, ScenarioInput, OpInput, MatchInput, CountInput, InjectionInput, PageRef, BareInput, BareStepInput, ExpectInput, LatencyExpectInput } from './schema';
import type { BareCondition, BarePfPolicy, BareStep } from '../../guest/bare/script';
import { convertNested, type NestedSpec } from './nested';
import { checkMemslotAction, resolveMemslots } from './memslots';
import { DEFAULTS, type BareSpec, type CountExpectation, type Expectations, type LatencyExpectation, type HostMemorySpec, type Injection, type Match, type Regression, type Scenario, type Action, type VariantSpec } from './types';
import { GUEST_KNOBS, HOST_KNOBS, knobValues } from './knobs';
import { BARE_APF_AREA_BYTES, BARE_DEFAULT_APF_AREA, barePageTables } from '../../guest/bare/guest';
import { ASYNC_PF_EN_GPA_MASK, MSR_KVM_ASYNC_PF_EN } from '../../shared-abi/msr';

export interface Problem {
  readonly path: readonly (string | number)[];
  readonly message: string;
}

const USER_ONLY = new Set(['touch', 'syscall', 'yield', 'exit']);
const KERNEL_ONLY = new Set([
  'copy_from_user', 'copy_to_user', 'kernel_touch', 'preempt_disable', 'preempt_enable', 'spin_lock', 'spin_unlock', 'local_irq_disable',
  'local_irq_enable', 'rcu_read_lock', 'rcu_read_unlock', 'schedule',
]);

type Ctx = 'user' | 'kernel' | 'kthread';

class Checker {
  readonly problems: Problem[] = [];
  readonly warnings: string[] = [];
  add(path: readonly (string | number)[], message: string): void {
    this.problems.push({ path, message });
  }
}

/** Converts and checks a parsed scenario. `name` is the fallback name (from the file name). */
export function buildScenario(input: ScenarioInput, name: string, file: string | undefined): { scenario?: Scenario; problems: Problem[] } {
  const c = new Checker();
  const vcpus = input.machine?.vcpus ?? DEFAULTS.vcpus;

  const cpuOk = (path: readonly (string | number)[], cpu: number | undefined): void => {
    if (cpu !== undefined && cpu >= vcpus) c.add(path, `vCPU ${cpu} does not exist: the machine has ${vcpus} vCPU${vcpus === 1 ? '' : 's'} (0${vcpus > 1 ? `-${vcpus - 1}` : ''})`);
  };

  // --- workload -----------------------------------------------------------------------------
  const tasksIn = input.tasks ?? [];
  const nestedIn = input.machine?.nested;
  if (tasksIn.length === 0 && input.bare === undefined && nestedIn === undefined) {
    c.add(['tasks'], 'a scenario needs "tasks" (the guest workload) or "bare" (a scripted bare-metal guest)');
  }
  if (nestedIn !== undefined && input.bare !== undefined) c.add(['machine', 'nested'], 'nested guests need the guest kernel (L1), not the bare-metal guest');
  const nested: NestedSpec | undefined = nestedIn === undefined ? undefined : convertNested(nestedIn, vcpus, tasksIn.map((t) => t.name), (path, message) => c.add(path, message));
  if (tasksIn.length > 0 && input.bare !== undefined) c.add(['bare'], 'use either "tasks" (a guest kernel workload) or "bare" (a bare-metal script), not both');
  if (input.bare !== undefined && vcpus !== 1) c.add(['machine', 'vcpus'], `the bare-metal guest runs on one vCPU (got ${vcpus})`);
  if (input.bare?.apfArea !== undefined && input.bare.apfArea % 64 !== 0) c.add(['bare', 'apfArea'], `the APF area must be 64-byte aligned (got ${hex(input.bare.apfArea)})`);
  if (input.bare !== undefined) checkBareAreas(c, input, input.bare);

  const taskPages = new Map<string, Set<number>>();
  const taskMm = new Map<string, string>();
  const tasks: TaskSpec[] = [];
  const seen = new Map<string, number>();
  tasksIn.forEach((t, i) => {
    const base = ['tasks', i] as const;
    const prev = seen.get(t.name);
    if (prev !== undefined) c.add([...base, 'name'], `task name "${t.name}" is already used by tasks[${prev}]`);
    seen.set(t.name, i);
    cpuOk([...base, 'cpu'], t.cpu);
    t.affinity?.forEach((a, j) => cpuOk([...base, 'affinity', j], a));
    if (t.cpu !== undefined && t.affinity !== undefined && !t.affinity.includes(t.cpu)) {
      c.add([...base, 'cpu'], `the task starts on vCPU ${t.cpu}, which is not in its affinity [${t.affinity.join(', ')}]`);
    }
    const kind = t.kind ?? 'user';
    if (t.mm !== undefined && kind === 'kthread') c.add([...base, 'mm'], 'a kernel thread has no user address space ("mm" is for user tasks)');
    const touched: number[] = [];
    const program = convertOps(c, t.program, [...base, 'program'], kind === 'kthread' ? 'kthread' : 'user', touched);
    const pages = t.pages ?? [...new Set(touched)];
    if (t.pages !== undefined) {
      const listed = new Set<number>(t.pages);
      for (const p of new Set(touched)) {
        if (!listed.has(p)) c.warnings.push(`tasks[${i}] ("${t.name}") touches page ${hex(p)} which is not in its "pages": that access faults as SIGSEGV`);
      }
    }
    taskPages.set(t.name, new Set(pages));
    taskMm.set(t.name, t.mm ?? t.name);
    const spec: TaskSpec = {
      name: t.name,
      kind,
      program: program as readonly UserOp[] | readonly KernelOp[],
      pages: pages as Gva[],
      ...(t.mm === undefined ? {} : { mm: t.mm }),
      ...(t.cpu === undefined ? {} : { cpu: t.cpu }),
      ...(t.affinity === undefined ? {} : { affinity: t.affinity }),
      ...(t.start === undefined ? {} : { start: t.start }),
      ...(t.nice === undefined ? {} : { nice: t.nice }),
    };
    tasks.push(spec);
  });

  // Threads (tasks sharing an mm) see every page of their address space.
  const mmPages = new Map<string, Set<number>>();
  for (const [name, pages] of taskPages) {
    const mm = taskMm.get(name) ?? name;
    const set = mmPages.get(mm) ?? new Set<number>();
    for (const p of pages) set.add(p);
    mmPages.set(mm, set);
  }
  for (const name of taskPages.keys()) taskPages.set(name, mmPages.get(taskMm.get(name) ?? name) ?? new Set());

  const pageRefOk = (path: readonly (string | number)[], ref: PageRef): void => {
    if (ref.kind === 'gfn') return;
    if (input.bare !== undefined) {
      c.add(path, 'a bare-metal guest has no tasks: name pages by {"gfn": ...}');
      return;
    }
    if (ref.task !== undefined) {
      const pages = taskPages.get(ref.task);
      if (pages === undefined) c.add([...path, 'task'], `no task named "${ref.task}"${hint(ref.task, [...taskPages.keys()])}`);
      else if (!pages.has(ref.page)) c.add([...path, 'page'], `task "${ref.task}" does not map page ${hex(ref.page)}`);
      return;
    }
    if (![...taskPages.values()].some((s) => s.has(ref.page))) c.add(path, `no task maps page ${hex(ref.page)}`);
  };

  // --- host memory ---------------------------------------------------------------------------
  const hm = input.hostMemory;
  const memslots = resolveMemslots(hm?.memslots, input.machine?.memory ?? DEFAULTS.memoryBytes, (path, message) => c.add(path, message));
  const hostMemory: HostMemorySpec = {
    pages: (hm?.pages ?? []).map((p, i) => {
      const path = ['hostMemory', 'pages', i];
      let ref: PageRef;
      if (p.gfn !== undefined) {
        if (p.page !== undefined || p.task !== undefined) c.add(path, 'give either "gfn" (a frame) or "page" (a GVA, optionally with "task"), not both');
        ref = { kind: 'gfn', gfn: p.gfn, count: p.count ?? 1 };
      } else if (p.page !== undefined) {
        if (p.count !== undefined) c.add([...path, 'count'], '"count" goes with "gfn"; list GVAs one by one');
        ref = p.task === undefined ? { kind: 'gva', page: p.page } : { kind: 'gva', page: p.page, task: p.task };
      } else {
        c.add(path, 'expected "page" (a GVA) or "gfn"');
        ref = { kind: 'gfn', gfn: 0, count: 1 };
      }
      pageRefOk(path, ref);
      return { ref, backing: p.backing };
    }),
    evictions: (hm?.evictions ?? []).map((e, i) => {
      e.pages.forEach((r, j) => pageRefOk(['hostMemory', 'evictions', i, 'pages', j], r));
      return { t: e.at, pages: e.pages };
    }),
    ...(hm?.default === undefined ? {} : { defaultBacking: hm.default }),
    ...(hm?.latency?.swap === undefined ? {} : { swapLatency: hm.latency.swap }),
    ...(hm?.latency?.remote === undefined ? {} : { remoteLatency: hm.latency.remote }),
    ...(hm?.latency?.fail === undefined ? {} : { failLatency: hm.latency.fail }),
    ...(hm?.limitPages === undefined ? {} : { limitPages: hm.limitPages }),
    ...(memslots === undefined ? {} : { memslots }),
  };

  // --- events --------------------------------------------------------------------------------
  const events: Injection[] = [];
  // The same checks for the scenario's events and for a regression variant's own events.
  const checkInjection = (inj: Injection, path: readonly (string | number)[]): void => {
    if ('cpu' in inj.action) cpuOk([...path, 'cpu'], inj.action.cpu);
    if (inj.action.do === 'evict' || inj.action.do === 'page_migrate') inj.action.pages.forEach((r, j) => pageRefOk([...path, 'pages', j], r));
    checkMemslotAction(inj.action, memslots?.length ?? 1, path, (p, message) => c.add(p, message));
    if (inj.action.do === 'nested_migrate' && nested === undefined) c.add([...path, 'do'], '"nested_migrate" needs nested guests ("machine.nested")');
  };
  (input.events ?? []).forEach((e, i) => {
    const path = ['events', i];
    const inj = convertInjection(c, e, i, path);
    checkInjection(inj, path);
    events.push(inj);
  });

  // --- checkers ------------------------------------------------------------------------------
  const checkers: Record<string, CheckerSetting> = {};
  for (const def of CHECKERS) {
    const s = (input.checkers as Readonly<Record<string, CheckerSetting | undefined>> | undefined)?.[def.name];
    checkers[def.name] = s ?? true;
  }
  const enabled = new Set(CHECKERS.filter((d) => checkers[d.name] !== false).map((d) => d.name));

  // --- expectations --------------------------------------------------------------------------
  const expect = convertExpect(c, input.expect, enabled, ['expect']);

  // --- regression variants -------------------------------------------------------------------
  const convertVariantEvents = (list: readonly InjectionInput[], base: readonly (string | number)[]): Injection[] =>
    list.map((e, i) => {
      const inj = convertInjection(c, e, i, [...base, i]);
      checkInjection(inj, [...base, i]);
      return inj;
    });
  let regression: Regression | undefined;
  if (input.regression !== undefined) {
    const { variants: vIn, ...header } = input.regression;
    const variants: Record<string, VariantSpec> = {};
    for (const [vname, v] of Object.entries(vIn ?? {})) {
      const path = ['regression', 'variants', vname];
      variants[vname] = {
        ...(v.description === undefined ? {} : { description: v.description }),
        guest: { ...(v.guest?.profile === undefined ? {} : { profile: v.guest.profile }), toggles: definedOnly(v.guest?.toggles ?? {}) },
        host: { ...(v.host?.profile === undefined ? {} : { profile: v.host.profile }), toggles: definedOnly(v.host?.toggles ?? {}) },
        ...(v.events === undefined ? {} : { events: convertVariantEvents(v.events, [...path, 'events']) }),
        expect: convertExpect(c, v.expect, enabled, [...path, 'expect']),
        verdict: { ...(v.verdict?.pass === undefined ? {} : { pass: v.verdict.pass }), ...(v.verdict?.fail === undefined ? {} : { fail: v.verdict.fail }) },
      };
    }
    regression = { ...header, variants };
  }

  if (c.problems.length > 0) return { problems: c.problems };
  const m = input.machine;
  const scenario: Scenario = {
    ...(file === undefined ? {} : { file }),
    name: input.name ?? name,
    ...(input.description === undefined ? {} : { description: input.description }),
    notes: input.notes ?? [],
    seed: input.seed ?? DEFAULTS.seed,
    machine: {
      vcpus,
      memoryBytes: m?.memory ?? DEFAULTS.memoryBytes,
      guest: {
        profile: m?.guest?.profile ?? DEFAULTS.guestProfile,
        toggles: definedOnly(m?.guest?.toggles ?? {}),
        ...knobValues(GUEST_KNOBS, m?.guest),
      },
      host: {
        profile: (m?.host?.profile ?? DEFAULTS.hostProfile) as Scenario['machine']['host']['profile'],
        toggles: definedOnly(m?.host?.toggles ?? {}),
        ...knobValues(HOST_KNOBS, m?.host),
      },
      cpuid: (m?.cpuid ?? 'auto') as Scenario['machine']['cpuid'],
      ...(nested === undefined ? {} : { nested }),
      ...(m?.design === undefined ? {} : { design: m.design }),
    },
    hostMemory,
    tasks,
    ...(input.bare === undefined ? {} : { bare: convertBare(input.bare) }),
    events,
    expect,
    verdict: { ...(input.verdict?.pass === undefined ? {} : { pass: input.verdict.pass }), ...(input.verdict?.fail === undefined ? {} : { fail: input.verdict.fail }) },
    ...(regression === undefined ? {} : { regression }),
    checkers,
    budget: { maxEvents: input.budget?.maxEvents ?? DEFAULTS.maxEvents, maxTime: input.budget?.maxTime ?? DEFAULTS.maxTime },
    warnings: c.warnings,
  };
  return { scenario, problems: [] };
}

/**
 * The bare guest's APF area must not overlap its page tables: the host writes the flags and the
 * token there, which would overwrite page-table entries (and the loader zeroes the area after
 * building the tables). Checked for `bare.apfArea`, and for the areas a script's WRMSR or a
 * `set_msr` event registers in MSR_KVM_ASYNC_PF_EN (bit 0 set).
 */
function checkBareAreas(c: Checker, input: ScenarioInput, bare: BareInput): void {
  const pt = barePageTables(input.machine?.memory ?? DEFAULTS.memoryBytes);
  const check = (path: readonly (string | number)[], gpa: number, what: string): void => {
    const end = gpa + BARE_APF_AREA_BYTES;
    if (gpa >= pt.end || end <= pt.start) return;
    c.add(
      path,
      `${what} at ${hex(gpa)} (${hex(gpa)}-${hex(end - 1)}) overlaps the bare guest's page tables (${hex(pt.start)}-${hex(pt.end - 1)}): ` +
        `the host's flag and token writes would overwrite page-table entries; put the area outside them (the default is ${hex(BARE_DEFAULT_APF_AREA)})`,
    );
  };
  check(['bare', 'apfArea'], bare.apfArea ?? BARE_DEFAULT_APF_AREA, 'the APF area');
  const enArea = (value: bigint): number | undefined => ((value & 1n) === 0n ? undefined : Number(value & ASYNC_PF_EN_GPA_MASK));
  const walk = (steps: readonly BareStepInput[], path: readonly (string | number)[]): void => {
    steps.forEach((st, i) => {
      if (st.op === 'wrmsr' && st.msr === MSR_KVM_ASYNC_PF_EN) {
        const gpa = enArea(st.value);
        if (gpa !== undefined) check([...path, i, 'value'], gpa, 'the APF area this WRMSR registers');
      } else if (st.op === 'repeat') walk(st.body, [...path, i, 'body']);
    });
  };
  walk(bare.script, ['bare', 'script']);
  const events = (list: readonly InjectionInput[] | undefined, path: readonly (string | number)[]): void =>
    list?.forEach((e, i) => {
      if (e.do !== 'set_msr' || e.msr !== MSR_KVM_ASYNC_PF_EN) return;
      const gpa = enArea(e.value);
      if (gpa !== undefined) check([...path, i, 'value'], gpa, 'the APF area this set_msr registers');
    });
  events(input.events, ['events']);
  for (const [name, v] of Object.entries(input.regression?.variants ?? {})) events(v.events, ['regression', 'variants', name, 'events']);
}

/** Expectations (the scenario's own, or a variant's) with their cross-field checks; problems are reported under `base`. */
function convertExpect(c: Checker, ex: ExpectInput | undefined, enabled: ReadonlySet<string>, base: readonly (string | number)[]): Expectations {
  const counts: CountExpectation[] = [];
  for (const [event, v] of Object.entries(ex?.counts ?? {})) counts.push(convertCount(c, event, v, [...base, 'counts', event]));
  const sequence = (ex?.sequence ?? []).map((m, i) => convertMatch(c, m, [...base, 'sequence', i], true));
  const absent = (ex?.absent ?? []).map((m, i) => convertMatch(c, m, [...base, 'absent', i], false));
  const latency = (ex?.latency ?? []).map((l, i) => convertLatency(c, l, [...base, 'latency', i]));
  const fire = ex?.checkers?.fire ?? [];
  const pass = ex?.checkers?.pass;
  fire.forEach((n, i) => {
    if (!enabled.has(n)) c.add([...base, 'checkers', 'fire', i], `checker "${n}" is expected to fire but is disabled in "checkers"`);
    if (pass?.includes(n) === true) c.add([...base, 'checkers', 'fire', i], `checker "${n}" is listed both under "pass" and "fire"`);
  });
  pass?.forEach((n, i) => {
    if (!enabled.has(n)) c.add([...base, 'checkers', 'pass', i], `checker "${n}" is expected to pass but is disabled in "checkers"`);
  });
  let outcome = ex?.outcome ?? (ex?.panic !== undefined ? 'panic' : 'completed');
  if (ex?.panic !== undefined && outcome !== 'panic') {
    c.add([...base, 'panic'], `a panic message is expected but the expected outcome is "${outcome}"`);
    outcome = 'panic';
  }
  return {
    outcome,
    ...(ex?.panic === undefined ? {} : { panic: ex.panic }),
    counts,
    sequence,
    absent,
    ...(latency.length === 0 ? {} : { latency }),
    ...(pass === undefined ? {} : { pass }),
    fire,
  };
}

/** A latency expectation: both matches checked (captures allowed: `from` binds them per pair), and its bounds. */
function convertLatency(c: Checker, l: LatencyExpectInput, path: readonly (string | number)[]): LatencyExpectation {
  const from = convertMatch(c, l.from, [...path, 'from'], true);
  const to = convertMatch(c, l.to, [...path, 'to'], true);
  if (l.min === undefined && l.max === undefined) c.add(path, 'give "min", "max" or both (times like "200us")');
  if (l.min !== undefined && l.max !== undefined && l.min > l.max) c.add(path, `min (${fmtDuration(l.min)}) is above max (${fmtDuration(l.max)})`);
  return { from, to, ...(l.min === undefined ? {} : { min: l.min }), ...(l.max === undefined ? {} : { max: l.max }) };
}

function definedOnly<T extends string>(o: Readonly<Partial<Record<T, boolean | undefined>>>): Record<T, boolean> {
  const out = {} as Record<T, boolean>;
  for (const k of Object.keys(o) as T[]) {
    const v = o[k];
    if (v !== undefined) out[k] = v;
  }
  return out;
}

function hint(name: string, names: readonly string[]): string {
  const h = closest(name, names);
  return h === undefined ? '' : ` (did you mean "${h}"?)`;
}

function convertOps(c: Checker, ops: readonly OpInput[], path: readonly (string | number)[], ctx: Ctx, touched: number[]): (UserOp | KernelOp)[] {
  const out: (UserOp | KernelOp)[] = [];
  ops.forEach((op, i) => {
    const p = [...path, i];
    if (ctx !== 'user' && USER_ONLY.has(op.op) && !(ctx === 'kthread' && op.op === 'exit')) {
      const why =
        op.op === 'touch'
          ? 'use "copy_from_user"/"copy_to_user" (with a fixup) or "kernel_touch" (without) for kernel accesses to user pages'
          : op.op === 'syscall'
            ? 'a system call is entered from user mode'
            : 'it is a user-mode operation';
      c.add([...p, 'op'], `"${op.op}" cannot run in ${ctx === 'kthread' ? 'a kernel thread' : 'a syscall body'}: ${why}`);
      return;
    }
    if (ctx === 'user' && KERNEL_ONLY.has(op.op)) {
      c.add([...p, 'op'], `"${op.op}" is a kernel operation: put it in a syscall body ({"op": "syscall", "body": [...]}) or make the task a kthread`);
      return;
    }
    switch (op.op) {
      case 'touch':
      case 'kernel_touch':
        touched.push(op.page);
        out.push({
          op: op.op,
          page: op.page,
          ...(op.write === undefined ? {} : { write: op.write }),
          ...(op.offset === undefined ? {} : { offset: op.offset }),
          ...(op.value === undefined ? {} : { value: op.value }),
        });
        return;
      case 'copy_from_user':
        touched.push(op.page);
        out.push({ op: op.op, page: op.page, ...(op.offset === undefined ? {} : { offset: op.offset }) });
        return;
      case 'copy_to_user':
        touched.push(op.page);
        out.push({ op: op.op, page: op.page, ...(op.offset === undefined ? {} : { offset: op.offset }), ...(op.value === undefined ? {} : { value: op.value }) });
        return;
      case 'compute':
        out.push({ op: 'compute', ns: op.for });
        return;
      case 'sleep':
        out.push({ op: 'sleep', ns: op.for });
        return;
      case 'syscall':
        out.push({ op: 'syscall', ...(op.name === undefined ? {} : { name: op.name }), body: convertOps(c, op.body, [...p, 'body'], 'kernel', touched) as KernelOp[] });
        return;
      case 'loop': {
        const body = convertOps(c, op.body, [...p, 'body'], ctx, touched);
        out.push({ op: 'loop', times: op.times, body } as UserOp | KernelOp);
        return;
      }
      case 'exit':
        out.push({ op: 'exit', ...(op.code === undefined ? {} : { code: op.code }) });
        return;
      case 'spin_lock':
      case 'spin_unlock':
        out.push({ op: op.op, lock: op.lock, ...(op.raw === undefined ? {} : { raw: op.raw }) });
        return;
      default:
        out.push({ op: op.op });
    }
  });
  return out;
}

/** Checks an event name (reported at `eventPath`) and field names (reported under `fieldsPath`). */
function checkEvent(c: Checker, eventPath: readonly (string | number)[], event: string, fieldsPath: readonly (string | number)[], fields: readonly string[]): void {
  const info = eventInfo(event);
  if (info === undefined) {
    c.add(eventPath, `unknown trace event "${event}"${hint(event, knownEventNames())} (docs/trace-events.md lists them)`);
    return;
  }
  for (const f of fields) {
    if (!hasField(info, f)) {
      c.add([...fieldsPath, f], `event "${event}" has no field "${f}"${hint(f, info.fields)}; its fields: ${info.fields.join(', ') || '(none)'}`);
    }
  }
}

/**
 * Field values checked against the field types of the catalogue: a string field compares as text,
 * so a value written as hex ("0x1000") stays the string "0x1000"; a number for a string field, or
 * a string that is not a number for a numeric field, could never match and is refused.
 */
function typedFields(c: Checker, event: string, fields: Readonly<Record<string, FieldMatch>>, path: readonly (string | number)[]): Record<string, FieldMatch> {
  const info = eventInfo(event);
  const out: Record<string, FieldMatch> = {};
  for (const [k, f] of Object.entries(fields)) {
    out[k] = f;
    const spec = info?.spec.fields[k];
    if (spec === undefined || (f.kind !== 'eq' && f.kind !== 'not')) continue;
    const v = f.value;
    const where = [...path, k];
    const shown = f.kind === 'not' ? '{"not": ...}' : 'the value';
    if (spec.kind === 'string') {
      if (f.text !== undefined) out[k] = { kind: f.kind, value: f.text };
      else if (typeof v !== 'string') c.add(where, `"${k}" of ${event} is a string: ${shown} ${JSON.stringify(typeof v === 'bigint' ? v.toString() : v)} can never match it; write it as a string`);
      else if (spec.values !== undefined && !spec.values.includes(v)) c.add(where, `"${k}" of ${event} is one of ${spec.values.map((x) => `"${x}"`).join(', ')} (got "${v}")`);
    } else if (spec.kind === 'boolean') {
      if (typeof v !== 'boolean') c.add(where, `"${k}" of ${event} is true or false: ${JSON.stringify(typeof v === 'bigint' ? v.toString() : v)} can never match it`);
    } else if (typeof v === 'string' || typeof v === 'boolean') {
      c.add(where, `"${k}" of ${event} is a number: ${JSON.stringify(v)} can never match it; write a number or "0x..." hex`);
    }
  }
  return out;
}

function convertMatch(c: Checker, m: MatchInput, path: readonly (string | number)[], allowCapture: boolean): Match {
  const fields = typedFields(c, m.event, m.fields ?? {}, [...path, 'fields']);
  checkEvent(c, [...path, 'event'], m.event, [...path, 'fields'], Object.keys(fields));
  if (!allowCapture) {
    for (const [k, f] of Object.entries(fields)) if (f.kind === 'capture') c.add([...path, 'fields', k], `captures ("$${f.name}") only work in "expect.sequence"`);
  }
  return { event: m.event, fields, ...(m.cpu === undefined ? {} : { cpu: m.cpu }), ...(m.src === undefined ? {} : { src: m.src }) };
}

function convertCount(c: Checker, event: string, v: CountInput, path: readonly (string | number)[]): CountExpectation {
  const fields = typeof v === 'number' ? {} : typedFields(c, event, v.fields ?? {}, [...path, 'fields']);
  checkEvent(c, path, event, [...path, 'fields'], Object.keys(fields));
  if (typeof v === 'number') return { event, min: v, max: v, fields: {} };
  for (const [k, f] of Object.entries(fields)) if (f.kind === 'capture') c.add([...path, 'fields', k], `captures ("$${f.name}") only work in "expect.sequence"`);
  if (v.min !== undefined && v.max !== undefined && v.min > v.max) c.add(path, `min (${v.min}) is above max (${v.max})`);
  if (v.min === undefined && v.max === undefined) c.add(path, 'give "min", "max" or both (or a plain number for an exact count)');
  const window = v.window === undefined ? undefined : { from: v.window.from ?? 0, to: v.window.to ?? Number.MAX_SAFE_INTEGER };
  if (window !== undefined && window.from >= window.to) c.add([...path, 'window'], `the window is empty: "from" (${fmtDuration(window.from)}) is not before "to" (${fmtDuration(window.to)})`);
  return {
    event,
    min: v.min ?? 0,
    max: v.max ?? Number.MAX_SAFE_INTEGER,
    fields,
    ...(v.cpu === undefined ? {} : { cpu: v.cpu }),
    ...(v.src === undefined ? {} : { src: v.src }),
    ...(window === undefined ? {} : { window }),
  };
}

function convertInjection(c: Checker, e: InjectionInput, index: number, path: readonly (string | number)[]): Injection {
  const { at, on, after, nth, every, ...action } = e;
  let trigger: Injection['trigger'] = { kind: 'at', t: 0 };
  if (at !== undefined && on !== undefined) c.add(path, 'give either "at" (a time) or "on" (a trace match), not both');
  else if (at === undefined && on === undefined) c.add(path, 'say when: "at" (a virtual time like "2ms") or "on" (a trace match like {"event": "kvm_async_pf_not_present"})');
  else if (at !== undefined) {
    trigger = { kind: 'at', t: at };
    if (nth !== undefined || every !== undefined) c.add([...path, nth !== undefined ? 'nth' : 'every'], '"nth" and "every" go with "on" (a trace match), not with "at"');
  } else if (on !== undefined) {
    trigger = { kind: 'on', match: convertMatch(c, on, [...path, 'on'], false), nth: nth ?? 1, every: every ?? false };
  }
  return { index, trigger, after: after ?? 0, action: action as Action };
}

function convertPf(p: NonNullable<BareInput['pf']>): Partial<BarePfPolicy> {
  return {
    ...(p.clearFlags === undefined ? {} : { clearFlags: p.clearFlags }),
    ...(p.wait === undefined ? {} : { wait: p.wait }),
    ...(p.waitFor === undefined ? {} : { waitFor: p.waitFor }),
    ...(p.limit === undefined ? {} : { limitNs: p.limit }),
  };
}

function convertBareSteps(steps: readonly BareStepInput[]): BareStep[] {
  return steps.map((st): BareStep => {
    switch (st.op) {
      case 'spin':
        return { op: 'spin', ns: st.for };
      case 'cpuid':
        return { op: 'cpuid', leaf: st.leaf, ...(st.subleaf === undefined ? {} : { subleaf: st.subleaf }) };
      case 'wait': {
        const u = st.until;
        const until: BareCondition = u.kind === 'time' ? { kind: 'time', t: u.t } : u;
        return { op: 'wait', until, ...(st.timeout === undefined ? {} : { timeoutNs: st.timeout }), ...(st.mode === undefined ? {} : { mode: st.mode }) };
      }
      case 'policy':
        return { op: 'policy', ...(st.pf === undefined ? {} : { pf: convertPf(st.pf) }), ...(st.pageReady === undefined ? {} : { pageReady: st.pageReady }) };
      case 'repeat':
        return { op: 'repeat', times: st.times, body: convertBareSteps(st.body) };
      case 'touch':
        return { op: 'touch', addr: st.addr, ...(st.write === undefined ? {} : { write: st.write }), ...(st.value === undefined ? {} : { value: st.value }) };
      default:
        return st;
    }
  });
}

function convertBare(b: BareInput): BareSpec {
  return {
    script: convertBareSteps(b.script),
    ...(b.pf === undefined ? {} : { pf: convertPf(b.pf) }),
    ...(b.pageReady === undefined ? {} : { pageReady: b.pageReady }),
    ...(b.apfArea === undefined ? {} : { apfArea: b.apfArea }),
  };
}
