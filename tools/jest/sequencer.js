// Test file order. With timings from an earlier run (Jest's cache), Jest's own order: the slowest
// files first, so that the workers finish together. A fresh checkout (a CI machine) has no timings
// and Jest falls back to file size, which puts the long fuzz and docs files late and leaves one
// worker running them alone at the end: there, the files listed here (the longest, measured) start
// first, in this order, and the rest follow by size. The list only orders files; a stale entry
// costs time, never a test.
'use strict';
const path = require('node:path');
const Sequencer = require('@jest/test-sequencer').default;

const ROOT = path.resolve(__dirname, '..', '..');
const LONGEST = [
  'test/docs/samples.test.ts',
  'test/fuzz/campaign.test.ts',
  'test/fuzz/cli.test.ts',
  'test/handlers/mistakes.test.ts',
  'test/fuzz/canaries.test.ts',
  'test/harness/checker-routing.test.ts',
  'test/harness/front-end.property.test.ts',
  'test/harness/inline-continuation.test.ts',
  'test/fuzz/shard.test.ts',
  'test/handlers/docs-snippets.test.ts',
];

class LongestFirst extends Sequencer {
  sort(tests) {
    const sorted = super.sort(tests);
    if (sorted.some((t) => t.duration != null)) return sorted;
    const rank = (t) => {
      const i = LONGEST.indexOf(path.relative(ROOT, t.path).split(path.sep).join('/'));
      return i < 0 ? LONGEST.length : i;
    };
    return [...sorted].sort((a, b) => rank(a) - rank(b));
  }
}

module.exports = LongestFirst;
