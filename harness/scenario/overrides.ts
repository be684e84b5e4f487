/**
 * Command-line changes to a loaded scenario: seed, guest and host profile, single toggles,
 * budgets. They are applied on top of the file and repeated in the replay line, so a run can
 * always be reproduced from the file plus the line.
 */
import { guestProfileNames, guestToggleNames, hostProfileNames, hostToggleNames } from '../registry';
import { closest, oneOf } from '../util/names';
import type { Scenario } from './types';
import type { HostProfileName, HostToggle } from '../../host/config';

/** A bad command-line value (exit code 2). */
export class UsageError extends Error {
  override name = 'UsageError';
}

export interface ToggleSetting {
  readonly side: 'host' | 'guest';
  readonly name: string;
  readonly value: boolean;
  /** As the user wrote it (for the replay line). */
  readonly text: string;
}

export interface Overrides {
  /** Run this variant of a regression scenario (`regression.variants`), before any other change. */
  readonly variant?: string;
  readonly seed?: number | string;
  readonly guest?: string;
  readonly host?: string;
  readonly toggles?: readonly ToggleSetting[];
  readonly maxEvents?: number;
  readonly maxTime?: number;
}

const ON = new Set(['on', 'true', '1', 'yes']);
const OFF = new Set(['off', 'false', '0', 'no']);

/** Parses `name=on|off`, `host.name=off` or `guest.name=on`. */
export function parseToggle(arg: string): ToggleSetting {
  const m = /^(?:(host|guest)\.)?([A-Za-z0-9_]+)=(.*)$/.exec(arg.trim());
  if (m === null) throw new UsageError(`--toggle ${arg}: expected name=on or name=off (e.g. --toggle nonzero_token=off)`);
  const side = m[1] as 'host' | 'guest' | undefined;
  const name = m[2] ?? '';
  const raw = (m[3] ?? '').toLowerCase();
  if (!ON.has(raw) && !OFF.has(raw)) throw new UsageError(`--toggle ${arg}: the value must be on or off, not "${m[3] ?? ''}"`);
  const value = ON.has(raw);
  const host = hostToggleNames() as readonly string[];
  const guest = guestToggleNames();
  const inHost = host.includes(name);
  const inGuest = guest.includes(name);
  if (side === 'host' && !inHost) throw new UsageError(`--toggle ${arg}: unknown host toggle "${name}"${hintOf(name, host)}; host toggles: ${oneOf(host)}`);
  if (side === 'guest' && !inGuest) throw new UsageError(`--toggle ${arg}: unknown guest toggle "${name}"${hintOf(name, guest)}; guest toggles: ${oneOf(guest)}`);
  if (side === undefined) {
    if (inHost && inGuest) throw new UsageError(`--toggle ${arg}: "${name}" is both a host and a guest toggle; write host.${name}=... or guest.${name}=...`);
    if (!inHost && !inGuest) {
      throw new UsageError(`--toggle ${arg}: unknown toggle "${name}"${hintOf(name, [...host, ...guest])} (see "apf list" for host and guest toggles)`);
    }
  }
  const resolved = side ?? (inHost ? 'host' : 'guest');
  return { side: resolved, name, value, text: `${side === undefined ? '' : side + '.'}${name}=${value ? 'on' : 'off'}` };
}

function hintOf(name: string, names: readonly string[]): string {
  const h = closest(name, names);
  return h === undefined ? '' : ` (did you mean "${h}"?)`;
}

/** Checks a profile name given on the command line. */
export function checkProfile(side: 'host' | 'guest', name: string): void {
  const names = side === 'host' ? (hostProfileNames() as readonly string[]) : guestProfileNames();
  if (!names.includes(name)) throw new UsageError(`--${side} ${name}: unknown ${side} profile${hintOf(name, names)}; valid: ${oneOf(names)}`);
}

/** Names of a scenario's variants (empty when it has none). */
export function variantNames(s: Scenario): string[] {
  return Object.keys(s.regression?.variants ?? {});
}

/**
 * The scenario turned into one of its variants: the variant's profiles replace the scenario's,
 * its toggles are set on top of the scenario's, and its expectations and verdict replace the
 * scenario's. Machine, workload, events and checkers stay the same.
 */
export function applyVariant(s: Scenario, name: string): Scenario {
  const v = s.regression?.variants[name];
  if (v === undefined) {
    const names = variantNames(s);
    const where = s.file ?? s.name;
    if (names.length === 0) throw new UsageError(`--variant ${name}: ${where} has no variants (variants live under "regression.variants")`);
    throw new UsageError(`--variant ${name}: ${where} has no variant "${name}"${hintOf(name, names)}; variants: ${oneOf(names)}`);
  }
  const m = s.machine;
  return {
    ...s,
    variant: name,
    machine: {
      ...m,
      guest: { ...m.guest, profile: v.guest.profile ?? m.guest.profile, toggles: { ...m.guest.toggles, ...v.guest.toggles } },
      host: { ...m.host, profile: v.host.profile ?? m.host.profile, toggles: { ...m.host.toggles, ...v.host.toggles } },
    },
    ...(v.events === undefined ? {} : { events: v.events }),
    expect: v.expect,
    verdict: v.verdict,
  };
}

/** The scenario with the overrides applied. */
export function applyOverrides(s0: Scenario, o: Overrides): Scenario {
  const s = o.variant === undefined ? s0 : applyVariant(s0, o.variant);
  if (o.guest !== undefined) checkProfile('guest', o.guest);
  if (o.host !== undefined) checkProfile('host', o.host);
  const hostToggles: Partial<Record<HostToggle, boolean>> = { ...s.machine.host.toggles };
  const guestToggles: Record<string, boolean> = { ...s.machine.guest.toggles };
  for (const t of o.toggles ?? []) {
    if (t.side === 'host') hostToggles[t.name as HostToggle] = t.value;
    else guestToggles[t.name] = t.value;
  }
  return {
    ...s,
    seed: o.seed ?? s.seed,
    machine: {
      ...s.machine,
      guest: { ...s.machine.guest, profile: o.guest ?? s.machine.guest.profile, toggles: guestToggles },
      host: { ...s.machine.host, profile: (o.host ?? s.machine.host.profile) as HostProfileName, toggles: hostToggles },
    },
    budget: { maxEvents: o.maxEvents ?? s.budget.maxEvents, maxTime: o.maxTime ?? s.budget.maxTime },
  };
}

/**
 * How a printed command starts. In a checkout `apf` is not on PATH, but `npx apf` runs the
 * package's own bin (package.json "bin"), so every replay line works as printed from the clone.
 */
export const APF_COMMAND: readonly string[] = ['npx', 'apf'];

/** Shell-quotes one word when it needs it. */
export function shellWord(w: string): string {
  return /^[A-Za-z0-9_./:=,+@%-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`;
}

/**
 * The command line that reproduces a run: the file, the seed, both profiles, the command-line
 * toggles and budgets. `file` should be the path as the user can type it (relative to the cwd).
 */
export function replayLine(file: string | undefined, s: Scenario, o: Overrides): string {
  const words = [...APF_COMMAND, 'run'];
  if (file !== undefined) words.push(file);
  if (o.variant !== undefined) words.push('--variant', o.variant);
  words.push('--seed', String(s.seed), '--guest', s.machine.guest.profile, '--host', s.machine.host.profile);
  for (const t of o.toggles ?? []) words.push('--toggle', t.text);
  if (o.maxEvents !== undefined) words.push('--max-events', String(o.maxEvents));
  if (o.maxTime !== undefined) words.push('--max-time', `${o.maxTime}ns`);
  return words.map(shellWord).join(' ');
}
