// Fixture: linted as if it were sim/fixture.ts; sim/ may only import shared-abi/.
export { Kvm } from '../host/kvm';
