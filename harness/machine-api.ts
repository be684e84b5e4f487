/**
 * What the runner needs from a machine: a simulation to run, a start button, the stop
 * conditions, and a way to perform a scenario's injected events. `machine.ts` builds the real
 * one (host KVM + guest kernel, or the bare guest) from a scenario; tests build small fakes.
 */
import type { Simulation } from '../sim/engine';
import type { Action, Scenario } from './scenario/types';

export interface Machine {
  readonly sim: Simulation;
  /** Boots the guest and starts the vCPUs (schedules their first events). */
  start(): void;
  /** The workload is finished: every task exited (kernel guest) or the script ended (bare guest). */
  done(): boolean;
  /** The guest's panic message, once it panicked. */
  panicMessage(): string | undefined;
  /** A vCPU shut down after a triple fault. */
  shutdown(): boolean;
  /** The VM was destroyed. */
  destroyed(): boolean;
  /** Performs an injected event now. Throws `ActionError` when the action cannot be done. */
  perform(action: Action): void;
  /** A readable name for a guest frame (task and GVA mapped there), for the timeline. */
  pageName?(gfn: number): string | undefined;
  /** Lines describing the machine as built (resolved profiles, CPUID), for the run header. */
  describe?(): string[];
  /** Effective toggle values after profile resolution, for the result. */
  effectiveToggles?(): { host: Readonly<Record<string, boolean>>; guest: Readonly<Record<string, boolean>> };
}

export type MachineFactory = (scenario: Scenario, sim: Simulation) => Machine;

/** An injected event that the machine cannot perform (e.g. "cpu_online" of a CPU that is online). */
export class ActionError extends Error {
  override name = 'ActionError';
}

/**
 * A scenario the machine cannot be built from (guest memory too small for the workload, host
 * pages outside guest RAM): bad input, known before the first instruction runs (outcome
 * `bad_machine`).
 */
export class MachineBuildError extends Error {
  override name = 'MachineBuildError';
}
