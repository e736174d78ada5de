import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { column, productCache, products, sessions, shipped, users } from '../helpers/datasets';
import { col, compileDeclaration, declarationYaml, defineCacheDataset, defineDataset, type Dataset } from '../../src/datasets';
import { UNDECIDED } from '../../src/datasets/dataset';
import { parseDeclarationYaml } from '../../src/datasets/declaration';
import { isCacheDataset } from '../../src/jobs/datasets';
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
    assert.match(checkImportParams(unknown, shipped)[0]!.message, /^"nope" is not a declared dataset \(customers, invoice_lines, invoices, password_reset_tokens, posts, product_cache, products, sessions, usage_events, user_activity, users, verification_tokens\)$/);
  });
});

describe('declarations', () => {
  it('a TypeScript dataset becomes a YAML file that compiles to the same columns', () => {
    const coded = defineDataset({
      name: 'posts',
      table: 'blog.posts',
      description: 'Blog posts.',
      key: ['slug'],
      idColumn: 'id',
      columns: {
        slug: col.text({ required: true, max: 120, pattern: '^[a-z0-9-]+$', normalise: ['trim', 'lower'], description: 'URL slug.' }),
        author_email: col.email({ description: 'Author.', aliases: ['author'] }),
        state: col.enumOf(['draft', 'published'], { default: 'draft', description: 'State.' }),
        words: col.number({ sql: 'integer', min: 0, normalise: ['thousands'], description: 'Word count.' }),
        featured: col.boolean({ default: false, normalise: ['yes_no'], description: 'On the front page.' }),
        published_on: col.date({ normalise: [{ date: ['DD/MM/YYYY'] }], description: 'Day published.' }),
      },
      system: { id: 'integer', created_at: 'timestamptz' },
    });
    const yaml = declarationYaml(coded.declaration);
    const loaded = compileDeclaration(parseDeclarationYaml(yaml, 'posts.yaml', 'posts'));
    assert.deepEqual(loaded.declaration, coded.declaration);
    assert.equal(loaded.sqlTable, '"blog"."posts"');
    const row = { slug: ' My-Post ', author_email: 'A@B.example', state: undefined, words: '1,204', featured: 'yes', published_on: '31/12/2023' };
    for (const dataset of [coded as Dataset, loaded]) {
      assert.deepEqual(
        Object.fromEntries(dataset.columnNames.map((c) => [c, dataset.columns[c]!.schema.parse(row[c as keyof typeof row])])),
        { slug: 'my-post', author_email: 'a@b.example', state: 'draft', words: 1204, featured: true, published_on: '2023-12-31' },
      );
    }
  });

  it('a cache dataset: cache: true, one key column, and the columns refreshes maintain as system columns, filterable but not importable', () => {
    assert.deepEqual(productCache.cache, { key: 'product_id', fields: ['name', 'price', 'currency'], refreshedAt: 'last_updated', status: 'last_status' });
    for (const c of ['last_updated', 'last_status', 'updated_at']) {
      assert.ok(productCache.filterType(c), `${c} is filterable`);
      assert.equal(productCache.isColumn(c), false, `${c} is not importable`);
    }
    assert.equal(column(productCache, 'currency').schema.parse(' eur '), 'EUR');
    assert.equal(column(productCache, 'currency').schema.safeParse('EURO').error?.issues[0]?.message, 'must be a three-letter currency code such as EUR');
    assert.equal(isCacheDataset(products), false);

    const coded = defineCacheDataset({ name: 'price_cache', table: 'price_cache', description: 'Prices.', key: 'sku', columns: { sku: col.text({ required: true, description: 'SKU.' }), currency: col.currency({ description: 'Currency.' }) } });
    const loaded = compileDeclaration(parseDeclarationYaml(declarationYaml(coded.declaration), 'price_cache.yaml', 'price_cache'));
    assert.ok(isCacheDataset(loaded));
    assert.deepEqual([loaded.declaration, loaded.system, loaded.cache], [coded.declaration, coded.system, coded.cache]);

    const refused = (text: string) => {
      try {
        parseDeclarationYaml(text, 'c.yaml', 'c');
      } catch (err) {
        return (err as Error).message;
      }
      return assert.fail('accepted');
    };
    const base = 'table: c\ndescription: C.\ncache: true\ncolumns:\n  a: {type: text, required: true, description: A.}\n  b: {type: text, required: true, description: B.}\n';
    const message = refused(`${base}key: [a, b]\nsystem: {id: integer, updated_at: timestamp, last_updated: timestamp}\n`);
    assert.match(message, /^ {2}key: a cache dataset has one key column, the upstream's id$/m);
    assert.match(message, /^ {2}system\.last_status: a cache dataset's table has last_status \(text\), which cache-refresh maintains: declare it under system$/m);
    assert.doesNotMatch(message, /last_updated|updated_at/);
  });

  it('exact decimals, currency defaults and writtenBy survive the round trip to YAML, and exact decimals stay text', () => {
    const coded = defineDataset({
      name: 'charges',
      table: 'charges',
      description: 'Charges.',
      key: ['ref'],
      idColumn: 'id',
      columns: {
        ref: col.text({ required: true, description: 'Reference.' }),
        amount: col.exactDecimal({ required: true, integerDigits: 4, scale: 2, normalise: ['decimal_comma'], description: 'Amount.' }),
        currency: col.currency({ default: 'EUR', description: 'Currency.' }),
      },
      system: { id: 'integer' },
      writtenBy: 'invoicing',
    });
    const yaml = declarationYaml(coded.declaration);
    assert.match(yaml, /^writtenBy: invoicing$/m);
    const loaded = compileDeclaration(parseDeclarationYaml(yaml, 'charges.yaml', 'charges'));
    assert.deepEqual(loaded.declaration, coded.declaration);
    assert.equal(loaded.writtenBy, 'invoicing');
    for (const dataset of [coded as Dataset, loaded]) {
      const [amount, currency] = [column(dataset, 'amount'), column(dataset, 'currency')];
      assert.equal(amount.sql, 'numeric');
      assert.equal(amount.schema.parse('1234,56'), '1234.56', 'text, never a float');
      assert.equal(amount.quick!(' 0.10 '), '0.10');
      assert.equal(amount.schema.safeParse('12345').error?.issues[0]?.message, 'must be a number of at most 4 digits and 2 decimals, 0 or more');
      assert.equal(amount.schema.safeParse('-1').success, false);
      assert.equal(currency.schema.parse(undefined), 'EUR');
    }
    assert.throws(() => parseDeclarationYaml('table: c\ndescription: C.\nkey: [a]\ncolumns:\n  a: {type: currency, required: true, default: euro, description: A.}\n', 'c.yaml', 'c'), /columns\.a\.default: must be a three-letter currency code/);
  });

  it('the shipped users dataset keeps its quick checks for the import fast path', () => {
    for (const c of ['email', 'name', 'role', 'status', 'signup_date']) assert.ok(column(users, c).quick, c);
  });
});
