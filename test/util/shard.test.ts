/** `--shard I/N`: parsing and which items a shard takes. */
import { inShard, parseShard } from '../../harness/util/shard';
import { UsageError } from '../../harness/scenario/overrides';

describe('parseShard', () => {
  it('reads I/N', () => {
    expect(parseShard('1/1')).toEqual({ index: 1, count: 1 });
    expect(parseShard('3/7')).toEqual({ index: 3, count: 7 });
  });

  it.each(['0/3', '4/3', '1/0', '1', '1/2/3', ' 1/2', '-1/2', '1.5/2', 'a/b', ''])('%j is a one-line UsageError', (arg) => {
    expect(() => parseShard(arg)).toThrow(UsageError);
    expect(() => parseShard(arg)).toThrow(`--shard: expected I/N with 1 <= I <= N, got ${JSON.stringify(arg)}`);
  });
});

describe('inShard', () => {
  it('N shards cover every item exactly once, item i in shard i % N + 1', () => {
    for (const count of [1, 2, 3, 8]) {
      for (let i = 0; i < 50; i++) {
        const owners = Array.from({ length: count }, (_, k) => k + 1).filter((index) => inShard(i, { index, count }));
        expect(owners).toEqual([(i % count) + 1]);
      }
    }
  });
});
