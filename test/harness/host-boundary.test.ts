/**
 * The harness acts on the host only through `Kvm` methods (host/kvm.ts): no file under harness/
 * reaches into a vCPU's async-PF state, its LAPIC, host memory or the vCPU objects themselves.
 * When an action needs something new from the host, give `Kvm` a method for it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

const root = path.resolve(__dirname, '..', '..', 'harness');
const INTERNALS = /\.(apf|asyncPf|hostMem|otherMsrs)\b|\bkvm\.(vcpu\(|vcpus\b)|\.lapic\??\.accept\(/;

function listTs(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? listTs(p) : e.name.endsWith('.ts') ? [p] : [];
  });
}

describe('harness -> host boundary', () => {
  it('no harness file touches host internals', () => {
    const hits: string[] = [];
    for (const f of listTs(root)) {
      fs.readFileSync(f, 'utf8')
        .split('\n')
        .forEach((line, i) => {
          if (INTERNALS.test(line)) hits.push(`${path.relative(root, f)}:${i + 1}: ${line.trim()}`);
        });
    }
    expect(hits).toEqual([]);
  });

  it('the pattern catches the reaches it is meant to catch', () => {
    for (const bad of ['const v = kvm.vcpu(a.cpu);', 'v.apf.id = 3;', 'v.lapic?.accept("fixed", 0xf3);', 'for (const v of kvm.vcpus) {}', 'w.kvm.hostMem.phys']) {
      expect([bad, INTERNALS.test(bad)]).toEqual([bad, true]);
    }
    expect(INTERNALS.test('kvm.injectPageReady(a.cpu, a.token)')).toBe(false);
    expect(INTERNALS.test('m.host.lapic === undefined')).toBe(false);
  });
});
