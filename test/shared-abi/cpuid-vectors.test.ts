import {
  KVM_CPUID_FEATURES,
  KVM_FEATURE,
  KVM_FEATURE_ASYNC_PF,
  KVM_FEATURE_ASYNC_PF_INT,
  KVM_FEATURE_ASYNC_PF_VMEXIT,
  kvmFeatureEax,
  kvmFeatureHas,
} from '../../shared-abi/cpuid';
import {
  ASYNC_PF_ERROR_CODE,
  GP_VECTOR,
  HYPERVISOR_CALLBACK_VECTOR,
  LINUX_VECTOR,
  NUM_EXCEPTION_VECTORS,
  PF_VECTOR,
  X86_EXCEPTION,
  isExceptionVector,
} from '../../shared-abi/vectors';

describe('CPUID (spec §1.4)', () => {
  test('leaf and APF bits', () => {
    expect(KVM_CPUID_FEATURES).toBe(0x40000001);
    expect(KVM_FEATURE_ASYNC_PF).toBe(4);
    expect(KVM_FEATURE_ASYNC_PF_VMEXIT).toBe(10);
    expect(KVM_FEATURE_ASYNC_PF_INT).toBe(14);
  });
  test('all bits of the leaf', () => {
    expect(KVM_FEATURE).toEqual({
      CLOCKSOURCE: 0,
      NOP_IO_DELAY: 1,
      MMU_OP: 2,
      CLOCKSOURCE2: 3,
      ASYNC_PF: 4,
      STEAL_TIME: 5,
      PV_EOI: 6,
      PV_UNHALT: 7,
      PV_TLB_FLUSH: 9,
      ASYNC_PF_VMEXIT: 10,
      PV_SEND_IPI: 11,
      POLL_CONTROL: 12,
      PV_SCHED_YIELD: 13,
      ASYNC_PF_INT: 14,
      MSI_EXT_DEST_ID: 15,
      HC_MAP_GPA_RANGE: 16,
      MIGRATION_CONTROL: 17,
      CLOCKSOURCE_STABLE_BIT: 24,
    });
  });
  test('EAX helpers', () => {
    const eax = kvmFeatureEax('ASYNC_PF', 'ASYNC_PF_VMEXIT', 'ASYNC_PF_INT');
    expect(eax).toBe(0x4410);
    expect(kvmFeatureHas(eax, 'ASYNC_PF')).toBe(true);
    expect(kvmFeatureHas(eax, 'ASYNC_PF_INT')).toBe(true);
    expect(kvmFeatureHas(eax, 'STEAL_TIME')).toBe(false);
    expect(kvmFeatureEax()).toBe(0);
    expect(kvmFeatureEax('CLOCKSOURCE_STABLE_BIT')).toBe(0x1000000);
  });
});

describe('vectors (spec §1.6)', () => {
  test('exception vectors', () => {
    expect(X86_EXCEPTION).toEqual({ DE: 0, NMI: 2, UD: 6, DF: 8, TS: 10, NP: 11, SS: 12, GP: 13, PF: 14, AC: 17, MC: 18, CP: 21 });
    expect(PF_VECTOR).toBe(14);
    expect(GP_VECTOR).toBe(13);
    expect(ASYNC_PF_ERROR_CODE).toBe(0);
    expect(NUM_EXCEPTION_VECTORS).toBe(32);
    expect(isExceptionVector(31)).toBe(true);
    expect(isExceptionVector(32)).toBe(false);
    expect(isExceptionVector(-1)).toBe(false);
  });
  test('Linux vectors', () => {
    expect(LINUX_VECTOR).toEqual({
      HYPERVISOR_CALLBACK_VECTOR: 0xf3,
      LOCAL_TIMER_VECTOR: 0xec,
      CALL_FUNCTION_VECTOR: 0xfc,
      RESCHEDULE_VECTOR: 0xfd,
      SPURIOUS_APIC_VECTOR: 0xff,
    });
    expect(HYPERVISOR_CALLBACK_VECTOR).toBe(0xf3);
  });
});
