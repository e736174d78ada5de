import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { parse } from 'csv-parse/sync';
import { AbortMultipartUploadCommand, HeadObjectCommand, ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import type { RunView } from '../../src/api/runs';
import { ErrorCode, permanentFailure } from '../../src/errors';
import { CHUNK_ROWS } from '../../src/activities/export';
import type { ExportPosition } from '../../src/jobs/export';
import { callGate, cancelMidway, download, historyText, openStack, ownUsers, seedUsers, startRun, startWorkerWith, storedCheckpoint, testConfig, uniqueId, useStackWithWorker, waitForRun, type Stack } from '../helpers/stack';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function exportRun(stack: Stack, params: object, runId?: string): Promise<RunView> {
  return waitForRun(stack, await startRun(stack, 'export', params, runId));
}

/** An export that must succeed, and its file as downloaded (checked against the result's SHA-256 and size). */
async function exported(stack: Stack, params: object): Promise<{ run: RunView; file: Buffer }> {
  const run = await exportRun(stack, params);
  assert.equal(run.status, 'success', JSON.stringify(run.error ?? run.result?.error));
  const { status, body } = await download(stack, run.runId);
  assert.equal(status, 200);
  const output = run.result!.outputs[0]!;
  assert.equal(sha256(body), output.sha256, 'the result names the SHA-256 of the file');
  assert.equal(body.length, output.bytes);
  return { run, file: body };
}

/** Users with the values an export must carry exactly: quotes, line breaks, non-ASCII, NULLs, formulas. */
async function seedTrickyUsers(stack: Stack, p: string): Promise<void> {
  await stack.pool.query(
    `INSERT INTO users (email, name, role, status, signup_date, last_login_at, deleted_at) VALUES
     ($1 || '.1@example.com', 'Ada "the first" Lovelace', 'admin', 'active', '2024-02-29', '2024-05-01T10:00:00.123456Z', NULL),
     ($1 || '.2@example.com', E'Multi\\nLine, with comma', 'user', 'pending', NULL, NULL, NULL),
     ($1 || '.3@example.com', 'Zoë 東京 🙂', 'moderator', 'inactive', '1999-12-31', '2024-01-01T00:00:00Z', '2024-06-30T23:59:59.5Z'),
     ($1 || '.4@example.com', '=HYPERLINK("http://x")', 'user', 'active', NULL, NULL, NULL),
     ($1 || '.5@example.com', E'\\tTabbed', 'user', 'active', NULL, NULL, NULL),
     ($1 || '.6@example.com', '-5 apples', 'user', 'active', NULL, NULL, NULL),
     ($1 || '.7@example.com', '@SUM(A1)', 'user', 'active', NULL, NULL, NULL),
     ($1 || '.8@example.com', '+1 555', 'user', 'active', NULL, NULL, NULL),
     ($1 || '.9@example.com', E'\nLF first', 'user', 'active', NULL, NULL, NULL)`,
    [p],
  );
}

const trickyColumns = ['email', 'name', 'status', 'signup_date', 'last_login_at', 'deleted_at'];

const trickyRecords = (p: string) => [
  { email: `${p}.1@example.com`, name: 'Ada "the first" Lovelace', status: 'active', signup_date: '2024-02-29', last_login_at: '2024-05-01T10:00:00.123456+00:00', deleted_at: null },
  { email: `${p}.2@example.com`, name: 'Multi\nLine, with comma', status: 'pending', signup_date: null, last_login_at: null, deleted_at: null },
  { email: `${p}.3@example.com`, name: 'Zoë 東京 🙂', status: 'inactive', signup_date: '1999-12-31', last_login_at: '2024-01-01T00:00:00+00:00', deleted_at: '2024-06-30T23:59:59.5+00:00' },
  { email: `${p}.4@example.com`, name: '=HYPERLINK("http://x")', status: 'active', signup_date: null, last_login_at: null, deleted_at: null },
  { email: `${p}.5@example.com`, name: '\tTabbed', status: 'active', signup_date: null, last_login_at: null, deleted_at: null },
  { email: `${p}.6@example.com`, name: '-5 apples', status: 'active', signup_date: null, last_login_at: null, deleted_at: null },
  { email: `${p}.7@example.com`, name: '@SUM(A1)', status: 'active', signup_date: null, last_login_at: null, deleted_at: null },
  { email: `${p}.8@example.com`, name: '+1 555', status: 'active', signup_date: null, last_login_at: null, deleted_at: null },
  { email: `${p}.9@example.com`, name: '\nLF first', status: 'active', signup_date: null, last_login_at: null, deleted_at: null },
];

/** The multipart uploads still open under a key (none once a run has ended). */
async function openUploads(stack: Stack, key: string): Promise<number> {
  const { client, bucket } = stack.objects.s3!;
  const listed = await client.send(new ListMultipartUploadsCommand({ Bucket: bucket, Prefix: key }));
  return (listed.Uploads ?? []).filter((u) => u.Key === key).length;
}

async function objectExists(stack: Stack, key: string): Promise<boolean> {
  const { client, bucket } = stack.objects.s3!;
  return client.send(new HeadObjectCommand({ Bucket: bucket, Key: key })).then(
    () => true,
    (err: { name?: string }) => {
      if (err.name === 'NotFound') return false;
      throw err;
    },
  );
}

describe('export flow on the real stack (MinIO)', () => {
  const fixture = useStackWithWorker();

  it('CSV: quotes, line breaks, non-ASCII, NULLs as empty cells, ISO dates and timestamps, formulas neutralised, in id order', async () => {
    const p = uniqueId('csv');
    await seedTrickyUsers(fixture.stack, p);
    const { run, file } = await exported(fixture.stack, { dataset: 'users', where: ownUsers(p), columns: trickyColumns });
    assert.deepEqual(run.result!.counts, { processed: 9, succeeded: 9, failed: 0, skipped: 0, total: 9 });
    const output = run.result!.outputs[0]!;
    assert.equal(output.contentType, 'text/csv; charset=utf-8');
    assert.equal(output.rows, 9);
    assert.equal(output.location, `store://exports/${run.runId}.csv`);
    assert.equal(
      file.toString('utf8'),
      [
        'email,name,status,signup_date,last_login_at,deleted_at',
        `${p}.1@example.com,"Ada ""the first"" Lovelace",active,2024-02-29,2024-05-01T10:00:00.123456+00:00,`,
        `${p}.2@example.com,"Multi\nLine, with comma",pending,,,`,
        `${p}.3@example.com,Zoë 東京 🙂,inactive,1999-12-31,2024-01-01T00:00:00+00:00,2024-06-30T23:59:59.5+00:00`,
        `${p}.4@example.com,"'=HYPERLINK(""http://x"")",active,,,`,
        `${p}.5@example.com,'\tTabbed,active,,,`,
        `${p}.6@example.com,'-5 apples,active,,,`,
        `${p}.7@example.com,'@SUM(A1),active,,,`,
        `${p}.8@example.com,'+1 555,active,,,`,
        `${p}.9@example.com,"'\nLF first",active,,,`,
        '',
      ].join('\n'),
    );
  });

  it('CSV with csvFormulaEscape: false writes text as it is; numbers are never altered', async () => {
    const p = uniqueId('raw');
    await seedTrickyUsers(fixture.stack, p);
    const { file } = await exported(fixture.stack, { dataset: 'users', where: ownUsers(p), columns: ['email', 'name'], csvFormulaEscape: false });
    assert.deepEqual(
      parse(file),
      [['email', 'name'], ...trickyRecords(p).map((r) => [r.email, r.name])],
    );

    const sku = uniqueId('num');
    await fixture.stack.pool.query(
      `INSERT INTO products (sku, name, price, category, stock) VALUES ($1 || '-a', '-negative name', 9999999999.99, NULL, 0), ($1 || '-b', 'b', 0.01, '+cat', 7), ($1 || '-c', 'c', 12.50, '=cat', 2147483647)`,
      [sku],
    );
    const { file: products } = await exported(fixture.stack, { dataset: 'products', where: { field: 'sku', op: 'starts_with', value: sku }, columns: ['sku', 'name', 'price', 'category', 'stock'] });
    assert.equal(
      products.toString('utf8'),
      ['sku,name,price,category,stock', `${sku}-a,'-negative name,9999999999.99,,0`, `${sku}-b,b,0.01,'+cat,7`, `${sku}-c,c,12.50,'=cat,2147483647`, ''].join('\n'),
    );
  });

  it('NDJSON and JSON: one object per row, exact values, null for NULL; gzip unpacks to the same bytes', async () => {
    const p = uniqueId('json');
    await seedTrickyUsers(fixture.stack, p);
    const params = { dataset: 'users', where: ownUsers(p), columns: trickyColumns };
    const { run: ndjsonRun, file: ndjson } = await exported(fixture.stack, { ...params, format: 'ndjson' });
    assert.equal(ndjsonRun.result!.outputs[0]!.contentType, 'application/x-ndjson');
    const lines = ndjson.toString('utf8').split('\n');
    assert.equal(lines.pop(), '', 'every line ends with a newline');
    assert.deepEqual(lines.map((l) => JSON.parse(l) as unknown), trickyRecords(p));
    assert.ok(lines[2]!.includes('"name":"Zoë 東京 🙂"'), 'non-ASCII text is written as UTF-8');

    const { run: jsonRun, file: json } = await exported(fixture.stack, { ...params, format: 'json' });
    assert.equal(jsonRun.result!.outputs[0]!.contentType, 'application/json');
    assert.deepEqual(JSON.parse(json.toString('utf8')), trickyRecords(p));
    assert.equal(json.toString('utf8'), `[\n${lines.join(',\n')}\n]\n`);

    for (const format of ['csv', 'ndjson', 'json'] as const) {
      const { run: plainRun, file: plain } = await exported(fixture.stack, { ...params, format });
      const { run: zipped, file: gz } = await exported(fixture.stack, { ...params, format, gzip: true });
      assert.equal(zipped.result!.outputs[0]!.contentType, 'application/gzip');
      assert.match(zipped.result!.outputs[0]!.location, new RegExp(`\\.${format}\\.gz$`));
      assert.deepEqual(gunzipSync(gz), plain, `${format}: gunzip gives the uncompressed export (${plainRun.runId})`);
      assert.deepEqual(execFileSync('gzip', ['-dc'], { input: gz }), plain, `${format}: so does the gzip command`);
    }

    const sku = uniqueId('njs');
    await fixture.stack.pool.query(`INSERT INTO products (sku, name, price) VALUES ($1, 'n', 12.50), ($1 || 'x', 'm', 9999999999.99)`, [sku]);
    const { file: products } = await exported(fixture.stack, { dataset: 'products', where: { field: 'sku', op: 'starts_with', value: sku }, columns: ['sku', 'price', 'category'], format: 'ndjson' });
    assert.equal(products.toString('utf8'), `{"sku":"${sku}","price":12.50,"category":null}\n{"sku":"${sku}x","price":9999999999.99,"category":null}\n`, 'numerics exactly as stored');
  });

  it('an export with no matching rows is a valid empty file in every format', async () => {
    const where = { field: 'email', op: 'eq', value: `${uniqueId('none')}@example.com` };
    const expected = { csv: 'email,name\n', ndjson: '', json: '[\n]\n' };
    for (const format of ['csv', 'ndjson', 'json'] as const) {
      const { run, file } = await exported(fixture.stack, { dataset: 'users', where, columns: ['email', 'name'], format });
      assert.equal(file.toString('utf8'), expected[format], format);
      assert.equal(run.result!.outputs[0]!.rows, 0);
      const { file: gz } = await exported(fixture.stack, { dataset: 'users', where, columns: ['email', 'name'], format, gzip: true });
      assert.equal(gunzipSync(gz).toString('utf8'), expected[format], `${format}.gz`);
    }
  });

  it('many chunks and parts: a filter and a column list, rows in id order, parts over 5 MiB, gzip members joined', async () => {
    const p = uniqueId('big');
    const rows = 60_000;
    const ids = await seedUsers(fixture.stack.pool, p, rows);
    // Every third user is pending (seedUsers cycles statuses).
    const where = { and: [ownUsers(p), { field: 'status', op: 'in', value: ['pending'] }, { field: 'created_at', op: 'lte', value: 'now' }] };
    const { file } = await exported(fixture.stack, { dataset: 'users', where, columns: ['id', 'status', 'email'], partSizeMb: 5 });
    const lines = file.toString('utf8').trimEnd().split('\n');
    assert.equal(lines[0], 'id,status,email');
    const { rows: expected } = await fixture.stack.pool.query<{ id: number; email: string }>("SELECT id, email FROM users WHERE email LIKE $1 AND status = 'pending' ORDER BY id", [`${p}.%`]);
    assert.equal(lines.length - 1, expected.length);
    assert.deepEqual(lines.slice(1), expected.map((r) => `${r.id},pending,${r.email}`));

    // All columns of every row: more than one 5 MiB part, more chunks than one.
    assert.ok(rows > 2 * CHUNK_ROWS);
    const all = await exported(fixture.stack, { dataset: 'users', where: ownUsers(p), partSizeMb: 5 });
    assert.ok(all.file.length > 5 * 1024 * 1024, `${all.file.length} bytes: several parts`);
    const allLines = all.file.toString('utf8').trimEnd().split('\n');
    assert.equal(allLines[0], 'id,email,name,role,status,signup_date,last_login_at,deleted_at,created_at,updated_at');
    assert.deepEqual(allLines.slice(1).map((l) => Number(l.split(',')[0])), ids, 'every row once, in id order');
    const zipped = await exported(fixture.stack, { dataset: 'users', where: ownUsers(p), partSizeMb: 5, gzip: true });
    assert.deepEqual(gunzipSync(zipped.file), all.file);
    assert.deepEqual(execFileSync('gzip', ['-dc'], { input: zipped.file, maxBuffer: 64 * 1024 * 1024 }), all.file, 'one gzip member per chunk: the gzip command reads them as one file');
  });

  it('refuses unknown and secret columns; includeSecrets needs the admin scope', async () => {
    const bad = async (params: object) => (await fixture.stack.app.inject({ method: 'POST', url: '/runs', payload: { kind: 'export', params } })).json<{ field: string; message: string }>();
    assert.equal((await bad({ dataset: 'users', columns: ['email', 'password'] })).field, 'params.columns.1');
    assert.match((await bad({ dataset: 'sessions', columns: ['token'] })).message, /secret column/);
    assert.equal((await bad({ dataset: 'users', colums: ['email'] })).field, 'params.colums');
    assert.equal((await bad({ dataset: 'users', destination: 'file:///etc/passwd' })).field, 'params.destination');
    const secrets = { method: 'POST' as const, url: '/runs', payload: { kind: 'export', params: { dataset: 'sessions', includeSecrets: true } } };
    const res = await fixture.stack.injectAs(await fixture.stack.createKey(uniqueId('runner'), ['read', 'run']), secrets);
    assert.equal(res.statusCode, 403);
    assert.equal(res.json<{ field: string }>().field, 'params.includeSecrets');
  });

  it('secret columns are left out by default, and written when a run asks for them', async () => {
    const p = uniqueId('sec');
    const [userId] = await seedUsers(fixture.stack.pool, p, 1);
    await fixture.stack.pool.query("INSERT INTO sessions (user_id, token, expires_at) VALUES ($1, $2, now() + interval '1 day')", [userId, `${p}-token`]);
    const where = { field: 'user_id', op: 'eq', value: userId };
    const { file } = await exported(fixture.stack, { dataset: 'sessions', where, format: 'ndjson' });
    const row = JSON.parse(file.toString('utf8')) as Record<string, unknown>;
    assert.deepEqual(Object.keys(row), ['id', 'user_id', 'expires_at', 'created_at', 'updated_at']);
    // An admin may ask for them (the test's own key is an admin key).
    const run = await waitForRun(fixture.stack, await startRun(fixture.stack, 'export', { dataset: 'sessions', where, format: 'ndjson', includeSecrets: true }));
    const withSecrets = JSON.parse((await download(fixture.stack, run.runId)).body.toString('utf8')) as Record<string, unknown>;
    assert.equal(withSecrets.token, `${p}-token`);
  });

  it('destinations: a key or store:// in the object store, an allowed s3:// bucket; other buckets are refused', async () => {
    const p = uniqueId('dest');
    await seedUsers(fixture.stack.pool, p, 3);
    const { bucket } = fixture.stack.objects.s3!;
    const key = `exports/${p}/users.csv`;
    for (const destination of [key, `store://${key}`, `s3://${bucket}/${key}`]) {
      const { run } = await exported(fixture.stack, { dataset: 'users', where: ownUsers(p), destination });
      assert.equal(run.result!.outputs[0]!.location, destination.startsWith('s3://') ? destination : `store://${key}`);
    }
    const refused = await exportRun(fixture.stack, { dataset: 'users', where: ownUsers(p), destination: `s3://not-${bucket}/x.csv` });
    assert.equal(refused.status, 'failed');
    assert.equal(refused.error?.code, ErrorCode.DestinationNotAllowed);
    assert.equal((await fixture.stack.app.inject({ method: 'GET', url: `/runs/${refused.runId}/download` })).statusCode, 404);
  });

  it('download: a redirect to a presigned URL on S3, or the bytes with redirect=false; 404 for runs without a file', async () => {
    const p = uniqueId('dl');
    await seedUsers(fixture.stack.pool, p, 3);
    const { run, file } = await exported(fixture.stack, { dataset: 'users', where: ownUsers(p), destination: `exports/${p}/naïve name.csv` });
    const redirect = await fixture.stack.app.inject({ method: 'GET', url: `/runs/${run.runId}/download` });
    assert.equal(redirect.statusCode, 302);
    const spec = (await fixture.stack.app.inject({ method: 'GET', url: '/openapi.json' })).json<{ paths: Record<string, { get: { responses: Record<string, unknown> } }> }>();
    assert.ok(spec.paths['/runs/{id}/download']?.get.responses['302'], 'the route is in the OpenAPI document');
    assert.match(redirect.headers.location as string, /X-Amz-Expires=300/);
    const viaS3 = await download(fixture.stack, run.runId);
    assert.match(String(viaS3.headers['content-disposition']), /attachment; filename="na_ve name.csv"; filename\*=UTF-8''na%C3%AFve%20name.csv/);
    const streamed = await fixture.stack.app.inject({ method: 'GET', url: `/runs/${run.runId}/download?redirect=false` });
    assert.equal(streamed.statusCode, 200);
    assert.equal(streamed.headers['content-type'], 'text/csv; charset=utf-8');
    assert.deepEqual(streamed.rawPayload, file);

    const importRun = await waitForRun(fixture.stack, await startRun(fixture.stack, 'import', { source: run.result!.outputs[0]!.location, format: 'csv', dataset: 'users' }));
    const none = await fixture.stack.app.inject({ method: 'GET', url: `/runs/${importRun.runId}/download` });
    assert.equal(none.statusCode, 404);
    assert.equal((await fixture.stack.app.inject({ method: 'GET', url: '/runs/no-such-run/download' })).statusCode, 404);
  });

  it('round trip: an export imported (upsert) into an emptied table gives the same rows, for every format', async () => {
    for (const format of ['csv', 'ndjson', 'json'] as const) {
      const p = uniqueId(`rt-${format}`);
      await seedTrickyUsers(fixture.stack, p);
      // Imports trim text: a value they could have written has no space or tab at either end.
      await fixture.stack.pool.query("UPDATE users SET name = E'Tab\\tinside' WHERE email = $1", [`${p}.5@example.com`]);
      await fixture.stack.pool.query("UPDATE users SET name = E'LF\\ninside' WHERE email = $1", [`${p}.9@example.com`]);
      const sku = uniqueId(`rtp-${format}`);
      await fixture.stack.pool.query(`INSERT INTO products (sku, name, price, category, stock) VALUES ($1 || '-a', 'Å "b", c', 9999999999.99, NULL, 0), ($1 || '-b', E'two\\nlines', 0.01, 'tools', 12)`, [sku]);
      const users = { dataset: 'users', where: ownUsers(p), format, csvFormulaEscape: false };
      const products = { dataset: 'products', where: { field: 'sku', op: 'starts_with', value: sku }, format };
      const read = async () => ({
        users: (await fixture.stack.pool.query('SELECT email, name, role, status, signup_date, last_login_at::text, deleted_at::text FROM users WHERE email LIKE $1 ORDER BY email', [`${p}.%`])).rows,
        products: (await fixture.stack.pool.query('SELECT sku, name, price::text, category, stock FROM products WHERE sku LIKE $1 ORDER BY sku', [`${sku}%`])).rows,
      });
      const before = await read();
      const exports = [await exported(fixture.stack, users), await exported(fixture.stack, products)];
      await fixture.stack.pool.query('DELETE FROM users WHERE email LIKE $1', [`${p}.%`]);
      await fixture.stack.pool.query('DELETE FROM products WHERE sku LIKE $1', [`${sku}%`]);
      for (const [i, dataset] of ['users', 'products'].entries()) {
        const imported = await waitForRun(fixture.stack, await startRun(fixture.stack, 'import', { source: exports[i]!.run.result!.outputs[0]!.location, format, dataset, mode: 'upsert' }));
        assert.equal(imported.status, 'success', `${format} ${dataset}: ${JSON.stringify(imported.result?.errorSample ?? imported.error)}`);
      }
      assert.deepEqual(await read(), before, format);
    }
  });

  it('workflow history holds no row values', async () => {
    const p = uniqueId('hist');
    const marker = `MARKER-${p}`;
    await fixture.stack.pool.query("INSERT INTO users (email, name) VALUES ($1, $2)", [`${p}.1@example.com`, marker]);
    for (const format of ['csv', 'json'] as const) {
      const { run, file } = await exported(fixture.stack, { dataset: 'users', where: ownUsers(p), format, gzip: format === 'json' });
      if (format === 'csv') assert.ok(file.toString('utf8').includes(marker), 'the marker is in the file');
      assert.ok(!(await historyText(fixture.stack.client, run.runId)).includes(marker), `${format}: the marker is not in the run's history`);
    }
  });

});

describe('exports whose slices the test holds back or fails', () => {
  let stack: Stack;
  let worker: Awaited<ReturnType<typeof startWorkerWith>>;
  /** Runs before each export slice. */
  let beforeSlice: (runId: string) => Promise<void> = () => Promise.resolve();
  /** Set: a slice fails for good once it has uploaded its parts. */
  let failAfterSlice = false;
  before(async () => {
    // Slices of one part each: a run of a few parts takes a few slices.
    stack = await openStack(testConfig({ BATCHFLOW_SLICE_SECONDS: '0.001' }));
    worker = await startWorkerWith(stack.config, (activities) => ({
      async exportSlice(input: Parameters<typeof activities.exportSlice>[0]) {
        await beforeSlice(input.run.id);
        const checkpoint = await activities.exportSlice(input);
        if (failAfterSlice) throw permanentFailure(ErrorCode.RunFailed, 'injected failure after the parts were uploaded');
        return checkpoint;
      },
    }));
  });
  after(async () => {
    await worker.stop();
    await stack.close();
  });

  it('a cancelled export leaves no object and no open upload', async () => {
    const p = uniqueId('cancel');
    await seedUsers(stack.pool, p, 100_000);
    const key = `exports/${p}.csv`;
    const gate = callGate(2);
    beforeSlice = () => gate.pass();
    try {
      const runId = await startRun(stack, 'export', { dataset: 'users', where: ownUsers(p), destination: key, partSizeMb: 5 });
      const run = await cancelMidway(stack, runId, gate, async () => assert.equal(await openUploads(stack, key), 1, 'the upload is open while the run writes'));
      assert.equal(run.status, 'cancelled');
      assert.ok(run.result!.counts.processed < 100_000, `cancelled before the end (${run.result!.counts.processed} rows written)`);
      assert.equal(await objectExists(stack, key), false);
      assert.equal(await openUploads(stack, key), 0);
      assert.equal((await stack.app.inject({ method: 'GET', url: `/runs/${runId}/download` })).statusCode, 404);
    } finally {
      beforeSlice = () => Promise.resolve();
    }
  });

  it('rows are those up to the highest id that matched when the run started', async () => {
    const p = uniqueId('fixed');
    await seedUsers(stack.pool, p, 30);
    const gate = callGate(1);
    beforeSlice = () => gate.pass();
    try {
      const runId = await startRun(stack, 'export', { dataset: 'users', where: ownUsers(p), columns: ['email', 'name'] });
      await waitForRun(stack, runId, (r) => r.progress?.step === 'exporting');
      // Added after the run planned: past its highest id, so not exported though they match.
      await stack.pool.query("INSERT INTO users (email, name) SELECT $1 || '.late' || g || '@example.com', 'Late' FROM generate_series(1, 5) g", [p]);
      // Rows within the set are written as they are when the run reads them: changed, or gone.
      await stack.pool.query("UPDATE users SET name = 'Changed' WHERE email = $1", [`${p}.1@example.com`]);
      await stack.pool.query('DELETE FROM users WHERE email = $1', [`${p}.2@example.com`]);
      // And one that no longer matches the filter is left out.
      await stack.pool.query("UPDATE users SET email = 'moved-' || email WHERE email = $1", [`${p}.3@example.com`]);
      gate.release();
      const run = await waitForRun(stack, runId);
      assert.equal(run.status, 'success', JSON.stringify(run.error ?? run.result));
      assert.equal(run.result!.outputs[0]!.rows, 28);
      assert.equal(run.result!.counts.total, 30, 'the total is what matched when the run started');
      const lines = (await download(stack, runId)).body.toString('utf8').trimEnd().split('\n');
      assert.equal(lines.length, 29);
      assert.ok(lines.includes(`${p}.1@example.com,Changed`));
      assert.ok(!lines.some((l) => l.startsWith(`${p}.2@`) || l.includes(`${p}.3@`) || l.includes('.late')));
    } finally {
      beforeSlice = () => Promise.resolve();
    }
  });

  it('a failure leaves no object and no open multipart upload', async () => {
    const p = uniqueId('fail');
    await seedUsers(stack.pool, p, 40_000);
    const key = `exports/${p}.csv`;
    failAfterSlice = true;
    try {
      const runId = await startRun(stack, 'export', { dataset: 'users', where: ownUsers(p), destination: key, partSizeMb: 5 });
      const run = await waitForRun(stack, runId);
      assert.equal(run.status, 'failed');
      assert.equal(run.error?.code, ErrorCode.RunFailed);
      const parts = (await storedCheckpoint<ExportPosition>(stack.pool, runId))!.position.parts.length;
      assert.ok(parts >= 1, `${parts} part(s) were uploaded before the failure`);
      assert.equal(await objectExists(stack, key), false);
      assert.equal(await openUploads(stack, key), 0);
    } finally {
      failAfterSlice = false;
    }
  });

  it('a retry checks its parts first: when the upload is gone, the run fails (UPLOAD_LOST) and leaves no object', async () => {
    const p = uniqueId('lost');
    await seedUsers(stack.pool, p, 40_000);
    const key = `exports/${p}.csv`;
    const { client, bucket } = stack.objects.s3!;
    let slices = 0;
    beforeSlice = async (runId) => {
      // Before the second slice, somebody aborts the upload (a lifecycle rule, an operator).
      if (++slices !== 2) return;
      const upload = (await storedCheckpoint<ExportPosition>(stack.pool, runId))!.position.uploadId;
      await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId: upload }));
    };
    try {
      const run = await waitForRun(stack, await startRun(stack, 'export', { dataset: 'users', where: ownUsers(p), destination: key, partSizeMb: 5 }));
      assert.equal(run.status, 'failed');
      assert.equal(run.error?.code, ErrorCode.UploadLost);
      assert.equal(await objectExists(stack, key), false);
      assert.equal(await openUploads(stack, key), 0);
    } finally {
      beforeSlice = () => Promise.resolve();
    }
  });
});
