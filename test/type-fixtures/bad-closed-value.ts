// A string outside the field's closed set of values.
import type { SourceTrace } from '../../sim/trace';

declare const host: SourceTrace<'host'>;
host('kvm_vcpu_block', { why: 'sleepy' }); // error
