/**
 * The async-PF sleeper table (spec §4.1): `async_pf_sleepers[256]`, each bucket a raw spinlock
 * plus a list of `kvm_task_sleep_node`s keyed by token, placed by `hash_32(token, 8)`.
 *
 * This is the data structure only; the code that locks buckets and walks them with instructions
 * is in kvm.ts. Nodes are added at the head of their bucket (hlist_add_head) and lookups return
 * the first node with the token, as in Linux.
 */
import { KVM_TASK_SLEEP_HASHSIZE, sleeperBucket } from '../shared-abi/apf';
import type { SpinLock, Task } from './task';

/** One kvm_task_sleep_node: a waiter's on-stack node, or a dummy left by an early wake. */
export class SleepNode {
  /** On a bucket list (hlist_unhashed is !linked). */
  linked = false;
  /** The task sleeping on the node's wait queue (swq_has_sleeper), set by the waiter. */
  sleeper: Task | null = null;
  /** Identity for diagnostics (unique per table once linked). */
  id = 0;
  constructor(
    readonly token: number,
    /** The CPU that queued the node (smp_processor_id() at insertion). */
    readonly cpu: number,
    /** The waiting task; null for a dummy. */
    readonly owner: Task | null,
    /** G-5.2: the waiter halts instead of scheduling (woken by a reschedule IPI). */
    readonly halted: boolean,
  ) {}

  get dummy(): boolean {
    return this.owner === null;
  }
}

export interface SleeperBucket {
  readonly index: number;
  readonly lock: SpinLock;
  readonly nodes: SleepNode[];
}

/** Counters of dummy-node traffic (spec §4.6/§4.7). */
export interface SleeperStats {
  dummiesAllocated: number;
  dummiesConsumed: number;
  dummiesFreed: number;
  /** Dummies unlinked by wake-all and never freed (the Linux leak). */
  dummiesLeaked: number;
}

export class SleeperTable {
  readonly buckets: SleeperBucket[] = [];
  readonly stats: SleeperStats = { dummiesAllocated: 0, dummiesConsumed: 0, dummiesFreed: 0, dummiesLeaked: 0 };

  constructor(lockFor: (bucket: number) => SpinLock) {
    for (let i = 0; i < KVM_TASK_SLEEP_HASHSIZE; i++) this.buckets.push({ index: i, lock: lockFor(i), nodes: [] });
  }

  /** The bucket of a token: hash_32(token, 8). */
  bucketOf(token: number): SleeperBucket {
    const b = this.buckets[sleeperBucket(token >>> 0)];
    if (b === undefined) throw new Error(`sleeper bucket for token ${token}`);
    return b;
  }

  /** _find_apf_task: the first node with this token in its bucket. */
  find(token: number): SleepNode | undefined {
    return this.bucketOf(token).nodes.find((n) => n.token === token >>> 0);
  }

  /** hlist_add_head. */
  private nodeSeq = 0;

  add(node: SleepNode): void {
    if (node.linked) throw new Error(`sleep node ${node.id} is already linked`);
    if (node.id === 0) node.id = ++this.nodeSeq;
    this.bucketOf(node.token).nodes.unshift(node);
    node.linked = true;
  }

  /** hlist_del_init: afterwards the node reads as unhashed. */
  unlink(node: SleepNode): void {
    if (!node.linked) return;
    const list = this.bucketOf(node.token).nodes;
    const i = list.indexOf(node);
    if (i >= 0) list.splice(i, 1);
    node.linked = false;
  }

  /** Every linked node (diagnostics, tests). */
  all(): SleepNode[] {
    return this.buckets.flatMap((b) => b.nodes);
  }

  /** Linked dummy nodes. */
  dummies(): SleepNode[] {
    return this.all().filter((n) => n.dummy);
  }
}
