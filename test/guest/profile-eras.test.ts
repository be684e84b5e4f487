/**
 * The guest profiles are written as an era chain (each era = the previous era's toggles plus its
 * own fixes). The resolved facts and toggles of every profile, with the defaults and with
 * CONFIG_PREEMPT off (which changes the derived send_always and preempt_count), are pinned in
 * test/golden/guest-profiles.json, taken from the profile table before it was restated as a chain.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { GUEST_PROFILE_NAMES, resolveGuestProfile } from '../../guest/profiles';

const pinned = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'golden', 'guest-profiles.json'), 'utf8')) as Record<string, unknown>;

describe('guest profiles as an era chain', () => {
  it.each(GUEST_PROFILE_NAMES)('%s resolves to the pinned facts and toggles', (p) => {
    for (const [label, t] of [['defaults', {}], ['no-preempt', { config_preempt: false }]] as const) {
      const r = resolveGuestProfile(p, t);
      expect({ facts: r.facts, toggles: r.toggles, overridden: r.overridden }).toEqual(pinned[`${p} ${label}`]);
    }
  });

  it('pins every profile', () => {
    expect(Object.keys(pinned).sort()).toEqual(GUEST_PROFILE_NAMES.flatMap((p) => [`${p} defaults`, `${p} no-preempt`]).sort());
  });
});
