import {
  APF_DATA_ALIGN,
  APF_DATA_LAYOUTS,
  APF_ENABLED_OFFSET,
  APF_FLAGS_OFFSET,
  APF_LAYOUT_NAMES,
  APF_TOKEN_OFFSET,
  type LeMemory,
  apfDataView,
  apfLayout,
  hostCachedMappingLength,
  hostWritableBytes,
  layoutForKernel,
} from '../../shared-abi/layout';

/** A little-endian byte array that records every u32 store. */
class FakeMemory implements LeMemory {
  readonly bytes = new Uint8Array(4096);
  readonly view = new DataView(this.bytes.buffer);
  readonly writes: [number, number][] = [];
  readU32(addr: number): number {
    return this.view.getUint32(addr, true);
  }
  writeU32(addr: number, v: number): void {
    this.writes.push([addr, v]);
    this.view.setUint32(addr, v, true);
  }
}

describe('struct kvm_vcpu_pv_apf_data layouts (spec §2)', () => {
  test('v2.6.38–v5.7 (§2.1)', () => {
    expect(APF_DATA_LAYOUTS['v2.6.38']).toEqual({
      name: 'v2.6.38',
      size: 68,
      align: 64,
      fields: {
        reason: { offset: 0, size: 4, writer: 'both' },
        pad: { offset: 4, size: 60, writer: 'none' },
        enabled: { offset: 64, size: 4, writer: 'guest' },
      },
    });
  });
  test('v5.8–~v6.6 (§2.2)', () => {
    expect(APF_DATA_LAYOUTS['v5.8']).toEqual({
      name: 'v5.8',
      size: 68,
      align: 64,
      fields: {
        flags: { offset: 0, size: 4, writer: 'both' },
        token: { offset: 4, size: 4, writer: 'both' },
        pad: { offset: 8, size: 56, writer: 'none' },
        enabled: { offset: 64, size: 4, writer: 'guest' },
      },
    });
  });
  test('~v6.7 onward (§2.3)', () => {
    expect(APF_DATA_LAYOUTS['v6.7']).toEqual({
      name: 'v6.7',
      size: 64,
      align: 64,
      fields: {
        flags: { offset: 0, size: 4, writer: 'both' },
        token: { offset: 4, size: 4, writer: 'both' },
        pad: { offset: 8, size: 56, writer: 'none' },
      },
    });
  });
  test('offsets and names', () => {
    expect(APF_LAYOUT_NAMES).toEqual(['v2.6.38', 'v5.8', 'v6.7']);
    expect(APF_DATA_ALIGN).toBe(64);
    expect(APF_FLAGS_OFFSET).toBe(0);
    expect(APF_TOKEN_OFFSET).toBe(4);
    expect(APF_ENABLED_OFFSET).toBe(64);
    expect(apfLayout('v5.8')).toBe(APF_DATA_LAYOUTS['v5.8']);
  });
  test.each(APF_LAYOUT_NAMES)('%s: fields tile the struct without gaps or overlap', (name) => {
    const l = apfLayout(name);
    const fields = Object.values(l.fields).sort((a, b) => a.offset - b.offset);
    let at = 0;
    for (const f of fields) {
      expect(f.offset).toBe(at);
      at += f.size;
    }
    expect(at).toBe(l.size);
  });
  test.each([
    ['2.6.38', 'v2.6.38'],
    ['v4.19', 'v2.6.38'],
    ['5.7.19', 'v2.6.38'],
    ['v5.8', 'v5.8'],
    ['6.6.30', 'v5.8'],
    ['v6.7', 'v6.7'],
    ['6.15.0-rc2', 'v6.7'],
  ] as const)('layoutForKernel(%s) = %s', (v, name) => {
    expect(layoutForKernel(v)).toBe(name);
  });
  test('layoutForKernel rejects kernels without async PF', () => {
    expect(() => layoutForKernel('2.6.37')).toThrow(RangeError);
  });
});

describe('host-writable bytes (spec §1.6)', () => {
  test('4 bytes before v5.8, 8 from v5.8', () => {
    expect(hostWritableBytes('v2.6.38')).toEqual({ offset: 0, length: 4 });
    expect(hostWritableBytes('v5.8')).toEqual({ offset: 0, length: 8 });
    expect(hostWritableBytes(APF_DATA_LAYOUTS['v6.7'])).toEqual({ offset: 0, length: 8 });
    expect(hostCachedMappingLength('v2.6.38')).toBe(4);
    expect(hostCachedMappingLength('v4.13')).toBe(4);
    expect(hostCachedMappingLength('v5.8')).toBe(8);
  });
});

describe('apfDataView (spec §2)', () => {
  test('v5.8 layout: flags @0, token @4, enabled @64, little-endian', () => {
    const mem = new FakeMemory();
    const v = apfDataView('v5.8', mem, 0x100);
    expect(v.hasToken).toBe(true);
    expect(v.hasEnabled).toBe(true);
    v.writeFlags(1);
    v.writeToken(0x12345678);
    v.writeEnabled(1);
    expect(mem.writes).toEqual([
      [0x100, 1],
      [0x104, 0x12345678],
      [0x140, 1],
    ]);
    expect([...mem.bytes.subarray(0x104, 0x108)]).toEqual([0x78, 0x56, 0x34, 0x12]);
    expect(v.readFlags()).toBe(1);
    expect(v.readToken()).toBe(0x12345678);
    expect(v.readEnabled()).toBe(1);
    v.writeToken(0);
    expect(v.readToken()).toBe(0);
  });
  test('old layout: reason is at offset 0, token does not exist', () => {
    const mem = new FakeMemory();
    const v = apfDataView(APF_DATA_LAYOUTS['v2.6.38'], mem, 0x40);
    expect(v.hasToken).toBe(false);
    v.writeFlags(2);
    expect(mem.readU32(0x40)).toBe(2);
    expect(v.readFlags()).toBe(2);
    v.writeEnabled(1);
    expect(mem.readU32(0x80)).toBe(1);
    expect(() => v.readToken()).toThrow(/v2\.6\.38 has no 'token' field/);
    expect(() => v.writeToken(1)).toThrow(/no 'token' field/);
  });
  test('v6.7 layout: enabled does not exist', () => {
    const mem = new FakeMemory();
    const v = apfDataView('v6.7', mem, 0);
    expect(v.hasEnabled).toBe(false);
    v.writeToken(0xffffffff);
    expect(v.readToken()).toBe(0xffffffff);
    expect(() => v.readEnabled()).toThrow(/v6\.7 has no 'enabled' field/);
    expect(() => v.writeEnabled(1)).toThrow(/no 'enabled' field/);
  });
  test('rejects misaligned bases and non-u32 values', () => {
    const mem = new FakeMemory();
    expect(() => apfDataView('v5.8', mem, 0x104)).toThrow(RangeError);
    expect(() => apfDataView('v5.8', mem, -64)).toThrow(RangeError);
    const v = apfDataView('v5.8', mem, 0);
    expect(() => v.writeFlags(-1)).toThrow(RangeError);
    expect(() => v.writeToken(2 ** 32)).toThrow(RangeError);
    expect(mem.writes).toEqual([]);
  });
});
