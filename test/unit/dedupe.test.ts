import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import YAML from 'yaml';
import { blockKey, comparable, groupLinks, hash52, similarPairs } from '../../src/activities/dedupe';
import { compileNormalisers } from '../../src/datasets/normalise';
import { similarity } from '../../src/datasets/similarity';
import { checkDedupeParams, dedupeParamsSchema } from '../../src/jobs/dedupe';
import { shipped } from '../helpers/datasets';

describe('dedupe matching', () => {
  it('compares values normalised: the column normalisers, then case, accents and spacing', () => {
    assert.equal(comparable('  Zoë   LOVELACE '), 'zoe lovelace');
    assert.equal(comparable('020 7946 0958', compileNormalisers([{ phone: 'GB' }])), '+442079460958');
    assert.equal(comparable(null), '');
    assert.equal(comparable(new Date('2024-01-02T00:00:00Z')), '2024-01-02t00:00:00.000z');
  });

  it('builds block keys from parts: whole values, prefixes, suffixes, of each word', () => {
    const row: Record<string, string> = { name: 'ada lovelace', day: '2024-01-02', empty: '' };
    const valueOf = (f: string) => row[f]!;
    assert.equal(blockKey([{ field: 'name', prefix: 3, eachWord: true }], valueOf), 'ada lov');
    assert.equal(blockKey([{ field: 'name', suffix: 3, eachWord: true }], valueOf), 'ada ace');
    assert.equal(blockKey([{ field: 'name', prefix: 4, eachWord: false }, 'day'], valueOf), 'ada \u001f2024-01-02');
    assert.equal(blockKey(['empty'], valueOf), undefined, 'no block for an empty key: empty values are not duplicates');
    const h = hash52('ada lov');
    assert.ok(Number.isSafeInteger(h) && h >= 1 && h <= 2 ** 52);
  });

  it('scores similarity as one minus the edit distance over the longer length', () => {
    assert.equal(similarity('jonathan', 'jonathon'), 1 - 1 / 8);
    assert.equal(similarity('', ''), 1);
    assert.ok(similarity('abcdef', 'uvwxyz', 0.8) < 0.8, 'below the floor the exact figure does not matter');
  });

  it('finds the similar pairs of a block; a block over maxBlockSize compares each row with its neighbours only', () => {
    const rows = ['ada lovelace', 'ada lovelase', 'grace hopper', 'grace hoper', 'alan turing'].map((v, i) => ({ id: i + 1, values: [v] }));
    const all = similarPairs(rows, { threshold: 0.85, maxBlockSize: 100, window: 1 });
    assert.deepEqual(all.map((l) => [l.a, l.b]), [
      [1, 2],
      [3, 4],
    ]);
    // Over maxBlockSize: sorted by value, each row meets only the next one; the pairs sit side by side.
    assert.deepEqual(similarPairs(rows, { threshold: 0.85, maxBlockSize: 2, window: 1 }).map((l) => [l.a, l.b]).sort(), [
      [1, 2],
      [3, 4],
    ]);
    const far = [{ id: 1, values: ['ada lovelace'] }, { id: 2, values: ['alan turing'] }, { id: 3, values: ['ada lovelase'] }];
    assert.equal(similarPairs(far, { threshold: 0.85, maxBlockSize: 2, window: 1 }).length, 1, 'sorted, the two Adas are neighbours');
  });

  it('groups connected pairs, each member with its best score', () => {
    const groups = groupLinks([
      { a: 5, b: 9, score: 0.9, exact: false },
      { a: 1, b: 2, score: 1, exact: true },
      { a: 9, b: 12, score: 0.95, exact: false },
      { a: 2, b: 3, score: 0.88, exact: false },
    ]);
    assert.deepEqual(groups, [
      [
        { id: 1, score: 1, exact: true },
        { id: 2, score: 1, exact: true },
        { id: 3, score: 0.88, exact: false },
      ],
      [
        { id: 5, score: 0.9, exact: false },
        { id: 9, score: 0.95, exact: false },
        { id: 12, score: 0.95, exact: false },
      ],
    ]);
  });

  it('the example params are valid against the shipped users dataset; unknown fields are named', () => {
    const example = dedupeParamsSchema.parse(YAML.parse(fs.readFileSync(path.join(import.meta.dirname, '../../examples/dedupe-users.yaml'), 'utf8')));
    assert.deepEqual(checkDedupeParams(example, shipped), []);
    const bad = dedupeParamsSchema.parse({ dataset: 'users', similar: { fields: ['name'] }, blockBy: [[{ field: 'nmae', prefix: 2 }]], merge: { keep: { by: 'karma' } } });
    assert.deepEqual(checkDedupeParams(bad, shipped).map((i) => i.path.join('.')), ['blockBy.0.0.field', 'merge.keep.by']);
    assert.deepEqual(dedupeParamsSchema.safeParse({ dataset: 'users', similar: { fields: ['name'] } }).error?.issues.map((i) => i.path.join('.')), ['blockBy']);
  });
});
