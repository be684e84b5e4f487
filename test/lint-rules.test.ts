/**
 * The layering and determinism lint rules must keep biting: ESLint runs on fixture files placed
 * (virtually) inside each layer, and the expected findings must be reported.
 */
import { execFileSync } from 'node:child_process';
import path from 'node:path';

interface Finding {
  fixture: string;
  as: string;
  messages: { ruleId: string | null; message: string }[];
}

const root = path.resolve(__dirname, '..');
const cases: Record<string, string> = {
  'guest-imports-host.ts': 'guest/fixture.ts',
  'host-math-random.ts': 'host/fixture.ts',
  'host-imports-guest-deep.ts': 'host/x86/fixture.ts',
  'sim-imports-host.ts': 'sim/fixture.ts',
  'shared-abi-imports-package.ts': 'shared-abi/fixture.ts',
  'guest-time-sources.ts': 'guest/fixture.ts',
  'clean-guest.ts': 'guest/fixture.ts',
};

const findings: Finding[] = JSON.parse(
  execFileSync(process.execPath, [path.join(root, 'test/lint-fixtures/run-eslint.mjs'), root, ...Object.entries(cases).map(([f, as]) => `${f}=${as}`)], {
    encoding: 'utf8',
  }),
);
const byFixture = new Map(findings.map((f) => [f.fixture, f.messages]));
const rules = (fixture: string): (string | null)[] => (byFixture.get(fixture) ?? []).map((m) => m.ruleId);
const text = (fixture: string): string => (byFixture.get(fixture) ?? []).map((m) => m.message).join('\n');

describe('layering rule', () => {
  test('a guest/ file importing host/ is reported', () => {
    expect(rules('guest-imports-host.ts')).toContain('apf/layering');
    expect(text('guest-imports-host.ts')).toMatch(/guest\/ may not import host\//);
  });
  test('an import that detours through sim/ but lands in guest/ is reported from host/', () => {
    expect(text('host-imports-guest-deep.ts')).toMatch(/host\/ may not import guest\//);
  });
  test('sim/ may not re-export host/', () => {
    expect(text('sim-imports-host.ts')).toMatch(/sim\/ may not import host\//);
  });
  test('shared-abi/ imports neither packages nor sim/', () => {
    expect(text('shared-abi-imports-package.ts')).toMatch(/may not import the package 'eventemitter3'/);
    expect(text('shared-abi-imports-package.ts')).toMatch(/shared-abi\/ may not import sim\//);
  });
  test('allowed imports produce no findings', () => {
    expect(byFixture.get('clean-guest.ts')).toEqual([]);
  });
});

describe('determinism rule', () => {
  test('Math.random() in host/ is reported', () => {
    expect(rules('host-math-random.ts')).toContain('no-restricted-properties');
    expect(text('host-math-random.ts')).toMatch(/Nondeterminism/);
  });
  test('Date, performance, setTimeout and process.hrtime in guest/ are all reported', () => {
    const msgs = byFixture.get('guest-time-sources.ts') ?? [];
    const restricted = msgs.filter((m) => m.ruleId === 'no-restricted-globals' || m.ruleId === 'no-restricted-properties');
    expect(restricted.map((m) => m.message).join('\n')).toMatch(/'Date'/);
    expect(restricted.map((m) => m.message).join('\n')).toMatch(/'performance'/);
    expect(restricted.map((m) => m.message).join('\n')).toMatch(/'setTimeout'/);
    expect(restricted.map((m) => m.message).join('\n')).toMatch(/'process'/);
  });
});
