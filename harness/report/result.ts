/**
 * The `--json` result of a run: a stable, documented object (docs/cli.md). Field names and
 * meanings only change with `format`. Numbers are plain JSON numbers (virtual times in ns);
 * nothing in it is a bigint.
 */
import type { RunReport } from '../runner';
import type { Summary } from './summary';

export const RESULT_FORMAT = 'apf-run-result/1';

export interface RunResult {
  /** Version of this object's shape. */
  readonly format: typeof RESULT_FORMAT;
  /** Unique id of the run (nanoid); names its trace and failure files. */
  readonly runId: string;
  /** `variant`: the regression variant run (`--variant`), or null for the scenario itself. */
  readonly scenario: { readonly name: string; readonly file: string | null; readonly variant: string | null };
  readonly seed: string;
  /** `toggles`: set explicitly (file and command line); `effective`: every toggle after profile resolution (null if unknown). */
  readonly guest: { readonly profile: string; readonly toggles: Readonly<Record<string, boolean>>; readonly effective: Readonly<Record<string, boolean>> | null };
  readonly host: { readonly profile: string; readonly toggles: Readonly<Record<string, boolean>>; readonly effective: Readonly<Record<string, boolean>> | null };
  /** How the run ended (see OUTCOMES). */
  readonly outcome: string;
  /** Whether every expectation held (exit code 0). */
  readonly ok: boolean;
  /** The guest's panic message, or null. */
  readonly panic: string | null;
  /** An unexpected simulation error, or null. */
  readonly error: string | null;
  /** Virtual time at the end of the run, ns. */
  readonly endTime: number;
  /** Simulation events run. */
  readonly events: number;
  readonly violations: readonly { readonly checker: string; readonly t: number; readonly cpu: number; readonly message: string }[];
  readonly expectations: readonly { readonly what: string; readonly ok: boolean; readonly detail: string }[];
  /** Trace records per event name. */
  readonly counts: Readonly<Record<string, number>>;
  readonly summary: Summary;
  /** 16 hex digits: equal for equal scenario + seed. */
  readonly traceHash: string;
  readonly trace: { readonly file: string; readonly format: string } | null;
  readonly failureFile: string | null;
  /** Command line that reproduces the run. */
  readonly replay: string;
}

export interface ResultContext {
  readonly runId: string;
  readonly replay: string;
  readonly trace: { file: string; format: string } | null;
  readonly failureFile: string | null;
}

export function toResult(r: RunReport, ctx: ResultContext): RunResult {
  const s = r.scenario;
  return {
    format: RESULT_FORMAT,
    runId: ctx.runId,
    scenario: { name: s.name, file: s.file ?? null, variant: s.variant ?? null },
    seed: String(s.seed),
    guest: { profile: s.machine.guest.profile, toggles: { ...s.machine.guest.toggles }, effective: r.effectiveToggles?.guest ?? null },
    host: { profile: s.machine.host.profile, toggles: { ...s.machine.host.toggles } as Record<string, boolean>, effective: r.effectiveToggles?.host ?? null },
    outcome: r.outcome,
    ok: r.ok,
    panic: r.panic ?? null,
    error: r.error === undefined ? null : `${r.error.kind}: ${r.error.message}`,
    endTime: r.endT,
    events: r.events,
    violations: r.violations.map((v) => ({ checker: v.checker, t: v.t, cpu: v.cpu, message: v.message })),
    expectations: r.expectations.map((e) => ({ what: e.what, ok: e.ok, detail: e.detail })),
    counts: r.counts,
    summary: r.summary,
    traceHash: r.traceHash,
    trace: ctx.trace,
    failureFile: ctx.failureFile,
    replay: ctx.replay,
  };
}
