/**
 * The scenario vocabulary of nested virtualization (docs/nested.md): `machine.nested` (the guest
 * kernel is an L1 hypervisor running L2 guests) and the `nested_migrate` action (post-copy
 * migration while L2 runs). Kept apart from schema.ts/validate.ts so the format's core stays as it
 * was; those files only plug these pieces in.
 */
import { z } from 'zod';
import { PAGE_SIZE } from '../../shared-abi/addr';
import type { PageBacking } from '../../host/config';
import { DEFAULT_L2_PAGES, l2Addresses, vcpuThreadName, type L2KernelOp, type L2Spec, type L2UserOp } from '../../guest/nested/program';
import { closest, oneOf } from '../util/names';
import { hex } from '../util/units';
import { bool, HexOrInt, int, obj, Time, U32, choice } from './scalars';

// ---------------------------------------------------------------------------------------------
// Schema
// ---------------------------------------------------------------------------------------------

export const L2_OPS = ['touch', 'compute', 'syscall', 'loop'] as const;

const L2Addr = HexOrInt('an L2 address').meta({ description: 'An L2 guest-physical address (hex string or number): L2 runs with paging off.' });

export const L2OpSchema = z
  .discriminatedUnion(
    'op',
    [
      obj({ op: z.literal('touch'), addr: L2Addr, write: bool('write').optional(), value: U32.optional() }).meta({ description: 'Read (or write) one 4-byte word of L2 memory.' }),
      obj({ op: z.literal('compute'), for: Time }).meta({ description: 'Spin for a while.' }),
      obj({
        op: z.literal('syscall'),
        get body() {
          return z.array(L2OpSchema, { error: 'expected a list of L2 kernel operations' });
        },
      }).meta({ description: "Enter L2's kernel (CPL 0) and run body (touch, compute, loop), then return to user mode." }),
      obj({
        op: z.literal('loop'),
        times: int('a repeat count', 1, 1_000_000),
        get body() {
          return z.array(L2OpSchema, { error: 'expected a list of L2 operations' });
        },
      }).meta({ description: 'Repeat body.' }),
    ],
    {
      error: (iss) => {
        const input = iss.input as { op?: unknown } | undefined;
        if (input === undefined || typeof input !== 'object' || input === null) return 'expected an L2 operation like {"op": "touch", "addr": "0x1000"}';
        if (input.op === undefined) return `missing "op"; valid L2 ops: ${oneOf([...L2_OPS])}`;
        const h = typeof input.op === 'string' ? closest(input.op, L2_OPS) : undefined;
        return `unknown L2 op ${JSON.stringify(input.op)}${h === undefined ? '' : ` (did you mean "${h}"?)`}; valid L2 ops: ${oneOf([...L2_OPS])}`;
      },
    },
  )
  .meta({ id: 'L2Op' });

type L2OpInput = z.output<typeof L2OpSchema>;

const L2Backing = choice(['resident', 'swapped', 'remote', 'failing'], 'expected a backing: "resident", "swapped", "remote" or "failing"')
  .meta({ description: "Host backing of the L2 guest's memory (its frames in L1's memory)." });

const L2GuestSchema = obj(
  {
    name: z.string({ error: 'expected a name' }).min(1, { error: 'expected a non-empty name' }),
    cpu: int('a vCPU index', 0, 63).optional().meta({ description: 'L1 CPU its vCPU thread runs on, pinned (default: placed by L1, not pinned).' }),
    start: Time.optional().meta({ description: 'When L1 starts its vCPU thread (default 0).' }),
    pages: int('a page count', 1, 4096).optional().meta({ description: `L2 memory in 4 KiB pages (default ${DEFAULT_L2_PAGES}).` }),
    backing: L2Backing.optional(),
    program: z.array(L2OpSchema, { error: 'expected a program: a list of L2 operations' }),
  },
  'A nested (L2) guest: one vCPU running a small program at L2 CPL 3, with kernel-mode parts in syscalls.',
);

export const NestedSchema = obj(
  {
    l2: z.array(L2GuestSchema, { error: 'expected a list of L2 guests' }).min(1, { error: 'expected at least one L2 guest' }),
    vmexitTail: Time.optional().meta({ description: 'L1 work with IRQs off between a VM-exit and the #PF flags read (default 100ns).' }),
    exitHandling: Time.optional().meta({ description: 'L1 work with IRQs on between local_irq_enable after a VM-exit and the exit handler (default 200ns).' }),
  },
  'The guest kernel is an L1 hypervisor running nested (L2) guests, one vCPU thread per L2 guest (docs/nested.md).',
);

export type NestedInput = z.output<typeof NestedSchema>;

