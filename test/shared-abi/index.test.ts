import * as abi from '../../shared-abi';

describe('shared-abi barrel', () => {
  test('re-exports every file', () => {
    const names = [
      'gpa', 'PAGE_SIZE', // addr
      'makeToken', 'KVM_APF_WAKE_ALL_TOKEN', 'ASYNC_PF_PER_VCPU', // apf
      'KVM_CPUID_FEATURES', 'KVM_FEATURE', // cpuid
      'hash32', 'hash32Pre47', // hash
      'APF_DATA_LAYOUTS', 'apfDataView', 'hostWritableBytes', // layout
      'MSR_KVM_ASYNC_PF_EN', 'decodeAsyncPfEn', 'reservedMaskFor', // msr
      'TRACEPOINTS', 'formatTracepoint', // tracepoints
      'PF_VECTOR', 'LINUX_VECTOR', // vectors
    ];
    for (const n of names) expect(abi).toHaveProperty(n);
  });
});
