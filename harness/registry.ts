/**
 * The names a scenario file or a command line may use: host and guest profiles and toggles, KVM
 * CPUID feature names, checkers. Everything is read from the layer that owns it, so a new profile
 * or toggle appears in validation, `apf list` and the JSON Schema without touching the harness.
 */
import { KVM_FEATURE, type KvmFeatureName } from '../shared-abi/cpuid';
import { HOST_PROFILES, HOST_TOGGLES, type HostProfileName, type HostToggle } from '../host/config';
import { GUEST_PROFILE_NAMES, GUEST_PROFILES, GUEST_TOGGLES, type GuestToggle } from '../guest/profiles';
import { CHECKERS } from './checkers';

export interface NamedInfo {
  readonly name: string;
  readonly description: string;
}

export const hostProfileNames = (): readonly HostProfileName[] => HOST_PROFILES;
export const hostToggleNames = (): readonly HostToggle[] => Object.keys(HOST_TOGGLES) as HostToggle[];
export const hostToggleInfo = (): readonly NamedInfo[] =>
  hostToggleNames().map((name) => ({ name, description: HOST_TOGGLES[name] }));

export const guestProfileNames = (): readonly string[] => GUEST_PROFILE_NAMES;
export const guestProfileInfo = (): readonly NamedInfo[] =>
  GUEST_PROFILE_NAMES.map((name) => ({ name, description: GUEST_PROFILES[name].description }));
export const guestToggleNames = (): readonly string[] => Object.keys(GUEST_TOGGLES);
export const guestToggleInfo = (): readonly NamedInfo[] =>
  (Object.keys(GUEST_TOGGLES) as GuestToggle[]).map((name) => ({ name, description: GUEST_TOGGLES[name] }));

export const kvmFeatureNames = (): readonly KvmFeatureName[] => Object.keys(KVM_FEATURE) as KvmFeatureName[];

export const checkerNames = (): readonly string[] => CHECKERS.map((c) => c.name);
export const checkerInfo = (): readonly NamedInfo[] => CHECKERS.map((c) => ({ name: c.name, description: c.description }));

export { oneOf, closest } from './util/names';
