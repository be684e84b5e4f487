// Fixture: linted as if it were guest/fixture.ts: every ambient time source is reported.
export function now(): number {
  const a = Date.now();
  const b = performance.now();
  setTimeout(() => undefined, 1);
  const c = Number(process.hrtime.bigint());
  return a + b + c;
}
