import { TRACEPOINTS, TRACEPOINT_OLD_NAMES, argFields, formatPrintf, formatTracepoint } from '../../shared-abi/tracepoints';

describe('tracepoint definitions (spec §6)', () => {
  test('names, classes, fields and formats', () => {
    const table = Object.fromEntries(
      Object.entries(TRACEPOINTS).map(([k, d]) => [k, [d.event, d.class, d.fields.map((f) => `${f.type} ${f.name}`).join(', '), d.format]]),
    );
    expect(table).toEqual({
      kvm_try_async_get_page: ['kvm_try_async_get_page', 'kvm_async_get_page_class', 'u64 gva, u64 gfn', 'gva = %#llx, gfn = %#llx'],
      kvm_async_pf_repeated_fault: ['kvm_async_pf_repeated_fault', 'kvm_async_get_page_class', 'u64 gva, u64 gfn', 'gva = %#llx, gfn = %#llx'],
      kvm_async_pf_doublefault: ['kvm_async_pf_doublefault', 'kvm_async_get_page_class', 'u64 gva, u64 gfn', 'gva = %#llx, gfn = %#llx'],
      kvm_async_pf_not_present: ['kvm_async_pf_not_present', 'kvm_async_pf_nopresent_ready', 'u64 token, u64 gva', 'token %#llx gva %#llx'],
      kvm_async_pf_ready: ['kvm_async_pf_ready', 'kvm_async_pf_nopresent_ready', 'u64 token, u64 gva', 'token %#llx gva %#llx'],
      kvm_async_pf_completed: ['kvm_async_pf_completed', null, 'unsigned long address, u64 gva', 'gva %#llx address %#lx'],
      kvm_async_pf_completed_old: [
        'kvm_async_pf_completed',
        null,
        'unsigned long address, u64 pfn, u64 gva',
        'gva %#llx address %#lx pfn %#llx',
      ],
      kvm_msr: ['kvm_msr', null, 'unsigned write, u32 ecx, u64 data, u8 exception', 'msr_%s %x = 0x%llx%s'],
      kvm_inj_exception: ['kvm_inj_exception', null, 'u8 exception, u8 has_error, u32 error_code', '%s (0x%x)'],
      kvm_inj_virq: ['kvm_inj_virq', null, 'unsigned int irq', 'irq %u'],
      kvm_apic_accept_irq: ['kvm_apic_accept_irq', null, 'u32 apicid, u16 dm, u16 tm, u8 vec', 'apicid %x vec %u (%s|%s)'],
      kvm_eoi: ['kvm_eoi', null, 'u32 apicid, int vector', 'apicid %x vector %d'],
      kvm_page_fault: ['kvm_page_fault', null, 'unsigned long fault_address, u64 error_code', 'address %lx error_code %llx'],
    });
    expect(TRACEPOINT_OLD_NAMES).toEqual({ kvm_async_pf_repeated_fault: 'kvm_async_pf_doublefault' });
  });
  test('every format argument reads only fields', () => {
    for (const d of Object.values(TRACEPOINTS)) {
      const names: readonly string[] = d.fields.map((f) => f.name);
      for (const a of d.args) for (const f of argFields(a)) expect(names).toContain(f);
      expect(d.format.split('%').length - 1).toBe(d.args.length);
    }
  });
});

