/** Helpers for messages that list names: "a, b or c", and "did you mean ...?" suggestions. */

/** "a, b or c". */
export function oneOf(names: readonly string[]): string {
  if (names.length <= 1) return names.join('');
  return names.slice(0, -1).join(', ') + ' or ' + names[names.length - 1];
}

/** The closest name to `input` (small edit distance, or a name it is a prefix of), for hints. */
export function closest(input: string, names: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const n of names) {
    const d = editDistance(input.toLowerCase(), n.toLowerCase());
    if (d < bestD) {
      bestD = d;
      best = n;
    }
  }
  if (best === undefined || bestD === 0) return bestD === 0 ? undefined : best;
  const limit = Math.max(2, Math.floor(input.length / 4));
  if (bestD <= limit) return best;
  const prefix = names.find((n) => input.length >= 3 && n.startsWith(input));
  return prefix;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const sub = (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      cur.push(Math.min(sub, (prev[j] ?? 0) + 1, (cur[j - 1] ?? 0) + 1));
    }
    prev = cur;
  }
  return prev[b.length] ?? 0;
}

/**
 * `record[key]` when `key` is the record's own property, else undefined: a safe lookup for names
 * the user typed ("__proto__", "constructor" and "toString" are not entries of any table).
 */
export function ownEntry<V>(record: Readonly<Record<string, V>> | undefined, key: string): V | undefined {
  return record !== undefined && Object.prototype.hasOwnProperty.call(record, key) ? record[key] : undefined;
}
