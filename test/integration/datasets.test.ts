import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { DatasetView } from '../../src/api/routes/datasets';
import { loadDatasets, type DatasetRegistry } from '../../src/datasets';
import { estimateRows } from '../../src/db/datasets';
import { openStack, runCli, seedUsers, uniqueId, type Stack } from '../helpers/stack';

describe('datasets', () => {
  let stack: Stack;
  let apiUrl: string;
  let datasets: DatasetRegistry;
  before(async () => {
    stack = await openStack();
    datasets = loadDatasets(stack.config.datasetDirs);
    apiUrl = await stack.app.listen({ port: 0, host: '127.0.0.1' });
  });
  after(() => stack.close());

  const tableRows = async (table: string) => (await stack.pool.query<{ n: number }>(`SELECT count(*)::bigint AS n FROM "${table}"`)).rows[0]!.n;

  it('GET /datasets lists every declared dataset with its columns, as declared', async () => {
    const res = await stack.app.inject({ method: 'GET', url: '/datasets' });
    assert.equal(res.statusCode, 200);
    const listed = res.json<{ datasets: DatasetView[] }>().datasets;
    assert.deepEqual(listed.map((d) => d.name).sort(), [...datasets.names].sort());
    for (const view of listed) {
      const declared = datasets.get(view.name)!;
      assert.equal(view.table, declared.table);
      assert.deepEqual(view.key, declared.key);
      assert.deepEqual(
        view.columns.map((c) => c.name),
        declared.columnNames,
      );
      for (const c of view.columns) {
        const spec = declared.columns[c.name]!;
        assert.deepEqual(
          { type: c.type, required: c.required, key: c.key, aliases: c.aliases, description: c.description, secret: c.secret },
          { type: spec.sql, required: spec.required, key: declared.key.includes(c.name), aliases: spec.aliases ?? [], description: spec.description, secret: spec.secret ?? false },
          `${view.name}.${c.name}`,
        );
      }
    }
  });

  it('GET /datasets/:name: key, aliases, secret columns and the row count', async () => {
    await seedUsers(stack.pool, uniqueId('ds'), 25);
    const users = (await stack.app.inject({ method: 'GET', url: '/datasets/users' })).json<DatasetView>();
    const email = users.columns.find((c) => c.name === 'email')!;
    assert.deepEqual([email.key, email.required, email.aliases.includes('e-mail')], [true, true, true]);
    // Counted or estimated, by the table's size (earlier tests may have loaded many users).
    assert.deepEqual(users.rows, await estimateRows(stack.pool, datasets.get('users')!));
    assert.deepEqual(users.systemColumns.map((c) => c.name), ['id', 'created_at', 'updated_at']);

    const sessions = (await stack.app.inject({ method: 'GET', url: '/datasets/sessions' })).json<DatasetView>();
    assert.deepEqual(sessions.columns.filter((c) => c.secret).map((c) => c.name), ['token']);
  });

  it('small tables are counted; large ones get the planner estimate instead', async () => {
    // Any table counts as small below a threshold of Infinity pages, and as large above 0.
    assert.deepEqual(await estimateRows(stack.pool, datasets.get('users')!, Infinity), { count: await tableRows('users'), exact: true });
    await stack.pool.query('ANALYZE users');
    const estimate = await estimateRows(stack.pool, datasets.get('users')!, 0);
    assert.equal(estimate.exact, false);
    const { rows } = await stack.pool.query<{ tuples: number }>(`SELECT reltuples::float8 AS tuples FROM pg_class WHERE oid = 'users'::regclass`);
    assert.equal(estimate.count, Math.round(rows[0]!.tuples));
  });

  it('invoices and their lines say that invoicing alone writes them; an import into them is a 400 naming the kind', async () => {
    const listed = (await stack.app.inject({ method: 'GET', url: '/datasets' })).json<{ datasets: DatasetView[] }>().datasets;
    assert.deepEqual(listed.filter((d) => d.writtenBy).map((d) => [d.name, d.writtenBy]), [
      ['invoice_lines', 'invoicing'],
      ['invoices', 'invoicing'],
    ]);
    const res = await stack.app.inject({ method: 'POST', url: '/runs', payload: { kind: 'import', params: { source: 's3://x/invoices.csv', dataset: 'invoices' } } });
    assert.equal(res.statusCode, 400);
    assert.deepEqual(res.json<{ field: string }>().field, 'params.dataset');
    assert.match(res.json<{ message: string }>().message, /"invoices" is written by invoicing runs only/);
  });

  it('an unknown dataset is a 404', async () => {
    const res = await stack.app.inject({ method: 'GET', url: '/datasets/nope' });
    assert.equal(res.statusCode, 404);
    assert.equal(res.json<{ error: string }>().error, 'NOT_FOUND');
  });

  it('batchflow datasets shows the same', async () => {
    const list = await runCli(apiUrl, ['datasets']);
    assert.equal(list.code, 0, list.stderr);
    for (const name of datasets.names) assert.match(list.stdout, new RegExp(`^${name}\\s`, 'm'));

    const users = await runCli(apiUrl, ['datasets', 'users']);
    assert.equal(users.code, 0, users.stderr);
    assert.match(users.stdout, /^key: email\s+rows: ~?[\d,]+( \(estimate\))?$/m);
    assert.match(users.stdout, /^email\s+text\s+required, key\s+e-mail, email_address, mail\s+Unique email address/m);

    const unknown = await runCli(apiUrl, ['datasets', 'nope']);
    assert.equal(unknown.code, 64);
    assert.match(unknown.stderr, /404 NOT_FOUND\s+dataset "nope" not found/);
  });
});
