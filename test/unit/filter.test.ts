import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { col, defineDataset, type Dataset } from '../../src/datasets';
import { products, sessions, users } from '../helpers/datasets';
import { compileFilter } from '../../src/db/row-queries';
import { checkFilter, checkSet, isRelativeTime, resolveRelativeTime, resolveSet, type Filter } from '../../src/jobs/filter';

// No shipped dataset has a true/false column; this one exists to check the operators allowed on one.
const flags = defineDataset({
  name: 'flags',
  table: 'flags',
  description: 'test only',
  key: ['name'],
  idColumn: 'id',
  columns: {
    name: col.text({ required: true, description: 'name' }),
    enabled: col.boolean({ description: 'on or off' }),
  },
  system: { id: 'integer' },
});

const issuesOf = (found: { path: (string | number)[]; message: string }[]) => found.map((i) => [i.path.join('.'), i.message]);
const asOf = new Date('2024-03-31T15:45:30.000Z');

describe('checkFilter', () => {
  const check = (filter: unknown) => issuesOf(checkFilter(users, filter));

  it('accepts conditions combined with and / or / not', () => {
    const filter = {
      and: [
        { field: 'status', op: 'in', value: ['active', 'PENDING'] },
        { or: [{ field: 'last_login_at', op: 'lt', value: 'now - 1 year' }, { field: 'last_login_at', op: 'is_null' }] },
        { not: { field: 'email', op: 'contains', value: '@example.org' } },
        { field: 'id', op: 'gte', value: '10' },
        { field: 'signup_date', op: 'lte', value: '2024-02-29' },
      ],
    };
    assert.deepEqual(check(filter), []);
  });

  it('names each problem by its path', () => {
    const filter = {
      and: [
        { field: 'status; drop table users', op: 'eq', value: 'active' },
        { or: [{ field: 'status', op: 'like', value: 'a%' }, { field: 'status', op: 'eq', value: "' or 1=1 --" }] },
        { not: { field: 'deleted_at', op: 'is_null', value: 'x' } },
        { field: 'status', op: 'in', value: ['active', 'gone'] },
        { field: 'signup_date', op: 'gt', value: '2024-13-01' },
        { field: 'id', op: 'eq' },
        { field: 'id', op: 'eq', value: 1, extra: true },
      ],
    };
    assert.deepEqual(check(filter), [
      ['and.0.field', 'must be a column of users (email, name, role, status, signup_date, last_login_at, deleted_at, id, created_at, updated_at)'],
      ['and.1.or.0.op', 'must be one of eq, ne, lt, lte, gt, gte, in, not_in, is_null, not_null, contains, starts_with'],
      ['and.1.or.1.value', 'must be one of active, pending, inactive'],
      ['and.2.not.value', 'must be absent for op is_null'],
      ['and.3.value.1', 'must be one of active, pending, inactive'],
      ['and.4.value', 'must be a date as YYYY-MM-DD or a relative time such as "now - 30 days"'],
      ['and.5.value', 'required for op eq'],
      ['and.6.extra', 'unknown key: a filter is {field, op, value}, or {and: [...]}, {or: [...]}, {not: {...}}'],
    ]);
  });

  it('refuses a date that is not in the calendar', () => {
    assert.deepEqual(check({ field: 'signup_date', op: 'gt', value: '2024-02-30' }), [['value', 'must be a date as YYYY-MM-DD or a relative time such as "now - 30 days"']]);
    assert.equal(check({ field: 'last_login_at', op: 'gt', value: '2023-02-29T10:00:00Z' }).length, 1);
  });

  it('refuses operators that do not fit the column', () => {
    assert.deepEqual(check({ field: 'signup_date', op: 'starts_with', value: '2024' }), [['op', 'starts_with applies to text columns only']]);
    assert.deepEqual(issuesOf(checkFilter(flags, { field: 'enabled', op: 'lt', value: true })), [['op', 'lt does not apply to a true/false column']]);
    assert.deepEqual(issuesOf(checkFilter(flags, { field: 'enabled', op: 'eq', value: 'yes' })), [['value', 'must be true or false']]);
    assert.deepEqual(issuesOf(checkFilter(products, { field: 'stock', op: 'gt', value: 1.5 })), [['value', 'must be a whole number']]);
    assert.deepEqual(issuesOf(checkFilter(products, { field: 'price', op: 'gt', value: '1e3' })), [['value', 'must be a number']]);
  });

  it('refuses malformed combinators, lists and nesting', () => {
    assert.deepEqual(check('status = active'), [['', 'must be a filter object']]);
    assert.deepEqual(check({ and: [], or: [] }), [['', '"and" must be the only key of its object']]);
    assert.deepEqual(check({ or: [] }), [['or', 'must be a list of 1 to 100 filters']]);
    assert.deepEqual(check({ field: 'id', op: 'in', value: 3 }), [['value', 'must be a list of 1 to 10000 values for op in']]);
    let deep: Filter = { field: 'id', op: 'not_null' };
    for (let i = 0; i < 11; i++) deep = { not: deep };
    assert.deepEqual(check(deep), [[Array(11).fill('not').join('.'), 'filters may nest at most 10 levels']]);
  });

  it('accepts a relative time only on date and timestamp columns', () => {
    assert.deepEqual(check({ field: 'deleted_at', op: 'lt', value: '30 days ago' }), []);
    assert.deepEqual(check({ field: 'signup_date', op: 'lt', value: 'today - 1 month' }), []);
    assert.deepEqual(issuesOf(checkFilter(products, { field: 'stock', op: 'lt', value: 'now' })), [['value', 'must be a number']]);
  });
});

