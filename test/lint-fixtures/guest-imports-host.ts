// Fixture: linted as if it were guest/fixture.ts. A guest file reaching into the host is a layering violation.
import { Kvm } from '../host/kvm';

export const leak = Kvm;
