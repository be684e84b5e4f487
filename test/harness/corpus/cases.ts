/**
 * The front end's corpus: malformed scenario files and command-line misuses, each with the exit
 * status and a piece of the one line it must print. `file` is written as `<id>.<ext>` into a fresh
 * directory that is also the working directory; `$FILE` in argv names it, `$REPO` the repository
 * and `$TMP` that directory.
 */

export interface CorpusCase {
  readonly id: string;
  /** Scenario file contents: an object (written as JSON) or raw text. */
  readonly file?: unknown;
  readonly ext?: 'json' | 'yaml';
  /** Defaults to ['run', '$FILE', '-q']. */
  readonly argv?: readonly string[];
  readonly code: 0 | 1 | 2;
  /** Must occur in stderr (exit 2) or stdout (exit 0/1). */
  readonly msg: string;
}

const PAGE = '0x7f0000001000';
const task = (program: unknown[] = [{ op: 'touch', page: PAGE }], extra: Record<string, unknown> = {}) => ({ name: 't', program, ...extra });
/** A small valid scenario with `patch` merged at the top level. */
const sc = (patch: Record<string, unknown> = {}): Record<string, unknown> => ({ tasks: [task()], ...patch });
const machine = (m: Record<string, unknown>) => sc({ machine: m });
const ev = (e: Record<string, unknown>, m: Record<string, unknown> = {}) => sc({ machine: { vcpus: 2, ...m }, events: [{ at: '1us', ...e }] });
const expectOf = (x: Record<string, unknown>) => sc({ expect: x });
const prog = (program: unknown[], extra: Record<string, unknown> = {}) => sc({ tasks: [task(program, extra)] });
const regression = (variants: Record<string, unknown>) => sc({ regression: { bug: 'b', fixedBy: 'f', shows: 's', variants } });
const nest = (depth: number): unknown[] => {
  let body: unknown[] = [{ op: 'touch', page: PAGE }];
  for (let i = 0; i < depth; i++) body = [{ op: 'loop', times: 1, body }];
  return body;
};
const REG = '$REPO/scenarios/regressions/token-zero-wraparound.json';
const DEF = '$REPO/scenarios/default.json';

