/**
 * `apf list [--json]`: the scenarios shipped in scenarios/, host and guest profiles and toggles,
 * the checkers, the injectable actions and the run outcomes.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { HOST_PROFILE_INFO } from '../../../host/profiles';
import { CHECKERS } from '../../checkers';
import { guestProfileInfo, guestToggleInfo, hostProfileNames, hostToggleInfo } from '../../registry';
import { loadScenarioFile, ScenarioError } from '../../scenario/load';
import { ACTIONS, OUTCOMES } from '../../scenario/schema';
import { flag, helpText, parse, type OptionSpecs } from '../args';
import { PACKAGE_ROOT, shownPath, type CliIo } from '../io';

const OPTIONS: OptionSpecs = {
  json: { type: 'boolean', help: 'print everything as one JSON object' },
  help: { type: 'boolean', short: 'h', help: 'show this help' },
};

export const LIST_HELP = helpText('apf list [--json]', ['Lists scenarios, host and guest profiles and toggles, checkers, injectable events and outcomes.'], OPTIONS);

export interface ScenarioEntry {
  readonly file: string;
  readonly name: string;
  readonly description: string;
  readonly error?: string;
}

/** Every scenario file under `dir` (recursively), sorted by path. */
export function scenarioFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string): void => {
    let entries: fs.Dirent[];
    try {
      entries = fs.readdirSync(d, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (/\.(json|ya?ml)$/i.test(e.name)) out.push(p);
    }
  };
  walk(dir);
  return out.sort();
}

export function listScenarios(cwd: string): ScenarioEntry[] {
  return scenarioFiles(path.join(PACKAGE_ROOT, 'scenarios')).map((f) => {
    const shown = shownPath(cwd, f);
    try {
      const s = loadScenarioFile(f, shown);
      return { file: shown, name: s.name, description: s.description ?? '' };
    } catch (e) {
      return { file: shown, name: path.basename(f), description: '', error: e instanceof ScenarioError ? e.message : String(e) };
    }
  });
}

export function listCommand(argv: readonly string[], io: CliIo): number {
  const p = parse('list', argv, OPTIONS, 0);
  if (flag(p, 'help')) {
    io.out(LIST_HELP);
    return 0;
  }
  const data = {
    scenarios: listScenarios(io.cwd),
    guestProfiles: guestProfileInfo(),
    hostProfiles: hostProfileNames().map((name) => ({ name, version: HOST_PROFILE_INFO[name].version, description: HOST_PROFILE_INFO[name].description })),
    hostToggles: hostToggleInfo(),
    guestToggles: guestToggleInfo(),
    checkers: CHECKERS.map((c) => ({ name: c.name, description: c.description, invariant: c.invariant, options: Object.keys(c.options) })),
    actions: Object.entries(ACTIONS).map(([name, description]) => ({ name, description })),
    outcomes: Object.entries(OUTCOMES).map(([name, description]) => ({ name, description })),
  };
  if (flag(p, 'json')) {
    io.out(JSON.stringify(data, null, 2) + '\n');
    return 0;
  }
  const lines: string[] = [];
  const section = (title: string, rows: readonly { name: string; description: string }[]): void => {
    lines.push(title);
    const w = Math.min(30, Math.max(...rows.map((r) => r.name.length)));
    for (const r of rows) lines.push(`  ${r.name.padEnd(w)}  ${r.description}`);
    lines.push('');
  };
  lines.push('Scenarios (apf run FILE):');
  const fw = Math.max(0, ...data.scenarios.map((s) => s.file.length));
  for (const s of data.scenarios) lines.push(`  ${s.file.padEnd(fw)}  ${s.error === undefined ? s.description : `INVALID: ${s.error}`}`);
  lines.push('');
  section('Guest profiles (--guest):', data.guestProfiles);
  section('Host profiles (--host):', data.hostProfiles.map((h) => ({ name: h.name, description: h.description })));
  section('Host toggles (--toggle NAME=on|off):', data.hostToggles);
  section('Guest toggles (--toggle NAME=on|off):', data.guestToggles);
  section('Checkers:', data.checkers);
  section('Injectable events ("do" in a scenario\'s "events"):', data.actions);
  section('Outcomes ("expect.outcome"):', data.outcomes);
  io.out(lines.join('\n'));
  return 0;
}