describe('formatTracepoint (spec §6)', () => {
  test('not_present / ready', () => {
    expect(formatTracepoint('kvm_async_pf_not_present', { token: 0x1000, gva: 0x7f0000001000 })).toBe('token 0x1000 gva 0x7f0000001000');
    expect(formatTracepoint('kvm_async_pf_ready', { token: 0xffffffff, gva: 0 })).toBe('token 0xffffffff gva 0');
    expect(formatTracepoint('kvm_async_pf_not_present', { token: 0, gva: 0x1000 })).toBe('token 0 gva 0x1000');
  });
  test('try_async_get_page / repeated_fault / doublefault', () => {
    const f = { gva: 0x7f0000001000, gfn: 0x7f0000001 };
    expect(formatTracepoint('kvm_try_async_get_page', f)).toBe('gva = 0x7f0000001000, gfn = 0x7f0000001');
    expect(formatTracepoint('kvm_async_pf_repeated_fault', f)).toBe('gva = 0x7f0000001000, gfn = 0x7f0000001');
    expect(formatTracepoint('kvm_async_pf_doublefault', { gva: 0n, gfn: 0n })).toBe('gva = 0, gfn = 0');
  });
  test('completed, modern and old', () => {
    expect(formatTracepoint('kvm_async_pf_completed', { address: 0x7f1234560000, gva: 0x2000 })).toBe('gva 0x2000 address 0x7f1234560000');
    expect(formatTracepoint('kvm_async_pf_completed_old', { address: 0x7f1234560000, pfn: 0, gva: 0x2000 })).toBe(
      'gva 0x2000 address 0x7f1234560000 pfn 0',
    );
    expect(formatTracepoint('kvm_async_pf_completed_old', { address: 1, pfn: 0x1234, gva: 0xffff888000001000n })).toBe(
      'gva 0xffff888000001000 address 0x1 pfn 0x1234',
    );
  });
  test('x86 KVM tracepoints: MSR access, exception and interrupt injection, LAPIC, page fault', () => {
    expect(formatTracepoint('kvm_msr', { write: 1, ecx: 0x4b564d02, data: 0x1000dn, exception: 0 })).toBe('msr_write 4b564d02 = 0x1000d');
    expect(formatTracepoint('kvm_msr', { write: false, ecx: 0x4b564d07, data: 0, exception: true })).toBe('msr_read 4b564d07 = 0x0 (#GP)');
    expect(formatTracepoint('kvm_inj_exception', { exception: 14, has_error: 1, error_code: 0x6 })).toBe('#PF (0x6)');
    expect(formatTracepoint('kvm_inj_exception', { exception: 2, has_error: 0, error_code: 0x6 })).toBe('0x2 (0x0)');
    expect(formatTracepoint('kvm_inj_virq', { irq: 243 })).toBe('irq 243');
    expect(formatTracepoint('kvm_apic_accept_irq', { apicid: 1, dm: 0x400, tm: 0, vec: 2 })).toBe('apicid 1 vec 2 (NMI|edge)');
    expect(formatTracepoint('kvm_apic_accept_irq', { apicid: 0x10, dm: 0, tm: 1, vec: 0xf3 })).toBe('apicid 10 vec 243 (Fixed|level)');
    expect(formatTracepoint('kvm_eoi', { apicid: 3, vector: 243 })).toBe('apicid 3 vector 243');
    expect(formatTracepoint('kvm_page_fault', { fault_address: 0x11b000, error_code: 0x100000000n })).toBe('address 11b000 error_code 100000000');
  });
  test('missing field', () => {
    const bad = { token: 1 } as unknown as { token: number; gva: number };
    expect(() => formatTracepoint('kvm_async_pf_ready', bad)).toThrow(/missing field 'gva'/);
  });
});

describe('formatPrintf (C semantics)', () => {
  test.each([
    ['%#llx', [0], '0'],
    ['%#llx', [1], '0x1'],
    ['%#llx', [0xffffffffffffffffn], '0xffffffffffffffff'],
    ['%#llx', [-1], '0xffffffffffffffff'],
    ['%#x', [-1], '0xffffffff'],
    ['%#lx', [0x10], '0x10'],
    ['%llx', [255], 'ff'],
    ['%x', [0x1_0000_0001], '1'],
    ['%u', [-1], '4294967295'],
    ['%llu', [2 ** 40], '1099511627776'],
    ['%d', [0xffffffff], '-1'],
    ['%lld', [-5], '-5'],
    ['100%% %d', [7], '100% 7'],
  ] as const)('%s of %p = %s', (fmt, args, want) => {
    expect(formatPrintf(fmt, args)).toBe(want);
  });
  test('argument count and unsupported conversions', () => {
    expect(() => formatPrintf('%x %x', [1])).toThrow(/needs more/);
    expect(() => formatPrintf('%x', [1, 2])).toThrow(/takes 1/);
    expect(() => formatPrintf('%c', [1])).toThrow(/unsupported/);
    expect(() => formatPrintf('%s', [1])).toThrow(/needs a string/);
    expect(() => formatPrintf('%x', ['a'])).toThrow(/needs a number/);
    expect(formatPrintf('msr_%s %x', ['write', 0x80f])).toBe('msr_write 80f');
    expect(() => formatPrintf('%x', [1.5])).toThrow(RangeError);
  });
});
