/** Guest profile and toggle names as the harness lists and validates them (from guest/profiles.ts). */
import { GUEST_PROFILE_NAMES as NAMES, GUEST_PROFILES, GUEST_TOGGLES, type GuestToggle } from '../guest/profiles';
import type { NamedInfo } from './registry';

export const GUEST_PROFILE_NAMES: readonly string[] = NAMES;

export const GUEST_PROFILE_INFO: readonly NamedInfo[] = NAMES.map((name) => ({ name, description: GUEST_PROFILES[name].description }));

export const GUEST_TOGGLE_INFO: readonly NamedInfo[] = (Object.keys(GUEST_TOGGLES) as GuestToggle[]).map((name) => ({ name, description: GUEST_TOGGLES[name] }));
