// Fixture: linted as if it were host/fixture.ts. Ambient randomness breaks determinism.
export function pickLatency(): number {
  return Math.random() * 1000;
}
