import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { column, products, sessions, shipped, users } from '../helpers/datasets';
import { UNDECIDED } from '../../src/datasets/dataset';
import { checkImportParams, importParamsSchema } from '../../src/jobs/import';

const issues = (r: { success: boolean; error?: { issues: { path: PropertyKey[]; message: string }[] } }) =>
  (r.error?.issues ?? []).map((i) => [i.path.join('.'), i.message]);

describe('datasets', () => {
  const check = (values: Record<string, unknown>) =>
    Object.fromEntries(users.columnNames.map((c) => [c, column(users, c).schema.safeParse(values[c])]));

  it('normalises users: trims, lower-cases emails, applies defaults', () => {
    const r = check({ email: '  Ada@Example.COM ', name: ' Ada ', role: undefined, status: 'Pending', signup_date: '2024-02-29' });
    assert.deepEqual(Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v.data])), {
      email: 'ada@example.com',
      name: 'Ada',
      role: 'user',
      status: 'pending',
      signup_date: '2024-02-29',
      last_login_at: undefined,
      deleted_at: undefined,
    });
  });

  it('says what is wrong with a bad value', () => {
    const r = check({ email: 'nope', name: undefined, role: 'root', status: 'active', signup_date: '2024-02-30' });
    const message = (column: string) => r[column]?.error?.issues[0]?.message;
    assert.equal(message('email'), 'must be a valid email address');
    assert.equal(message('name'), 'required');
    assert.equal(message('role'), 'must be one of user, admin, moderator');
    assert.match(message('signup_date') ?? '', /YYYY-MM-DD/);
  });

  it('validates product numbers from CSV strings', () => {
    const price = column(products, "price").schema;
    const stock = column(products, "stock").schema;
    assert.equal(price.safeParse(' 12.50 ').data, 12.5);
    assert.equal(price.safeParse('0').error?.issues[0]?.message, 'must be greater than 0');
    assert.equal(price.safeParse('1e3').success, false);
    assert.equal(stock.safeParse(undefined).data, 0);
    assert.equal(stock.safeParse('-1').error?.issues[0]?.message, 'must be at least 0');
    assert.equal(stock.safeParse('2.5').error?.issues[0]?.message, 'must be a whole number');
  });

  it('refuses what the SQL types cannot hold, as row errors rather than database errors', () => {
    const [price, stock] = [column(products, 'price'), column(products, 'stock')];
    assert.equal(stock.schema.safeParse('2147483647').data, 2147483647);
    assert.equal(stock.schema.safeParse('2147483648').error?.issues[0]?.message, 'must be at most 2147483647');
    assert.equal(price.schema.safeParse('9999999999.99').data, 9999999999.99);
    assert.equal(price.schema.safeParse('10000000000').error?.issues[0]?.message, 'must be at most 9999999999.99');
    const signup = column(users, "signup_date");
    assert.equal(signup.schema.safeParse('0000-01-01').error?.issues[0]?.message, 'must be in year 1 or later');
    assert.equal(signup.quick!('0000-01-01'), UNDECIDED);
    assert.equal(signup.schema.safeParse('0001-01-01').data, '0001-01-01');
  });

  it('maps source headers by name, alias and explicit mapping', () => {
    assert.equal(users.columnFor('E-Mail'), 'email');
    assert.equal(users.columnFor('Full Name'), 'name');
    assert.equal(users.columnFor('Signup Date'), 'signup_date');
    assert.equal(users.columnFor('whatever'), undefined);
    assert.equal(users.columnFor('Contact', { Contact: 'email' }), 'email');
    assert.equal(products.columnFor('Qty'), 'stock');
  });
});

describe('secret columns', () => {
  it('are redacted wherever stored rows are shown; other columns and missing values are left as they are', () => {
    assert.deepEqual(sessions.redact({ id: 1, token: 'abc', user_id: 7 }), { id: 1, token: '[redacted]', user_id: 7 });
    assert.deepEqual(sessions.redact({ id: 1, token: null }), { id: 1, token: null });
    const user = { id: 2, email: 'a@example.com' };
    assert.equal(users.redact(user), user);
  });
});

describe('import params', () => {
  it('applies defaults', () => {
    const p = importParamsSchema.parse({ source: '/data/u.csv', dataset: 'users' });
    assert.deepEqual(p, { source: '/data/u.csv', dataset: 'users', mode: 'upsert', delimiter: ',', batchSize: 5000, errorHandling: 'continue_on_error' });
  });

  it('names the bad field', () => {
    assert.deepEqual(issues(importParamsSchema.safeParse({ source: 'rel/path.csv', dataset: 'users' })), [['source', 'must be an absolute path, file://, s3://bucket/key or store://key']]);
    const mapped = importParamsSchema.parse({ source: 's3://b/k', dataset: 'users', mapping: { x: 'nope' } });
    assert.deepEqual(checkImportParams(mapped, shipped), [{ path: ['mapping', 'x'], message: '"nope" is not a column of users (email, name, role, status, signup_date, last_login_at, deleted_at)' }]);
    const unknown = importParamsSchema.parse({ source: 's3://b/k', dataset: 'nope' });
    assert.match(checkImportParams(unknown, shipped)[0]!.message, /^"nope" is not a declared dataset \(password_reset_tokens, products, sessions, users, verification_tokens\)$/);
  });
});
