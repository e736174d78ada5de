import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import YAML from 'yaml';
import { shippedDatasetsDir } from '../../src/config';
import { compileDeclaration, loadDatasets, type DatasetDeclaration } from '../../src/datasets';
import { checkDatasets, DatasetMismatchError } from '../../src/datasets/check';
import { createLogger } from '../../src/log';
import { createPool, type Pool } from '../../src/db/pool';
import { createWorker } from '../../src/worker';
import { shipped } from '../helpers/datasets';
import { download, openStack, repoRoot, startRun, startWorker, testConfig, uniqueId, waitForRun, writeFixture, type Stack } from '../helpers/stack';

const exec = promisify(execFile);
const name = uniqueId('cust').replace(/-/g, '_');
// In a schema of its own: declarations name tables schema-qualified.
const table = `partner.${name}`;

/** A table of the test's own, as an organisation has them: no updated_at, a CHECK, a numeric, a boolean. */
const createTable = (pool: Pool) =>
  pool.query(`CREATE SCHEMA IF NOT EXISTS partner; CREATE TABLE ${table} (
    id bigserial PRIMARY KEY,
    code text NOT NULL UNIQUE,
    full_name text NOT NULL,
    phone text,
    joined date,
    credit numeric(10, 2) NOT NULL DEFAULT 0,
    vip boolean NOT NULL DEFAULT false,
    tier text NOT NULL DEFAULT 'basic' CHECK (tier IN ('basic', 'plus', 'pro')),
    closed_at timestamptz,
    note varchar(40),
    created_at timestamptz NOT NULL DEFAULT now()
  )`);

// The one YAML file a user writes for it.
const declaration = `
table: ${table}
description: Customers of a partner, keyed by their code.
key: [code]
columns:
  code:
    type: text
    required: true
    max: 20
    pattern: '^[A-Z]{2}-\\d{3}$'
    normalise: [trim, upper]
    description: Customer code such as AB-123.
    aliases: [customer code]
  full_name:
    type: text
    required: true
    normalise: [collapse_spaces, title]
    description: Full name.
    aliases: [name]
  phone:
    type: text
    normalise: [{phone: GB}]
    description: Phone, stored as E.164.
  joined:
    type: date
    normalise: [{date: [DD/MM/YYYY]}]
    description: When they joined.
  credit:
    type: decimal
    min: 0
    max: 99999999.99
    default: 0
    normalise: [decimal_comma]
    description: Credit in euros.
  vip:
    type: boolean
    default: false
    normalise: [yes_no]
    description: A VIP customer.
  tier:
    type: enum
    values: [basic, plus, pro]
    default: basic
    description: Price tier.
  closed_at:
    type: timestamp
    description: When the account was closed.
`;

async function declarationsDir(files: Record<string, string>): Promise<string> {
  const dir = await fs.mkdtemp(path.join(process.env.BATCHFLOW_TEST_TMP ?? os.tmpdir(), 'datasets-'));
  for (const [name, text] of Object.entries(files)) await fs.writeFile(path.join(dir, name), text);
  return dir;
}