export const CASES: readonly CorpusCase[] = [
  // --- syntax and encoding -------------------------------------------------------------------
  { id: 'empty-file', file: '', code: 2, msg: 'not valid JSON' },
  { id: 'only-spaces', file: '   \n ', code: 2, msg: 'not valid JSON' },
  { id: 'truncated', file: '{"tasks": [', code: 2, msg: 'not valid JSON' },
  { id: 'trailing-comma', file: '{"tasks": [],}', code: 2, msg: 'not valid JSON (line 1, column' },
  { id: 'single-quotes', file: "{'tasks': []}", code: 2, msg: 'not valid JSON' },
  { id: 'binary-garbage', file: '\u0000\u0001\u0002\u00ff', code: 2, msg: 'not valid JSON' },
  { id: 'bom-json', file: '\ufeff' + JSON.stringify(sc({ bogus: 1 })), code: 2, msg: 'bogus: unknown key "bogus"' },
  { id: 'bom-yaml', ext: 'yaml', file: '\ufefftasks:\n  - name: t\n    program: [{op: tuch}]\n', code: 2, msg: 'unknown op "tuch" (did you mean "touch"?)' },
  { id: 'json-null', file: 'null', code: 2, msg: 'expected a scenario object' },
  { id: 'json-array', file: '[]', code: 2, msg: 'expected a scenario object' },
  { id: 'json-number', file: '42', code: 2, msg: 'expected a scenario object' },
  { id: 'json-string', file: '"tasks"', code: 2, msg: 'expected a scenario object' },
  { id: 'yaml-scalar', ext: 'yaml', file: 'hello\n', code: 2, msg: 'expected a scenario object' },
  { id: 'yaml-bad-indent', ext: 'yaml', file: 'tasks:\n - name: t\n   program: [\n', code: 2, msg: 'not valid YAML' },
  { id: 'yaml-duplicate-key', ext: 'yaml', file: 'tasks: []\ntasks: []\n', code: 2, msg: 'not valid YAML' },
  { id: 'yaml-js-function-tag', ext: 'yaml', file: 'name: !!js/function "function () {}"\ntasks: []\n', code: 2, msg: 'unknown tag' },
  { id: 'yaml-python-tag', ext: 'yaml', file: 'name: !!python/object:os.system "ls"\n', code: 2, msg: 'unknown tag' },
  { id: 'yaml-custom-tag', ext: 'yaml', file: 'name: !foo bar\n', code: 2, msg: 'unknown tag !foo' },
  {
    id: 'yaml-alias-bomb',
    ext: 'yaml',
    file: 'a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n',
    code: 2,
    msg: 'aliases expand too much',
  },
  { id: 'deep-json-arrays', file: '{"tasks": ' + '['.repeat(5000) + ']'.repeat(5000) + '}', code: 2, msg: 'nested too deeply' },
  { id: 'deep-json-objects', file: '{"a":'.repeat(3000) + '1' + '}'.repeat(3000), code: 2, msg: 'nested too deeply' },
  { id: 'deep-yaml', ext: 'yaml', file: 'a: ' + '['.repeat(3000) + ']'.repeat(3000) + '\n', code: 2, msg: 'nested too deeply' },
  { id: 'deep-program', file: prog(nest(1000)), code: 2, msg: 'nested too deeply' },

  // --- prototype names -------------------------------------------------------------------------
  { id: 'proto-top', file: '{"__proto__": {"tasks": []}, "tasks": []}', code: 2, msg: '"__proto__" is not allowed' },
  { id: 'proto-in-counts', file: '{"tasks": [{"name": "t", "program": [{"op": "touch", "page": "0x7f0000001000"}]}], "expect": {"counts": {"__proto__": 1}}}', code: 2, msg: 'expect.counts.__proto__: the key "__proto__" is not allowed' },
  { id: 'proto-in-fields', file: '{"tasks": [{"name": "t", "program": []}], "expect": {"sequence": [{"event": "kvm_async_pf_ready", "fields": {"__proto__": 1}}]}}', code: 2, msg: 'fields.__proto__: the key "__proto__" is not allowed' },
  { id: 'proto-variant', file: '{"tasks": [{"name": "t", "program": []}], "regression": {"bug": "b", "fixedBy": "f", "shows": "s", "variants": {"__proto__": {}}}}', code: 2, msg: 'regression.variants.__proto__: the key "__proto__" is not allowed' },
  { id: 'proto-yaml', ext: 'yaml', file: 'tasks: []\nexpect:\n  counts:\n    __proto__: 1\n', code: 2, msg: '"__proto__" is not allowed' },
  { id: 'constructor-count', file: expectOf({ counts: { constructor: 1 } }), code: 2, msg: 'unknown trace event "constructor"' },
  { id: 'tostring-count', file: expectOf({ counts: { toString: 1 } }), code: 2, msg: 'unknown trace event "toString"' },
  { id: 'constructor-checker', file: sc({ checkers: { constructor: false } }), code: 2, msg: 'unknown checker "constructor"' },
  { id: 'constructor-toggle', file: machine({ host: { toggles: { constructor: true } } }), code: 2, msg: 'unknown host toggle "constructor"' },
  { id: 'variant-proto-cli', argv: ['run', REG, '--variant', '__proto__'], code: 2, msg: 'has no variant "__proto__"' },
  { id: 'variant-constructor-cli', argv: ['run', REG, '--variant', 'constructor'], code: 2, msg: 'has no variant "constructor"' },
  { id: 'variant-tostring-cli', argv: ['run', REG, '--variant', 'toString'], code: 2, msg: 'has no variant "toString"' },
  { id: 'variant-compare-cli', argv: ['compare', REG, '--variant', 'hasOwnProperty'], code: 2, msg: 'has no variant "hasOwnProperty"' },
  { id: 'variant-none', argv: ['run', DEF, '--variant', 'buggy'], code: 2, msg: 'has no variants' },
  { id: 'command-constructor', argv: ['constructor'], code: 2, msg: 'apf: unknown command "constructor"' },
  { id: 'command-proto', argv: ['__proto__'], code: 2, msg: 'apf: unknown command "__proto__"' },
  { id: 'command-typo', argv: ['rn'], code: 2, msg: '(did you mean "run"?)' },
  { id: 'option-constructor', argv: ['run', DEF, '--constructor'], code: 2, msg: 'unknown option --constructor' },

  // --- top level and machine -----------------------------------------------------------------
  { id: 'unknown-top-key', file: sc({ taks: [] }), code: 2, msg: 'unknown key "taks" (did you mean "tasks"?)' },
  { id: 'no-workload', file: {}, code: 2, msg: 'a scenario needs "tasks"' },
  { id: 'tasks-not-list', file: { tasks: {} }, code: 2, msg: 'tasks:' },
  { id: 'vcpus-zero', file: machine({ vcpus: 0 }), code: 2, msg: 'machine.vcpus: expected a vCPU count: an integer from 1 to 64' },
  { id: 'vcpus-huge', file: machine({ vcpus: 1000 }), code: 2, msg: 'machine.vcpus: expected a vCPU count' },
  { id: 'vcpus-fraction', file: machine({ vcpus: 1.5 }), code: 2, msg: 'machine.vcpus' },
  { id: 'vcpus-string', file: machine({ vcpus: 'two' }), code: 2, msg: 'machine.vcpus' },
  { id: 'memory-6g', file: machine({ memory: '6GiB' }), code: 2, msg: 'machine.memory: expected at most 1GiB of guest RAM (got 6GiB)' },
  { id: 'memory-100g', file: machine({ memory: '100GiB' }), code: 2, msg: 'expected at most 1GiB' },
  { id: 'memory-bytes-huge', file: machine({ memory: 2 ** 40 }), code: 2, msg: 'expected at most 1GiB' },
  { id: 'memory-unaligned', file: machine({ memory: 1000 }), code: 2, msg: 'expected a multiple of 4KiB' },
  { id: 'memory-bad-unit', file: machine({ memory: '64 parsecs' }), code: 2, msg: 'machine.memory' },
  { id: 'memory-negative', file: machine({ memory: -4096 }), code: 2, msg: 'machine.memory' },
  { id: 'memory-too-small', file: machine({ memory: '64KiB' }), code: 2, msg: 'machine.memory: 65536 bytes of guest memory is too small' },
  { id: 'host-profile-typo', file: machine({ host: { profile: 'linux-5.9' } }), code: 2, msg: 'unknown host profile "linux-5.9" (did you mean' },
  { id: 'guest-profile-typo', file: machine({ guest: { profile: 'curent' } }), code: 2, msg: 'unknown guest profile "curent" (did you mean "current"?)' },
  { id: 'guest-toggle-typo', file: machine({ guest: { toggles: { config_prempt: true } } }), code: 2, msg: 'did you mean "config_preempt"?' },
  { id: 'toggle-not-bool', file: machine({ guest: { toggles: { config_preempt: 'yes' } } }), code: 2, msg: 'expected true or false' },
  { id: 'lapic-typo', file: machine({ host: { lapic: 'in_kernel' } }), code: 2, msg: 'did you mean "in-kernel"?' },
  { id: 'alloc-failure-bad', file: machine({ host: { allocFailure: '3/2' } }), code: 2, msg: 'numerator <= denominator' },
  { id: 'hz-zero', file: machine({ guest: { hz: 0 } }), code: 2, msg: 'machine.guest.hz' },
  { id: 'cpuid-bad', file: machine({ cpuid: ['ASYNC_PFF'] }), code: 2, msg: '(got "ASYNC_PFF"; did you mean "ASYNC_PF"?)' },
  { id: 'design-typo', file: machine({ design: 'retry-pf' }), code: 2, msg: 'did you mean "retry_pf"?' },
  { id: 'machine-unknown-key', file: machine({ cpus: 2 }), code: 2, msg: 'unknown key "cpus"' },

  // --- tasks and programs --------------------------------------------------------------------
  { id: 'task-no-name', file: { tasks: [{ program: [] }] }, code: 2, msg: 'tasks[0].name' },
  { id: 'task-duplicate', file: { tasks: [task(), task()] }, code: 2, msg: 'task name "t" is already used by tasks[0]' },
  { id: 'task-kind-typo', file: prog([], { kind: 'kthraed' }), code: 2, msg: 'did you mean "kthread"?' },
  { id: 'task-cpu-out-of-range', file: prog([], { cpu: 3 }), code: 2, msg: 'vCPU 3 does not exist' },
  { id: 'task-affinity-excludes-cpu', file: sc({ machine: { vcpus: 2 }, tasks: [task([], { cpu: 0, affinity: [1] })] }), code: 2, msg: 'which is not in its affinity' },
  { id: 'kthread-with-mm', file: prog([], { kind: 'kthread', mm: 'x' }), code: 2, msg: 'a kernel thread has no user address space' },
  { id: 'op-typo', file: prog([{ op: 'tuch', page: PAGE }]), code: 2, msg: 'unknown op "tuch" (did you mean "touch"?)' },
  { id: 'op-missing', file: prog([{ page: PAGE }]), code: 2, msg: 'program[0]' },
  { id: 'op-not-object', file: prog(['touch']), code: 2, msg: 'program[0]' },
  { id: 'gva-garbage', file: prog([{ op: 'touch', page: '0x7f00zz' }]), code: 2, msg: 'expected a GVA like "0x7f0000001000" (got "0x7f00zz")' },
  { id: 'gva-number', file: prog([{ op: 'touch', page: 139637976731648 }]), code: 2, msg: 'write addresses as hex strings' },
  { id: 'gva-noncanonical', file: prog([{ op: 'touch', page: '0x800000000000' }]), code: 2, msg: 'not a canonical 48-bit virtual address' },
  { id: 'gva-unaligned', file: prog([{ op: 'touch', page: '0x7f0000001004' }]), code: 2, msg: 'expected a page address (4KiB aligned)' },
  { id: 'kernel-op-in-user', file: prog([{ op: 'copy_from_user', page: PAGE }]), code: 2, msg: 'is a kernel operation' },
  { id: 'user-op-in-syscall', file: prog([{ op: 'syscall', body: [{ op: 'touch', page: PAGE }] }]), code: 2, msg: 'cannot run in a syscall body' },
  { id: 'syscall-in-kthread', file: prog([{ op: 'syscall', body: [] }], { kind: 'kthread' }), code: 2, msg: 'cannot run in a kernel thread' },
  { id: 'time-unit', file: prog([{ op: 'compute', for: '10 parsecs' }]), code: 2, msg: 'expected a time like "10us"' },
  { id: 'time-fraction-ns', file: prog([{ op: 'compute', for: '1.5ns' }]), code: 2, msg: 'expected a whole number of nanoseconds' },
  { id: 'time-negative', file: prog([{ op: 'compute', for: -5 }]), code: 2, msg: 'a whole number of ns >= 0' },
  { id: 'time-huge', file: prog([{ op: 'compute', for: '1e300s' }]), code: 2, msg: 'for:' },
  { id: 'loop-times-negative', file: prog([{ op: 'loop', times: -1, body: [] }]), code: 2, msg: 'program[0].times' },
  { id: 'exit-code-range', file: prog([{ op: 'exit', code: 1000 }]), code: 2, msg: 'expected an exit code' },
  { id: 'op-unknown-key', file: prog([{ op: 'touch', page: PAGE, offst: 4 }]), code: 2, msg: 'unknown key "offst" (did you mean "offset"?)' },

  // --- host memory ---------------------------------------------------------------------------
  { id: 'backing-swap', file: sc({ hostMemory: { pages: [{ page: PAGE, backing: 'swap' }] } }), code: 2, msg: '(got "swap"; did you mean "swapped"?)' },
  { id: 'backing-number', file: sc({ hostMemory: { pages: [{ page: PAGE, backing: 3 }] } }), code: 2, msg: 'expected a backing' },
  { id: 'default-backing-typo', file: sc({ hostMemory: { default: 'resdent' } }), code: 2, msg: 'did you mean "resident"?' },
  { id: 'page-unmapped', file: sc({ hostMemory: { pages: [{ page: '0x7f0000005000', backing: 'swapped' }] } }), code: 2, msg: 'no task maps page 0x7f0000005000' },
  { id: 'page-and-gfn', file: sc({ hostMemory: { pages: [{ page: PAGE, gfn: 1, backing: 'swapped' }] } }), code: 2, msg: 'give either "gfn"' },
  { id: 'gfn-outside-ram', file: sc({ machine: { memory: '4MiB' }, hostMemory: { pages: [{ gfn: '0x10000', backing: 'swapped' }] } }), code: 2, msg: 'hostMemory.pages[0]: gfn 0x10000 x 1 lies outside guest memory' },
  { id: 'page-task-unknown', file: sc({ hostMemory: { pages: [{ task: 'x', page: PAGE, backing: 'swapped' }] } }), code: 2, msg: 'no task named "x"' },
  { id: 'memslot-outside', file: sc({ machine: { memory: '4MiB' }, hostMemory: { memslots: [{ gfn: '0x10000' }] } }), code: 2, msg: 'lies outside guest RAM' },
  { id: 'memslots-empty', file: sc({ hostMemory: { memslots: [] } }), code: 2, msg: 'expected at least one memslot' },
  { id: 'memslots-overlap', file: sc({ hostMemory: { memslots: [{ gfn: 0, count: 100 }, { gfn: 50, count: 10 }] } }), code: 2, msg: 'overlaps memslot' },
  { id: 'latency-min-above-max', file: sc({ hostMemory: { latency: { swap: { uniform: { min: '2ms', max: '1ms' } } } } }), code: 2, msg: 'min (2ms) is above max (1ms)' },

  // --- events --------------------------------------------------------------------------------
  { id: 'event-no-time', file: sc({ events: [{ do: 'nmi', cpu: 0 }] }), code: 2, msg: 'say when' },
  { id: 'event-at-and-on', file: sc({ events: [{ at: '1us', on: { event: 'kvm_async_pf_ready' }, do: 'nmi', cpu: 0 }] }), code: 2, msg: 'give either "at"' },
  { id: 'event-action-typo', file: ev({ do: 'nmii', cpu: 0 }), code: 2, msg: 'unknown action "nmii" (did you mean "nmi"?)' },
  { id: 'event-cpu-out-of-range', file: ev({ do: 'nmi', cpu: 5 }), code: 2, msg: 'vCPU 5 does not exist' },
  { id: 'event-nth-with-at', file: ev({ do: 'nmi', cpu: 0, nth: 2 }), code: 2, msg: '"nth" and "every" go with "on"' },
  { id: 'event-on-unknown', file: sc({ events: [{ on: { event: 'kvm_async_pf_redy' }, do: 'nmi', cpu: 0 }] }), code: 2, msg: 'did you mean "kvm_async_pf_ready"?' },
  { id: 'event-capture-in-on', file: sc({ events: [{ on: { event: 'kvm_async_pf_ready', fields: { token: '$t' } }, do: 'nmi', cpu: 0 }] }), code: 2, msg: 'only work in "expect.sequence"' },
  { id: 'event-evict-unmapped', file: ev({ do: 'evict', pages: ['0x7f0000009000'] }), code: 2, msg: 'no task maps page 0x7f0000009000' },
  { id: 'event-memslot-missing', file: ev({ do: 'memslot_delete', slot: 3 }), code: 2, msg: 'memslot 3 does not exist' },
  { id: 'event-nested-migrate', file: ev({ do: 'nested_migrate' }), code: 2, msg: 'events[0]' },
  { id: 'event-irq-vector', file: ev({ do: 'irq', cpu: 0, vector: 3 }), code: 2, msg: 'expected a vector' },
  { id: 'event-msr-value', file: ev({ do: 'set_msr', cpu: 0, msr: 'MSR_KVM_ASYNC_PF_EN', value: '0xzz' }), code: 2, msg: 'events[0]' },
  { id: 'event-readd-existing', file: ev({ do: 'memslot_readd', slot: 0 }, { vcpus: 1 }), code: 1, msg: 'impossible_action' },

  // --- regression variants -------------------------------------------------------------------
  { id: 'variant-event-unmapped', file: regression({ buggy: { events: [{ at: '1us', do: 'evict', pages: ['0x7f0000009000'] }], expect: {} } }), code: 2, msg: 'regression.variants.buggy.events[0].pages[0]: no task maps page 0x7f0000009000' },
  { id: 'variant-event-cpu', file: regression({ buggy: { events: [{ at: '1us', do: 'nmi', cpu: 4 }], expect: {} } }), code: 2, msg: 'regression.variants.buggy.events[0].cpu: vCPU 4 does not exist' },
  { id: 'variant-event-memslot', file: regression({ buggy: { events: [{ at: '1us', do: 'memslot_delete', slot: 9 }], expect: {} } }), code: 2, msg: 'memslot 9 does not exist' },
  { id: 'variant-name-upper', file: regression({ Buggy: { expect: {} } }), code: 2, msg: 'regression.variants' },
  { id: 'variant-expect-bad', file: regression({ buggy: { expect: { counts: { nope: 1 } } } }), code: 2, msg: 'regression.variants.buggy.expect.counts.nope: unknown trace event "nope"' },

  // --- expectations and checkers -------------------------------------------------------------
  { id: 'outcome-typo', file: expectOf({ outcome: 'complete' }), code: 2, msg: 'unknown outcome "complete" (did you mean "completed"?)' },
  { id: 'count-unknown-event', file: expectOf({ counts: { kvm_async_pf_not_presnt: 1 } }), code: 2, msg: 'did you mean "kvm_async_pf_not_present"?' },
  { id: 'count-negative', file: expectOf({ counts: { kvm_async_pf_ready: -1 } }), code: 2, msg: 'expect.counts.kvm_async_pf_ready' },
  { id: 'count-min-above-max', file: expectOf({ counts: { kvm_async_pf_ready: { min: 3, max: 1 } } }), code: 2, msg: 'min (3) is above max (1)' },
  { id: 'count-no-bounds', file: expectOf({ counts: { kvm_async_pf_ready: {} } }), code: 2, msg: 'give "min", "max" or both' },
  { id: 'sequence-field-typo', file: expectOf({ sequence: [{ event: 'kvm_async_pf_ready', fields: { tokn: 1 } }] }), code: 2, msg: 'has no field "tokn" (did you mean "token"?)' },
  { id: 'sequence-src-typo', file: expectOf({ sequence: [{ event: 'kvm_async_pf_ready', src: 'hots' }] }), code: 2, msg: 'did you mean "host"?' },
  { id: 'absent-capture', file: expectOf({ absent: [{ event: 'kvm_async_pf_ready', fields: { token: '$t' } }] }), code: 2, msg: 'only work in "expect.sequence"' },
  { id: 'checker-typo', file: sc({ checkers: { 'hung-tsk': false } }), code: 2, msg: 'did you mean "hung-task"?' },
  { id: 'fire-disabled-checker', file: sc({ checkers: { 'hung-task': false }, expect: { checkers: { fire: ['hung-task'] } } }), code: 2, msg: 'is expected to fire but is disabled' },
  { id: 'panic-but-completed', file: expectOf({ panic: 'x', outcome: 'completed' }), code: 2, msg: 'a panic message is expected' },
  { id: 'budget-zero-events', file: sc({ budget: { maxEvents: 0 } }), code: 2, msg: 'budget.maxEvents' },

  // --- bare-metal guest ----------------------------------------------------------------------
  { id: 'bare-and-tasks', file: sc({ bare: { script: [] } }), code: 2, msg: 'use either "tasks"' },
  { id: 'bare-cpu-missing', file: { machine: { vcpus: 2 }, bare: { cpus: [{ cpu: 2, script: [] }] } }, code: 2, msg: 'bare.cpus[0].cpu: vCPU 2 does not exist' },
  { id: 'bare-cpu-twice', file: { machine: { vcpus: 2 }, bare: { cpus: [{ cpu: 1, script: [] }, { cpu: 1, script: [] }] } }, code: 2, msg: 'vCPU 1 already has a script' },
  { id: 'bare-script-and-cpus', file: { bare: { script: [], cpus: [{ cpu: 0, script: [] }] } }, code: 2, msg: 'use either "script"' },
  { id: 'bare-area-shared', file: { machine: { vcpus: 2 }, bare: { cpus: [{ cpu: 0, script: [] }, { cpu: 1, script: [], apfArea: '0x1000' }] } }, code: 2, msg: 'each vCPU needs its own' },
  { id: 'bare-sipi-entry-nested', file: { bare: { script: [{ op: 'repeat', times: 1, body: [{ op: 'sipi_entry', vector: 16 }] }] } }, code: 2, msg: 'top level' },
  { id: 'bare-pf-body-cpl', file: { bare: { script: [], pf: { body: [{ op: 'cpl', cpl: 3 }] } } }, code: 2, msg: 'bare.pf.body[0]' },
  { id: 'bare-area-unaligned', file: { bare: { script: [], apfArea: '0x1001' } }, code: 2, msg: 'must be 64-byte aligned' },
  { id: 'bare-op-typo', file: { bare: { script: [{ op: 'spinn', for: '1us' }] } }, code: 2, msg: 'bare.script[0]' },
  { id: 'kernel-area-in-page-tables', file: ev({ do: 'set_msr', cpu: 0, msr: 'ASYNC_PF_EN', value: '0x10100d' }), code: 2, msg: "events[0]: set_msr registers an APF area at 0x101000, inside the guest kernel's page tables (0x100000-0x" },
  { id: 'kernel-area-in-page-tables-disabled-ok', file: ev({ do: 'set_msr', cpu: 0, msr: 'ASYNC_PF_EN', value: '0x101000' }), code: 0, msg: 'PASS' },
  { id: 'bare-area-in-page-tables', file: { bare: { script: [], apfArea: '0x3000' } }, code: 2, msg: "bare.apfArea: the APF area at 0x3000 (0x3000-0x303f) overlaps the bare guest's page tables (0x2000-0x" },
  { id: 'bare-wrmsr-area-in-page-tables', file: { bare: { script: [{ op: 'repeat', times: 1, body: [{ op: 'wrmsr', msr: 'ASYNC_PF_EN', value: '0x2009' }] }] } }, code: 2, msg: 'bare.script[0].body[0].value: the APF area this WRMSR registers at 0x2000' },
  { id: 'bare-set-msr-area-in-page-tables', file: { bare: { script: [] }, events: [{ at: '1us', do: 'set_msr', cpu: 0, msr: 'ASYNC_PF_EN', value: '0x4001' }] }, code: 2, msg: 'events[0].value: the APF area this set_msr registers at 0x4000' },
  { id: 'bare-wrmsr-disable-anywhere', file: { bare: { script: [{ op: 'wrmsr', msr: 'ASYNC_PF_EN', value: '0x2000' }] } }, code: 0, msg: 'PASS' },
  { id: 'bare-wait-mode-typo', file: { bare: { script: [{ op: 'wait', until: { kind: 'time', t: '1us' }, mode: 'spinn' }] } }, code: 2, msg: 'did you mean "spin"?' },

  // --- files ---------------------------------------------------------------------------------
  { id: 'missing-file', argv: ['run', 'no-such.json'], code: 2, msg: 'no-such.json: no such file' },
  { id: 'directory-without-scenarios', argv: ['run', '$TMP'], code: 2, msg: 'apf run: $TMP: no scenario files (.json, .yaml) in this directory' },
  { id: 'dev-zero', argv: ['run', '/dev/zero'], code: 2, msg: '/dev/zero: is a character device, not a regular file' },
  { id: 'dev-urandom', argv: ['run', '/dev/urandom'], code: 2, msg: 'not a regular file' },
  { id: 'dev-null', argv: ['run', '/dev/null'], code: 2, msg: 'not a regular file' },
  { id: 'too-large', file: ' '.repeat(4 * 1024 * 1024 + 1), code: 2, msg: 'too large: 4.0 MiB (the limit is 4 MiB)' },
  { id: 'compare-missing-file', argv: ['compare', 'no-such.json'], code: 2, msg: 'no such file' },
  { id: 'fuzz-replay-bad-machine', file: machine({ memory: '64KiB' }), argv: ['fuzz', '--replay', '$FILE'], code: 2, msg: 'machine.memory: 65536 bytes of guest memory is too small' },
  { id: 'compare-bad-machine', file: machine({ memory: '64KiB' }), argv: ['compare', '$FILE'], code: 2, msg: 'machine.memory: 65536 bytes of guest memory is too small' },
  { id: 'fuzz-replay-impossible', file: ev({ do: 'memslot_readd', slot: 0 }, { vcpus: 1 }), argv: ['fuzz', '--replay', '$FILE'], code: 1, msg: 'outcome impossible_action' },
  { id: 'fuzz-merge-device', argv: ['fuzz', 'merge', '/dev/zero'], code: 2, msg: '/dev/zero: is a character device, not a regular file' },
  { id: 'fuzz-merge-missing', argv: ['fuzz', 'merge', 'no-such.json'], code: 2, msg: 'no-such.json: no such file' },
  { id: 'fuzz-merge-not-json', file: 'not json', argv: ['fuzz', 'merge', '$FILE'], code: 2, msg: 'fuzz-merge-not-json.json: not JSON' },
  { id: 'fuzz-merge-out-under-file', argv: ['fuzz', 'merge', 'x.json', '--out', '$TMP/plain/x'], code: 2, msg: 'apf fuzz merge: --out $TMP/plain/x: $TMP/plain is a file, not a directory' },
  { id: 'fuzz-replay-device', argv: ['fuzz', '--replay', '/dev/zero'], code: 2, msg: 'not a regular file' },

  // --- outputs -------------------------------------------------------------------------------
  { id: 'trace-dev-full', argv: ['run', DEF, '-q', '--trace', '/dev/full'], code: 2, msg: '--trace /dev/full: writing failed (no space left on the device)' },
  { id: 'trace-is-the-scenario', file: sc(), argv: ['run', '$FILE', '--trace', '$FILE'], code: 2, msg: 'apf run: --trace trace-is-the-scenario.json: is the scenario file itself (it would be overwritten)' },
  { id: 'bad-machine-no-header', file: machine({ memory: '64KiB' }), argv: ['run', '$FILE'], code: 2, msg: 'bad-machine-no-header.json: machine.memory: 65536 bytes of guest memory is too small' },
  { id: 'trace-into-directory', argv: ['run', DEF, '-q', '--trace', '$TMP'], code: 2, msg: 'is a directory' },
  { id: 'trace-under-file', argv: ['run', DEF, '-q', '--trace', '$TMP/plain/t.jsonl'], code: 2, msg: 'is a file, not a directory' },
  { id: 'trace-no-dir', argv: ['run', DEF, '-q', '--trace', '$TMP/none/t.jsonl'], code: 2, msg: 'no such directory' },
  { id: 'runs-dir-under-file', argv: ['run', DEF, '-q', '--runs-dir', '$TMP/plain/x'], code: 2, msg: '--runs-dir $TMP/plain/x: $TMP/plain is a file, not a directory' },
  { id: 'runs-dir-is-file', argv: ['run', DEF, '-q', '--runs-dir', '$TMP/plain'], code: 2, msg: 'is a file, not a directory' },
  { id: 'fuzz-out-under-file', argv: ['fuzz', '--runs', '1', '--jobs', '0', '--out', '$TMP/plain/x'], code: 2, msg: '--out $TMP/plain/x' },
  { id: 'trace-format-typo', argv: ['run', DEF, '--trace-format', 'perfeto'], code: 2, msg: '--trace-format perfeto: expected text, jsonl or perfetto' },

  // --- options -------------------------------------------------------------------------------
  { id: 'seed-negative', argv: ['run', DEF, '--seed', '-1'], code: 2, msg: '--seed -1: expected a non-negative integer' },
  { id: 'seed-empty', argv: ['run', DEF, '--seed', ''], code: 2, msg: '--seed needs a value' },
  { id: 'seed-too-large', argv: ['run', DEF, '--seed', '99999999999999999999'], code: 2, msg: 'too large' },
  { id: 'seed-missing', argv: ['run', DEF, '--seed'], code: 2, msg: '--seed needs a value' },
  { id: 'max-events-negative', argv: ['run', DEF, '--max-events', '-5'], code: 2, msg: '--max-events -5: expected a positive whole number' },
  { id: 'max-events-zero', argv: ['run', DEF, '--max-events', '0'], code: 2, msg: 'expected a positive whole number' },
  { id: 'max-time-bad', argv: ['run', DEF, '--max-time', 'soon'], code: 2, msg: '--max-time soon: expected a positive time' },
  { id: 'max-time-negative', argv: ['run', DEF, '--max-time', '-1s'], code: 2, msg: '--max-time -1s' },
  { id: 'fuzz-runs-negative', argv: ['fuzz', '--runs', '-5'], code: 2, msg: '--runs -5: expected a positive whole number' },
  { id: 'fuzz-jobs-negative', argv: ['fuzz', '--jobs', '-5'], code: 2, msg: '--jobs -5: expected a whole number (0 or more)' },
  { id: 'fuzz-jobs-fraction', argv: ['fuzz', '--jobs', '1.5'], code: 2, msg: 'expected a whole number' },
  { id: 'fuzz-size-typo', argv: ['fuzz', '--size', 'mediun'], code: 2, msg: '(did you mean medium?)' },
  { id: 'fuzz-canary-typo', argv: ['fuzz', '--canary', 'no-akc'], code: 2, msg: 'unknown canary' },
  { id: 'fuzz-positional', argv: ['fuzz', 'x.json'], code: 2, msg: 'this command takes no file' },
  { id: 'fuzz-untrusted-guest', argv: ['fuzz', '--untrusted', '--guest', 'current'], code: 2, msg: '--guest has no effect with --untrusted' },
  { id: 'unknown-option', argv: ['run', DEF, '--sed', '1'], code: 2, msg: 'unknown option --sed (did you mean --seed?)' },
  { id: 'flag-with-value', argv: ['run', DEF, '--json=yes'], code: 2, msg: '--json takes no value' },
  { id: 'missing-second-file', argv: ['run', DEF, 'extra'], code: 2, msg: 'apf run: extra: no such file or directory' },
  { id: 'toggle-typo', argv: ['run', DEF, '--toggle', 'nonzero_tokn=off'], code: 2, msg: 'did you mean "nonzero_token"?' },
  { id: 'toggle-value', argv: ['run', DEF, '--toggle', 'nonzero_token=maybe'], code: 2, msg: 'the value must be on or off' },
  { id: 'toggle-shape', argv: ['run', DEF, '--toggle', 'nonzero_token'], code: 2, msg: 'expected name=on or name=off' },
  { id: 'toggle-proto', argv: ['run', DEF, '--toggle', '__proto__=on'], code: 2, msg: 'unknown toggle "__proto__"' },
  { id: 'host-profile-cli', argv: ['run', DEF, '--host', 'linux-5.9'], code: 2, msg: '--host linux-5.9: unknown host profile' },
  { id: 'guest-profile-cli', argv: ['run', DEF, '--guest', 'constructor'], code: 2, msg: '--guest constructor: unknown guest profile' },
  { id: 'compare-vary-unknown', argv: ['compare', DEF, '--vary', 'nosuch'], code: 2, msg: 'apf compare: --vary nosuch: unknown toggle "nosuch"' },
  { id: 'compare-vary-value', argv: ['compare', DEF, '--vary', 'nonzero_token=on'], code: 2, msg: '--vary nonzero_token=on' },
  { id: 'compare-too-many-runs', argv: ['compare', DEF, ...Array.from({ length: 11 }, () => ['--vary', 'nonzero_token']).flat()], code: 2, msg: 'apf compare: 2048 runs (files × guests × hosts × 2^--vary); the limit is 1024' },
  { id: 'compare-billions', argv: ['compare', DEF, ...Array.from({ length: 40 }, () => ['--vary', 'nonzero_token']).flat()], code: 2, msg: 'over a billion runs' },
  { id: 'event-expected-impossible', file: sc({ machine: { vcpus: 1 }, events: [{ at: '1us', do: 'memslot_readd', slot: 0 }], expect: { outcome: 'impossible_action' } }), code: 0, msg: 'PASS' },
  { id: 'compare-no-file', argv: ['compare'], code: 2, msg: 'which scenario?' },
  { id: 'compare-host-empty', argv: ['compare', DEF, '--host', ','], code: 2, msg: '--host needs at least one profile' },
  { id: 'list-positional', argv: ['list', 'x'], code: 2, msg: 'unexpected argument "x"' },
  { id: 'schema-option', argv: ['schema', '--json'], code: 2, msg: 'unknown option --json' },
  { id: 'no-command', argv: [], code: 2, msg: 'usage: apf <command>' },

  // --- all problems --------------------------------------------------------------------------
  { id: 'more-problems-hint', file: sc({ machine: { vcpus: 0, memory: 1000 }, bogus: 1 }), code: 2, msg: '(and 2 more problems; --all-errors lists them)' },
];