describe('checkSet', () => {
  it('accepts declared, non-key columns with valid values, null and relative times', () => {
    assert.deepEqual(checkSet(users, { status: 'Inactive', last_login_at: 'now', deleted_at: null, signup_date: 'today - 1 year' }), []);
  });

  it('names each bad column', () => {
    assert.deepEqual(issuesOf(checkSet(users, { email: 'a@example.com', name: null, status: 'gone', 'status = status; --': 'x', signup_date: 'soon' }, ['set'])), [
      ['set.email', 'is the key of users; a bulk update may not change it'],
      ['set.name', 'is required and may not be set to null'],
      ['set.status', 'must be one of active, pending, inactive'],
      ['set.status = status; --', 'is not a column of users that updates may set (name, role, status, signup_date, last_login_at, deleted_at)'],
      ['set.signup_date', 'must be a date as YYYY-MM-DD'],
    ]);
    assert.deepEqual(issuesOf(checkSet(users, { id: 1 })), [['id', 'is not a column of users that updates may set (name, role, status, signup_date, last_login_at, deleted_at)']]);
    assert.deepEqual(issuesOf(checkSet(users, {})), [['', 'must be an object of column → value with at least one column']]);
  });

  it('resolves values as the database stores them', () => {
    assert.deepEqual(resolveSet(users, { status: ' PENDING ', last_login_at: 'now - 1 day', deleted_at: null }, asOf), {
      status: 'pending',
      last_login_at: '2024-03-30T15:45:30.000Z',
      deleted_at: null,
    });
  });
});