/** The fields of the `nested_migrate` action (schema.ts adds `do` and the timing). */
export const NESTED_MIGRATE_SHAPE = {
  restore: choice(['two_step', 'at_set_nested_state'], 'expected "two_step" (KVM_REQ_GET_NESTED_STATE_PAGES) or "at_set_nested_state"')
    .optional()
    .meta({ description: 'two_step: pages mapped at the first KVM_RUN (default); at_set_nested_state: pages must be reachable during KVM_SET_NESTED_STATE.' }),
  fetch: choice(['vcpu_exit', 'listener'], 'expected "vcpu_exit" or "listener"')
    .optional()
    .meta({ description: 'How a vCPU in KVM_RUN gets a remote page: it exits and requests it itself, or blocks on the userfaultfd listener (default).' }),
  listener: choice(['before_set_nested_state', 'after_set_nested_state', 'never'], 'expected "before_set_nested_state", "after_set_nested_state" or "never"')
    .optional()
    .meta({ description: 'When the VMM starts its userfaultfd listener thread (default before_set_nested_state).' }),
  l2Memory: bool('l2Memory').optional().meta({ description: "The L2 guests' memory is still on the source too (default false): L2 faults on it." }),
  fetchFails: bool('fetchFails').optional().meta({ description: 'The source cannot send the nested state pages: their fetch fails (default false).' }),
} as const;

// ---------------------------------------------------------------------------------------------
// Conversion and cross-field checks
// ---------------------------------------------------------------------------------------------

/** An L2 guest as the machine builder takes it. */
export interface NestedL2Spec extends L2Spec {
  readonly backing?: PageBacking;
}

/** `machine.nested` after loading. */
export interface NestedSpec {
  readonly l2: readonly NestedL2Spec[];
  readonly vmexitTailNs?: number;
  readonly exitHandlingNs?: number;
}

type Add = (path: readonly (string | number)[], message: string) => void;

function convertL2Ops(ops: readonly L2OpInput[], path: readonly (string | number)[], kernel: boolean, add: Add): (L2UserOp | L2KernelOp)[] {
  const out: (L2UserOp | L2KernelOp)[] = [];
  ops.forEach((op, i) => {
    const p = [...path, i];
    switch (op.op) {
      case 'touch':
        out.push({ op: 'touch', addr: op.addr, ...(op.write === undefined ? {} : { write: op.write }), ...(op.value === undefined ? {} : { value: op.value }) });
        return;
      case 'compute':
        out.push({ op: 'compute', ns: op.for });
        return;
      case 'syscall':
        if (kernel) {
          add([...p, 'op'], '"syscall" cannot run in an L2 syscall body: a system call is entered from L2 user mode');
          return;
        }
        out.push({ op: 'syscall', body: convertL2Ops(op.body, [...p, 'body'], true, add) as L2KernelOp[] });
        return;
      case 'loop':
        out.push({ op: 'loop', times: op.times, body: convertL2Ops(op.body, [...p, 'body'], kernel, add) as L2UserOp[] });
        return;
    }
  });
  return out;
}

/**
 * `machine.nested` in the machine's terms. Checks: unique names that clash with no task (nor with
 * the vCPU threads' task names), CPUs that exist, touches inside the L2's memory and not crossing a
 * page.
 */
export function convertNested(input: NestedInput, vcpus: number, taskNames: readonly string[], add: Add): NestedSpec {
  const base = ['machine', 'nested'] as const;
  const seen = new Map<string, number>();
  const tasks = new Set(taskNames);
  const l2 = input.l2.map((g, i): NestedL2Spec => {
    const p = [...base, 'l2', i];
    const prev = seen.get(g.name);
    if (prev !== undefined) add([...p, 'name'], `L2 guest name "${g.name}" is already used by l2[${prev}]`);
    seen.set(g.name, i);
    if (tasks.has(g.name)) add([...p, 'name'], `L2 guest name "${g.name}" is also a task name`);
    if (tasks.has(vcpuThreadName(g.name))) add([...p, 'name'], `task "${vcpuThreadName(g.name)}" is the vCPU thread L1 creates for L2 guest "${g.name}": rename the task`);
    if (g.cpu !== undefined && g.cpu >= vcpus) add([...p, 'cpu'], `vCPU ${g.cpu} does not exist: the machine has ${vcpus} vCPU${vcpus === 1 ? '' : 's'}`);
    const program = convertL2Ops(g.program, [...p, 'program'], false, add) as L2UserOp[];
    const size = (g.pages ?? DEFAULT_L2_PAGES) * PAGE_SIZE;
    for (const a of l2Addresses(program)) {
      if (a + 4 > size) add([...p, 'program'], `L2 guest "${g.name}" touches ${hex(a)}, outside its ${size / PAGE_SIZE} pages of memory (raise "pages")`);
      else if ((a % PAGE_SIZE) + 4 > PAGE_SIZE) add([...p, 'program'], `L2 guest "${g.name}": the 4-byte access at ${hex(a)} crosses a page boundary`);
    }
    return {
      name: g.name,
      program,
      ...(g.cpu === undefined ? {} : { cpu: g.cpu }),
      ...(g.start === undefined ? {} : { start: g.start }),
      ...(g.pages === undefined ? {} : { pages: g.pages }),
      ...(g.backing === undefined ? {} : { backing: g.backing }),
    };
  });
  return {
    l2,
    ...(input.vmexitTail === undefined ? {} : { vmexitTailNs: input.vmexitTail }),
    ...(input.exitHandling === undefined ? {} : { exitHandlingNs: input.exitHandling }),
  };
}
