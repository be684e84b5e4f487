import { TRACEPOINTS, TRACEPOINT_OLD_NAMES, formatPrintf, formatTracepoint } from '../../shared-abi/tracepoints';

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
    });
    expect(TRACEPOINT_OLD_NAMES).toEqual({ kvm_async_pf_repeated_fault: 'kvm_async_pf_doublefault' });
  });
  test('every format argument is a field', () => {
    for (const d of Object.values(TRACEPOINTS)) {
      const names: readonly string[] = d.fields.map((f) => f.name);
      for (const a of d.args) expect(names).toContain(a);
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
    expect(() => formatPrintf('%s', ['a' as unknown as number])).toThrow(/unsupported/);
    expect(() => formatPrintf('%x', [1.5])).toThrow(RangeError);
  });
});
