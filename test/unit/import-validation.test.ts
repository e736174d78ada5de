import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { column, shipped, users } from '../helpers/datasets';
import { UNDECIDED } from '../../src/datasets/dataset';

// Values an import meets: plain, padded, mixed case, blank-ish, malformed, wrong types.
const samples: unknown[] = [
  undefined, null, 0, 12, true, {}, [], '', ' ', '\t', '\u00a0', '\ufeffx', 'a', ' a ', 'A', 'x'.repeat(64), 'x'.repeat(65), 'x'.repeat(201), 'x'.repeat(1001),
  'user1@example.com', ' User1@Example.COM ', 'user@example', 'a..b@example.com', '.a@example.com', 'a.b@ex-ample.co.uk', "o'neil+tag@example.com", 'ü@example.com', 'a@b.c',
  'user', ' ADMIN ', 'Moderator', 'superuser', 'active', 'Pending ', 'inactive', 'deleted',
  '2024-01-02', ' 2024-12-31 ', '2024-02-29', '2023-02-29', '2024-13-01', '2024-1-1', '20240101', '2024-01-02T00:00:00Z',
];

describe('quick column checks', () => {
  for (const dataset of shipped.all()) {
    for (const [name, spec] of Object.entries(dataset.columns)) {
      if (!spec.quick) continue;
      it(`${dataset.name}.${name} accepts only what its schema accepts, with the same output`, () => {
        for (const value of samples) {
          const quick = spec.quick!(value);
          if (quick === UNDECIDED) continue;
          const parsed = spec.schema.safeParse(value);
          assert.ok(parsed.success, `${JSON.stringify(value)}: quick accepted it as ${JSON.stringify(quick)}, the schema rejects it`);
          assert.deepEqual(quick, parsed.data, JSON.stringify(value));
        }
      });
    }
  }

  it('decide the common plain values', () => {
    assert.equal(column(users, "email").quick!(' User1@Example.COM '), 'user1@example.com');
    assert.equal(column(users, "name").quick!('User 1, Bench'), 'User 1, Bench');
    assert.equal(column(users, "role").quick!(undefined), 'user');
    assert.equal(column(users, "status").quick!('Pending'), 'pending');
    assert.equal(column(users, "signup_date").quick!('2024-02-29'), '2024-02-29');
    assert.equal(column(users, "signup_date").quick!(undefined), undefined);
  });
});
