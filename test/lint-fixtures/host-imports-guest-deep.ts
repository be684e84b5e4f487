// Fixture: linted as if it were host/x86/fixture.ts; the path detours through sim/ but lands in guest/.
import { something } from '../../sim/../guest/kvm';

export const x = something;