describe('relative times', () => {
  const at = (value: string, sql: 'date' | 'timestamptz' = 'timestamptz', from = asOf) => resolveRelativeTime(value, from, sql);

  it('recognises now, today, offsets and "ago", and nothing else', () => {
    for (const v of ['now', 'now()', 'NOW - 1 year', 'today', 'today + 7 days', '30 days ago', '1 hour ago', 'now-90 minutes', 'now + 2 weeks']) assert.ok(isRelativeTime(v), v);
    for (const v of ['yesterday', 'now - 1 fortnight', 'now - -1 day', 'now; drop table users', '30 days', 'now - 1 year 2 days', '', 5]) assert.ok(!isRelativeTime(v), String(v));
  });

  it('resolves against the run’s start', () => {
    assert.equal(at('now'), '2024-03-31T15:45:30.000Z');
    assert.equal(at('now - 1 year'), '2023-03-31T15:45:30.000Z');
    assert.equal(at('30 days ago'), '2024-03-01T15:45:30.000Z');
    assert.equal(at('now + 90 minutes'), '2024-03-31T17:15:30.000Z');
    assert.equal(at('now - 2 weeks'), '2024-03-17T15:45:30.000Z');
    assert.equal(at('today'), '2024-03-31T00:00:00.000Z');
    assert.equal(at('today', 'date'), '2024-03-31');
    assert.equal(at('today - 1 day', 'date'), '2024-03-30');
  });

  it('does month and year arithmetic across month and year ends', () => {
    assert.equal(at('now - 3 months'), '2023-12-31T15:45:30.000Z');
    assert.equal(at('now + 9 months'), '2024-12-31T15:45:30.000Z');
    assert.equal(at('today + 1 year', 'date', new Date('2024-01-15T00:00:00Z')), '2025-01-15');
    assert.equal(at('now - 1 month', 'date', new Date('2024-03-15T08:00:00Z')), '2024-02-15');
  });

  it('clamps to the last day of a shorter month, as Postgres does', () => {
    assert.equal(at('now - 1 month', 'date'), '2024-02-29', "'2024-03-31'::date - interval '1 month' in Postgres");
    assert.equal(at('now - 1 year', 'date', new Date('2024-02-29T12:00:00Z')), '2023-02-28');
  });
});

describe('compileFilter', () => {
  const compile = (filter: Filter, dataset: Dataset = users, alias?: string) => {
    const params: unknown[] = ['already there'];
    return { sql: compileFilter(dataset, filter, asOf, params, alias), params: params.slice(1) };
  };

  it('makes columns quoted identifiers and values bind parameters, numbered after the caller’s', () => {
    const filter: Filter = {
      and: [
        { field: 'status', op: 'eq', value: 'ACTIVE' },
        { or: [{ field: 'last_login_at', op: 'lt', value: 'now - 1 year' }, { field: 'last_login_at', op: 'is_null' }] },
        { not: { field: 'signup_date', op: 'gte', value: 'today - 30 days' } },
      ],
    };
    assert.deepEqual(compile(filter, users, 't'), {
      sql: `("t"."status" = $2::text AND ("t"."last_login_at" < $3::timestamptz OR "t"."last_login_at" IS NULL) AND (NOT "t"."signup_date" >= $4::date))`,
      params: ['active', '2023-03-31T15:45:30.000Z', '2024-03-01'],
    });
  });

  it('keeps rows with an empty column in ne and not_in', () => {
    assert.deepEqual(compile({ field: 'role', op: 'ne', value: 'admin' }), { sql: `"role" IS DISTINCT FROM $2::text`, params: ['admin'] });
    assert.deepEqual(compile({ field: 'id', op: 'not_in', value: [3, '4'] }), { sql: `("id" IS NULL OR "id" <> ALL($2::bigint[]))`, params: [[3, 4]] });
    assert.deepEqual(compile({ field: 'status', op: 'in', value: ['Pending'] }), { sql: `"status" = ANY($2::text[])`, params: [['pending']] });
  });

  it('escapes LIKE wildcards in contains and starts_with', () => {
    assert.deepEqual(compile({ field: 'email', op: 'starts_with', value: '50%_off\\' }), { sql: `"email" LIKE $2::text`, params: ['50\\%\\_off\\\\%'] });
    assert.deepEqual(compile({ field: 'token', op: 'contains', value: 'a_b' }, sessions), { sql: `"token" LIKE $2::text`, params: ['%a\\_b%'] });
  });

  it('never puts caller text in the SQL: an injected value is a parameter, an injected field is refused', () => {
    const injected = "' or 1=1 --";
    for (const op of ['eq', 'ne', 'contains', 'starts_with', 'in'] as const) {
      const { sql, params } = compile({ field: 'name', op, value: op === 'in' ? [injected] : injected });
      assert.ok(!sql.includes(injected) && !sql.includes('1=1'), sql);
      assert.match(JSON.stringify(params), /or 1=1 --/);
    }
    assert.throws(() => compile({ field: 'status; drop table users', op: 'eq', value: 'active' }), /not a column of users/);
    assert.throws(() => compile({ field: 'id" = "id', op: 'eq', value: 1 }), /not a column of users/);
  });
});
