// Fixture: linted as if it were guest/fixture.ts: allowed imports only, no findings expected.
import { PAGE_SIZE } from '../shared-abi/addr';
import type { Simulation } from '../sim/engine';

export function pages(bytes: number, _sim?: Simulation): number {
  return Math.ceil(bytes / PAGE_SIZE);
}