const cli = (args: string[], env: Record<string, string>) =>
  exec(process.execPath, [path.join(repoRoot, 'bin/batchflow.js'), ...args], { cwd: repoRoot, env: { ...process.env, ...env } }).then(
    (r) => ({ code: 0, stdout: r.stdout, stderr: r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );

describe('a dataset declared in one YAML file, on a table the test creates', () => {
  let stack: Stack;
  let worker: Awaited<ReturnType<typeof startWorker>>;
  let datasets: string;
  before(async () => {
    const pool = createPool(process.env.DATABASE_URL!, 1);
    await createTable(pool);
    await pool.end();
    datasets = [shippedDatasetsDir, await declarationsDir({ [`${name}.yaml`]: declaration })].join(path.delimiter);
    stack = await openStack(testConfig({ BATCHFLOW_DATASETS: datasets }));
    worker = await startWorker(stack.config);
  });
  after(async () => {
    await worker.stop();
    await stack.close();
  });

  it('imports into it, normalising each column, with row errors that show the raw value', async () => {
    const csv = [
      'Customer Code,Name,phone,joined,credit,vip,tier',
      ' ab-101 ,ada   LOVELACE,020 7946 0958,31/12/2023,"1.234,50",yes,plus',
      'AB-102,Grace Hopper,+44 20 7946 0959,2024-02-29,"12,5",no,',
      'AB-103,Alan Turing,(020) 7946 0960,,,1,PRO',
      'AB-104,Bad Phone,12345,01/01/2024,0,no,basic',
      'XX1,Bad Code,,,,,',
      'AB-106,Bad Date,,31/02/2024,,,',
    ].join('\n');
    const runId = await startRun(stack, 'import', { source: await writeFixture('customers.csv', csv), dataset: name });
    const run = await waitForRun(stack, runId);
    assert.equal(run.status, 'partial', JSON.stringify(run.result?.error));
    assert.deepEqual([run.result!.counts.succeeded, run.result!.counts.failed], [3, 3]);
    const { rows } = await stack.pool.query(`SELECT code, full_name, phone, joined, credit, vip, tier FROM ${table} ORDER BY code`);
    assert.deepEqual(rows, [
      { code: 'AB-101', full_name: 'Ada Lovelace', phone: '+442079460958', joined: '2023-12-31', credit: 1234.5, vip: true, tier: 'plus' },
      { code: 'AB-102', full_name: 'Grace Hopper', phone: '+442079460959', joined: '2024-02-29', credit: 12.5, vip: false, tier: 'basic' },
      { code: 'AB-103', full_name: 'Alan Turing', phone: '+442079460960', joined: null, credit: 0, vip: true, tier: 'pro' },
    ]);
    const errors = (await stack.app.inject({ method: 'GET', url: `/runs/${runId}/errors` })).json<{ errors: { row: number; field: string; message: string; raw: Record<string, string> }[] }>().errors;
    assert.deepEqual(
      errors.map((e) => [e.row, e.field, e.message]),
      [
        [4, 'phone', 'must be a phone number (national numbers are read as GB)'],
        [5, 'code', 'must match ^[A-Z]{2}-\\d{3}$'],
        [6, 'joined', 'must be a date as YYYY-MM-DD or DD/MM/YYYY'],
      ],
    );
    assert.deepEqual([errors[0]!.raw.phone, errors[2]!.raw.joined], ['12345', '31/02/2024'], 'errors keep the raw value, not the normalised one');
  });

  it('normalises filter values as it does imported ones, and validate_data and dedupe run on it', async () => {
    const dry = await waitForRun(stack, await startRun(stack, 'bulk-update', { dataset: name, where: { field: 'phone', op: 'eq', value: '020 7946 0959' }, set: { tier: 'plus' }, dryRun: true }));
    assert.equal(dry.result!.preview!.matched, 1, 'the national number matched the stored E.164 one');
    const validated = await waitForRun(stack, await startRun(stack, 'custom', { step: 'validate_data', dataset: name }));
    assert.deepEqual([validated.status, validated.result!.counts.succeeded], ['success', 3]);
    const deduped = await waitForRun(stack, await startRun(stack, 'dedupe', { dataset: name, exact: ['full_name'] }));
    assert.deepEqual([deduped.status, deduped.result!.preview!.scanned, deduped.result!.preview!.groups], ['success', 3, 0]);
  });

  it('exports it (schema-qualified), filtered by a normalised value, as the stored values', async () => {
    const runId = await startRun(stack, 'export', { dataset: name, where: { field: 'phone', op: 'eq', value: '020 7946 0959' }, columns: ['code', 'phone', 'credit', 'vip'] });
    const run = await waitForRun(stack, runId);
    assert.equal(run.status, 'success', JSON.stringify(run.error ?? run.result?.error));
    // An E.164 phone begins with "+": in CSV, by default, it gets the leading ' that keeps spreadsheets from reading a formula.
    assert.equal((await download(stack, runId)).body.toString('utf8'), "code,phone,credit,vip\nAB-102,'+442079460959,12.50,false\n");
  });

  it('bulk-updates and cleans it up like any shipped dataset', async () => {
    const update = await waitForRun(stack, await startRun(stack, 'bulk-update', { dataset: name, where: { field: 'vip', op: 'eq', value: true }, set: { tier: 'pro', closed_at: 'now - 1 day' } }));
    assert.equal(update.status, 'success', JSON.stringify(update.result?.error));
    assert.equal(update.result!.counts.succeeded, 2);
    const cleanup = await waitForRun(
      stack,
      await startRun(stack, 'cleanup', { rules: [{ name: 'closed_customers', dataset: name, where: { field: 'closed_at', op: 'lt', value: 'now' } }] }),
    );
    assert.equal(cleanup.status, 'success', JSON.stringify(cleanup.result?.error));
    assert.equal(cleanup.result!.counts.succeeded, 2);
    const { rows } = await stack.pool.query(`SELECT code FROM ${table}`);
    assert.deepEqual(rows, [{ code: 'AB-102' }]);
  });

  it('names its columns when a param is wrong', async () => {
    const res = await stack.app.inject({ method: 'POST', url: '/runs', payload: { kind: 'bulk-update', params: { dataset: name, where: { field: 'tier', op: 'eq', value: 'gold' }, set: { vip: 'maybe' } } } });
    assert.equal(res.statusCode, 400);
    assert.deepEqual(
      res.json<{ issues: { field: string; message: string }[] }>().issues,
      [
        { field: 'params.where.value', message: 'must be one of basic, plus, pro' },
        { field: 'params.set.vip', message: 'must be true or false' },
      ],
    );
  });

  it('`datasets scaffold` drafts a declaration from the catalogue that compiles and matches the table', async () => {
    const out = await cli(['datasets', 'scaffold', table, '--out', '-'], { BATCHFLOW_DATASETS: datasets });
    assert.equal(out.code, 0, out.stderr);
    const drafted = YAML.parse(out.stdout) as DatasetDeclaration;
    assert.deepEqual([drafted.name, drafted.table, drafted.key, drafted.id, drafted.system], [name, table, ['code'], 'id', { id: 'integer', created_at: 'timestamp' }]);
    assert.deepEqual(drafted.columns.note, { type: 'text', description: 'TODO: describe note.', max: 40 });
    assert.deepEqual(drafted.columns.tier, { type: 'enum', values: ['basic', 'plus', 'pro'], description: 'TODO: describe tier.', default: 'basic' });
    assert.deepEqual(drafted.columns.credit, { type: 'decimal', description: 'TODO: describe credit.', max: 99999999.99, default: 0 });
    assert.deepEqual(drafted.columns.code, { type: 'text', description: 'TODO: describe code.', required: true });
    const checks = await checkDatasets(stack.pool, loadDatasets([await declarationsDir({ 'drafted.yaml': out.stdout })]));
    assert.deepEqual(checks.map((c) => [c.dataset, c.errors, c.warnings]), [[name, [], []]]);
    assert.equal(compileDeclaration(drafted).columnNames.length, 9);
    // Without --out it writes NAME.yaml in the first datasets directory, and will not overwrite it.
    const dir = await declarationsDir({});
    assert.equal((await cli(['datasets', 'scaffold', table], { BATCHFLOW_DATASETS: dir })).code, 0);
    assert.equal(await fs.readFile(path.join(dir, `${name}.yaml`), 'utf8'), out.stdout);
    assert.equal((await cli(['datasets', 'scaffold', table], { BATCHFLOW_DATASETS: dir })).code, 64);
  });
});

describe('declarations that do not match their tables', () => {
  const broken = `
table: ${table}
description: Wrong in three ways.
key: [full_name]
columns:
  full_name: {type: text, required: true, description: x}
  credit: {type: integer, description: x}
  email: {type: email, description: x}
`;

  it('stop the worker and the API at start, and `datasets check` exits 1, each naming every problem', async () => {
    const dir = await declarationsDir({ 'broken.yaml': broken });
    const config = testConfig({ BATCHFLOW_DATASETS: [shippedDatasetsDir, dir].join(path.delimiter) });
    const refused = await createWorker(config).then(
      () => assert.fail('the worker started'),
      (err: unknown) => err,
    );
    assert.ok(refused instanceof DatasetMismatchError);
    const message = refused.message;
    assert.match(message, new RegExp(`dataset broken \\(${dir.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}/broken.yaml\\):`));
    assert.match(message, /column credit is declared integer but is numeric\(10,2\) in table/);
    assert.match(message, /column email is not in table/);
    assert.match(message, /key \(full_name\) has no unique index on exactly those columns/);

    const { startApi } = await import('../../src/api/server');
    await assert.rejects(startApi(config, { logger: createLogger({ ...config.log, level: 'silent' }) }), DatasetMismatchError);

    const out = await cli(['datasets', 'check'], { BATCHFLOW_DATASETS: [shippedDatasetsDir, dir].join(path.delimiter) });
    assert.equal(out.code, 1);
    assert.match(out.stdout, /^ok {3}users → table users/m);
    assert.match(out.stdout, /^FAIL broken → table/m);
    assert.match(out.stdout, /error: column email is not in table/);
    assert.match(out.stdout, /warning: column credit is NOT NULL in the table but optional in the declaration/);
    assert.match(out.stdout, new RegExp(`1 of ${shipped.names.length + 1} datasets do not match their tables`));
  });

  it('a declaration that is not valid is refused with its file and path', async () => {
    const dir = await declarationsDir({ 'typo.yaml': `table: ${table}\ndescription: x\nkey: [code]\ncolumns:\n  code: {type: txt, required: true, description: x}\n  tier: {type: enum, values: [a], default: b, description: x, normalise: [phone]}\n` });
    assert.throws(() => loadDatasets([dir]), (err: Error) => {
      assert.match(err.message, /typo\.yaml: not a valid dataset declaration/);
      assert.match(err.message, /columns\.code\.type: /);
      return true;
    });
    const second = await declarationsDir({ 'typo.yaml': `table: ${table}\ndescription: x\nkey: [code]\ncolumns:\n  code: {type: text, required: true, description: x}\n  tier: {type: enum, values: [a], default: b, description: x, normalise: [phone]}\n` });
    assert.throws(() => loadDatasets([second]), (err: Error) => {
      assert.match(err.message, /columns\.tier\.normalise\.0: phone does not apply to a enum column/);
      assert.match(err.message, /columns\.tier\.default: must be one of the values \(a\)/);
      return true;
    });
  });
});
