import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { createS3Client } from '../../src/storage';
import { countUsers, getRun, startRun, uniqueId, usersCsv, waitForRun, useStackWithWorker, writeFixture } from '../helpers/stack';

describe('import flow on the real stack', () => {
  const fixture = useStackWithWorker();

  const importFile = async (file: string, params: object = {}) => {
    const runId = await startRun(fixture.stack, 'import', { source: file, dataset: 'users', ...params });
    return waitForRun(fixture.stack, runId);
  };

  it('imports a clean CSV with quotes, embedded newlines, CRLF and a BOM', async () => {
    const p = uniqueId('clean');
    const csv = `\uFEFFemail,name,role,status,signup_date\r\n${p}.1@example.com,"Lovelace, Ada",admin,active,2024-01-02\r\n${p}.2@example.com,"Multi\r\nLine",user,pending,\r\n${p}.3@Example.COM,Zoë,,,2023-12-31\r\n`;
    const run = await importFile(await writeFixture('clean.csv', csv));
    assert.equal(run.status, 'success', JSON.stringify(run));
    assert.deepEqual(
      { processed: run.result!.counts.processed, succeeded: run.result!.counts.succeeded, failed: run.result!.counts.failed, inserted: run.result!.counts.inserted },
      { processed: 3, succeeded: 3, failed: 0, inserted: 3 },
    );
    const { rows } = await fixture.stack.pool.query('SELECT email, name, role, status, signup_date FROM users WHERE email LIKE $1 ORDER BY email', [`${p}.%`]);
    assert.deepEqual(rows, [
      { email: `${p}.1@example.com`, name: 'Lovelace, Ada', role: 'admin', status: 'active', signup_date: '2024-01-02' },
      { email: `${p}.2@example.com`, name: 'Multi\r\nLine', role: 'user', status: 'pending', signup_date: null },
      { email: `${p}.3@example.com`, name: 'Zoë', role: 'user', status: 'active', signup_date: '2023-12-31' },
    ]);
  });

  it('loads the good rows of a file with bad rows and reports each bad row with its line', async () => {
    const p = uniqueId('bad');
    const csv = [
      'email,name,role,status,signup_date',
      `${p}.1@example.com,Good One,user,active,2024-01-01`,
      `not-an-email,Bad Email,user,active,2024-01-01`,
      `${p}.2@example.com,Bad Role,superuser,active,2024-01-01`,
      `${p}.3@example.com,"Quoted`,
      `newline",user,active,2024-02-30`,
      `${p}.4@example.com,Good Four,moderator,inactive,`,
      `${p}.1@example.com,Duplicate of row 1,user,active,2024-01-01`,
      `${p}.5@example.com,Too,many,columns,here,extra`,
    ].join('\n');
    const run = await importFile(await writeFixture('bad.csv', csv));
    assert.equal(run.status, 'partial');
    assert.equal(run.result!.counts.succeeded, 2);
    assert.equal(run.result!.counts.failed, 5);
    assert.equal(await countUsers(fixture.stack.pool, p), 2);

    const res = await fixture.stack.app.inject({ method: 'GET', url: `/runs/${run.runId}/errors` });
    assert.equal(res.statusCode, 200);
    const errors = res.json<{ errors: { row: number; line: number; field: string | null; code: string; message: string; raw: unknown }[] }>().errors;
    const summary = errors.map((e) => [e.row, e.line, e.field, e.code]);
    assert.deepEqual(summary, [
      [2, 3, 'email', 'VALIDATION_FAILED'],
      [3, 4, 'role', 'VALIDATION_FAILED'],
      [4, 5, 'signup_date', 'VALIDATION_FAILED'],
      [6, 8, 'email', 'DUPLICATE_KEY'],
      [7, 9, null, 'COLUMN_COUNT'],
    ]);
    assert.match(errors[1]!.message, /user, admin, moderator/);
    assert.deepEqual(errors[0]!.raw, { email: 'not-an-email', name: 'Bad Email', role: 'user', status: 'active', signup_date: '2024-01-01' });

    const csvReport = await fixture.stack.app.inject({ method: 'GET', url: `/runs/${run.runId}/errors?format=csv` });
    assert.equal(csvReport.body.trim().split('\n').length, 6, 'header plus one line per error');
  });

  it('a key repeated in a later batch is a row error naming where it was first seen, in every mode', async () => {
    for (const mode of ['upsert', 'insert', 'skip-existing'] as const) {
      const p = uniqueId(`rep-${mode}`);
      const csv = ['email,name,role,status,signup_date', `${p}.1@example.com,First,user,active,`, `${p}.2@example.com,Second,user,active,`, `${p}.1@example.com,Again,admin,inactive,`].join('\n');
      const run = await importFile(await writeFixture('repeat.csv', csv), { mode, batchSize: 1 });
      assert.equal(run.status, 'partial', mode);
      const errors = (await fixture.stack.app.inject({ method: 'GET', url: `/runs/${run.runId}/errors` })).json<{ errors: { row: number; line: number; code: string; message: string; raw: { name?: string } }[] }>().errors;
      assert.deepEqual(errors.map((e) => [e.row, e.line, e.code]), [[3, 4, 'DUPLICATE_KEY']], mode);
      assert.match(errors[0]!.message, /first seen (on row 1|in rows 1-1)/, mode);
      assert.equal(errors[0]!.raw.name, 'Again', `${mode}: the rejected row's values are reported`);
      const { rows } = await fixture.stack.pool.query<{ name: string }>('SELECT name FROM users WHERE email = $1', [`${p}.1@example.com`]);
      assert.deepEqual(rows, [{ name: 'First' }], `${mode}: the first row is not overwritten`);
    }
  });

  it('with batches loading side by side, repeats in the next batch or further on keep the first row, in every mode', async () => {
    for (const mode of ['upsert', 'insert', 'skip-existing'] as const) {
      const p = uniqueId(`par-${mode}`);
      // Batches of two: rows 3 and 4 repeat keys of the batch before, row 6 one of two batches before.
      const keys = ['a', 'b', 'a', 'c', 'd', 'b', 'c', 'e'];
      const csv = ['email,name', ...keys.map((k, i) => `${p}.${k}@example.com,${k} on row ${i + 1}`)].join('\n');
      const run = await importFile(await writeFixture('parallel.csv', csv), { mode, batchSize: 2 });
      assert.deepEqual([run.status, run.result!.counts.inserted, run.result!.counts.failed], ['partial', 5, 3], mode);
      const errors = (await fixture.stack.app.inject({ method: 'GET', url: `/runs/${run.runId}/errors` })).json<{ errors: { row: number; code: string }[] }>().errors;
      assert.deepEqual(errors.map((e) => [e.row, e.code]), [[3, 'DUPLICATE_KEY'], [6, 'DUPLICATE_KEY'], [7, 'DUPLICATE_KEY']], mode);
      const { rows } = await fixture.stack.pool.query<{ name: string }>('SELECT name FROM users WHERE email LIKE $1 ORDER BY email', [`${p}.%`]);
      assert.deepEqual(rows.map((r) => r.name), ['a on row 1', 'b on row 2', 'c on row 4', 'd on row 5', 'e on row 8'], mode);
    }
  });

  it('a row the database refuses for good fails the run at once, saying where and why; earlier batches stay', async () => {
    const p = uniqueId('dbrefuse');
    // A trigger stands in for any rule of the database that the dataset does not declare.
    const fn = `refuse_${p.replace(/-/g, '_')}`;
    const pool = fixture.stack.pool;
    await pool.query(`CREATE FUNCTION ${fn}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'no % here', NEW.email; END $$`);
    await pool.query(`CREATE TRIGGER ${fn} BEFORE INSERT ON users FOR EACH ROW WHEN (NEW.email = '${p}.7@example.com') EXECUTE FUNCTION ${fn}()`);
    try {
      const run = await importFile(await writeFixture('refused.csv', usersCsv(p, 20)), { batchSize: 5 });
      assert.equal(run.status, 'failed');
      assert.equal(run.error?.code, 'BATCH_FAILED');
      assert.match(run.error.message, new RegExp(`refused the batch of rows 6-10: no ${p}\\.7@example\\.com here`));
      assert.equal(await countUsers(pool, p), 5, 'the batch before it is loaded; the batch beside it is rolled back');
    } finally {
      await pool.query(`DROP TRIGGER ${fn} ON users; DROP FUNCTION ${fn}()`);
    }
  });

  it('re-importing the same file with upsert duplicates nothing and counts updates', async () => {
    const p = uniqueId('again');
    const file = await writeFixture('again.csv', usersCsv(p, 2500));
    const first = await importFile(file, { mode: 'upsert', batchSize: 1000 });
    const second = await importFile(file, { mode: 'upsert', batchSize: 1000 });
    assert.equal(first.result!.counts.inserted, 2500);
    assert.equal(second.status, 'success');
    assert.equal(second.result!.counts.inserted, 0);
    assert.equal(second.result!.counts.updated, 2500);
    assert.equal(await countUsers(fixture.stack.pool, p), 2500);
  });

  it('skip-existing skips present keys and insert reports them', async () => {
    const p = uniqueId('modes');
    await importFile(await writeFixture('base.csv', usersCsv(p, 10)));
    const file = await writeFixture('more.csv', usersCsv(p, 15));
    const skip = await importFile(file, { mode: 'skip-existing' });
    assert.deepEqual([skip.status, skip.result!.counts.inserted, skip.result!.counts.skipped], ['success', 5, 10]);
    const insert = await importFile(await writeFixture('more2.csv', usersCsv(p, 20)), { mode: 'insert' });
    assert.deepEqual([insert.status, insert.result!.counts.inserted, insert.result!.counts.failed], ['partial', 5, 15]);
    assert.equal(insert.result!.errorSample[0]!.code, 'ALREADY_EXISTS');
    assert.equal(await countUsers(fixture.stack.pool, p), 20);
  });

  it('stop_on_error stops at the first bad row; maxErrors stops once exceeded', async () => {
    const p = uniqueId('stop');
    const rows = usersCsv(p, 50).trim().split('\n');
    rows.splice(11, 0, 'bad-email,X,user,active,2024-01-01');
    const file = await writeFixture('stop.csv', rows.join('\n'));
    const stopped = await importFile(file, { errorHandling: 'stop_on_error', batchSize: 100 });
    assert.equal(stopped.status, 'failed');
    assert.equal(stopped.error?.code, 'STOPPED_ON_ERROR');
    assert.equal(await countUsers(fixture.stack.pool, p), 10, 'rows before the bad one load; none after it');

    // Ten good rows, ten bad ones, ten good: the third batch loads beside the second, which stops the run.
    const q = uniqueId('maxerr');
    const good = (from: number) => Array.from({ length: 10 }, (_, i) => `${q}.${from + i}@example.com,Good`);
    const bad = ['email,name', ...good(1), ...Array.from({ length: 10 }, (_, i) => `bad${i},X`), ...good(11)].join('\n');
    const limited = await importFile(await writeFixture('max.csv', bad), { maxErrors: 5, batchSize: 10 });
    assert.equal(limited.status, 'failed');
    assert.equal(limited.error?.code, 'TOO_MANY_ERRORS');
    assert.deepEqual([limited.result!.counts.succeeded, limited.result!.counts.failed], [10, 10]);
    assert.equal(await countUsers(fixture.stack.pool, q), 10, 'nothing after the batch that stopped the run is kept');
  });

  it('imports NDJSON and a JSON array, from MinIO (s3://) and from a local path', async () => {
    const p = uniqueId('json');
    const records = Array.from({ length: 120 }, (_, i) => ({ email: `${p}.${i}@example.com`, name: `J ${i}`, role: i % 2 ? 'admin' : 'user' }));
    const ndjson = records.slice(0, 60).map((r) => JSON.stringify(r)).join('\n') + '\n{"email": "broken"\n';
    const s3 = createS3Client(fixture.stack.config.s3!);
    await s3.send(new PutObjectCommand({ Bucket: fixture.stack.config.s3!.bucket, Key: `${p}/users.ndjson`, Body: ndjson }));
    s3.destroy();
    const fromS3 = await importFile(`s3://${fixture.stack.config.s3!.bucket}/${p}/users.ndjson`, { batchSize: 25 });
    assert.equal(fromS3.status, 'partial');
    assert.deepEqual([fromS3.result!.counts.succeeded, fromS3.result!.counts.failed], [60, 1]);
    assert.equal(fromS3.result!.errorSample[0]!.code, 'INVALID_JSON');
    assert.equal(fromS3.result!.errorSample[0]!.line, 61);

    const array = await importFile(await writeFixture('users.json', JSON.stringify(records.slice(60), null, 2)), { batchSize: 7 });
    assert.equal(array.status, 'success');
    assert.equal(array.result!.counts.succeeded, 60);
    assert.equal(await countUsers(fixture.stack.pool, p), 120);
  });

  it('cancels mid-run after a whole batch: status cancelled, counts so far, no half batch', async () => {
    const p = uniqueId('cancel');
    const file = await writeFixture('big.csv', usersCsv(p, 200_000));
    const runId = await startRun(fixture.stack, 'import', { source: file, dataset: 'users', batchSize: 1000 });
    await waitForRun(fixture.stack, runId, (r) => (r.progress?.counts.processed ?? 0) > 0);
    const res = await fixture.stack.app.inject({ method: 'POST', url: `/runs/${runId}/cancel`, payload: { reason: 'test' } });
    assert.equal(res.statusCode, 202);
    const run = await waitForRun(fixture.stack, runId);
    assert.equal(run.status, 'cancelled');
    const loaded = await countUsers(fixture.stack.pool, p);
    assert.ok(loaded < 200_000, 'stopped before the end');
    assert.equal(loaded, run.result!.counts.succeeded, 'the counts match what is in the table');
    assert.equal(loaded % 1000, 0, 'only whole batches');
    const again = await fixture.stack.app.inject({ method: 'POST', url: `/runs/${runId}/cancel` });
    assert.equal(again.statusCode, 409);
  });

  describe('malformed files get clear errors and the worker keeps running', () => {
    const cases: [string, string | Buffer, string, RegExp][] = [
      ['unterminated quote', 'email,name\na@example.com,"never closed\nb@example.com,B\n', 'failed', /unterminated quoted field.*line 2/i],
      ['empty file', '', 'failed', /empty/i],
      ['invalid UTF-8', Buffer.concat([Buffer.from('email,name\nutf@example.com,'), Buffer.from([0xff, 0xfe, 0x41]), Buffer.from('\n')]), 'partial', /UTF-8/],
      ['missing required column', 'name,role\nX,user\n', 'failed', /email/],
    ];
    for (const [name, content, status, message] of cases) {
      it(name, async () => {
        const run = await importFile(await writeFixture('malformed.csv', content));
        assert.equal(run.status, status, JSON.stringify(run));
        const text = run.status === 'failed' ? (run.error?.message ?? '') : (run.result?.errorSample[0]?.message ?? '');
        assert.match(text, message);
      });
    }

    it('header only: success with no rows', async () => {
      const run = await importFile(await writeFixture('header.csv', 'email,name,role\n'));
      assert.equal(run.status, 'success');
      assert.equal(run.result!.counts.processed, 0);
    });

    it('then still imports a good file', async () => {
      const p = uniqueId('after');
      const run = await importFile(await writeFixture('ok.csv', usersCsv(p, 3)));
      assert.equal(run.status, 'success');
      assert.equal((await getRun(fixture.stack, run.runId)).result!.counts.succeeded, 3);
    });
  });
});
