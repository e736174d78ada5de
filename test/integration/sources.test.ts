import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import type { RunView } from '../../src/api/runs';
import { RAW_MAX_BYTES } from '../../src/db/queries';
import { createS3Client } from '../../src/storage';
import { countUsers, importsDir, openStack, startRun, startWorker, testConfig, uniqueId, usersCsv, waitForRun, writeFixture, type Stack } from '../helpers/stack';

/**
 * Where imports may read from: local files only in the imports directory ($BATCHFLOW_DATA_DIR/imports
 * by default), checked again after resolving links, and regular files only; s3:// only from the
 * allowed buckets. A refused source fails the run before anything is read, so no row error (whose
 * raw input the API shows) can leak the file.
 */
const extraBucket = uniqueId('extra-bucket');
let stack: Stack;
let worker: Awaited<ReturnType<typeof startWorker>>;
before(async () => {
  const config = testConfig({ BATCHFLOW_S3_SOURCE_BUCKETS: `${process.env.S3_BUCKET},${extraBucket}` });
  await createS3Client(config.s3!).send(new CreateBucketCommand({ Bucket: extraBucket }));
  stack = await openStack(config);
  worker = await startWorker(config);
  await fs.mkdir(importsDir(), { recursive: true });
});
after(async () => {
  await worker.stop();
  await stack.close();
});

const importRun = async (source: string, params: object = {}) => waitForRun(stack, await startRun(stack, 'import', { source, dataset: 'users', format: 'csv', ...params }));

/** The run failed with `code` and a message matching `message`, having read nothing and stored no row error. */
async function assertRefused(run: RunView, code: string, message: RegExp): Promise<void> {
  assert.equal(run.status, 'failed');
  assert.equal(run.error?.code, code, JSON.stringify(run.error));
  assert.match(run.error.message, message);
  const errors = await stack.app.inject({ method: 'GET', url: `/runs/${run.runId}/errors?format=ndjson` });
  assert.equal(errors.body, '', 'no row errors');
  assert.doesNotMatch(JSON.stringify(run), /root:/, 'nothing of /etc/passwd in the run');
}

describe('local sources', () => {
  it('a file outside the imports directory is refused (the default allows only $BATCHFLOW_DATA_DIR/imports)', async () => {
    const outside = path.join(path.dirname(importsDir()), `${uniqueId('outside')}.csv`);
    await fs.writeFile(outside, usersCsv(uniqueId('out'), 3));
    await assertRefused(await importRun(outside), 'SOURCE_NOT_ALLOWED', /is outside the directories this worker may read .*imports\); set BATCHFLOW_LOCAL_SOURCE_DIRS/);
  });

  it('".." cannot climb out of the imports directory', async () => {
    await assertRefused(await importRun(`${importsDir()}/../../../../../../etc/passwd`), 'SOURCE_NOT_ALLOWED', /^\/etc\/passwd is outside the directories/);
  });

  it('a symbolic link in the imports directory pointing at /etc/passwd is refused, and its lines never come back', async () => {
    const link = path.join(importsDir(), `${uniqueId('passwd')}.csv`);
    await fs.symlink('/etc/passwd', link);
    await assertRefused(await importRun(link), 'SOURCE_NOT_ALLOWED', new RegExp(`${link} \\(/etc/passwd\\) is outside the directories`));
  });

  it('POST /inspect reads local sources by the same rules: a link out of the imports directory and a path outside it are a 400', async () => {
    const link = path.join(importsDir(), `${uniqueId('passwd')}.csv`);
    await fs.symlink('/etc/passwd', link);
    for (const source of [link, `${importsDir()}/../../../../../../etc/passwd`]) {
      const res = await stack.app.inject({ method: 'POST', url: '/inspect', payload: { source, format: 'csv' } });
      assert.equal(res.statusCode, 400, res.body);
      assert.deepEqual([res.json<{ error: string }>().error, res.json<{ field: string }>().field], ['SOURCE_NOT_ALLOWED', 'source']);
      assert.doesNotMatch(res.body, /root:/, 'nothing of /etc/passwd in the answer');
    }
  });

  it('a FIFO is refused at once (no hang waiting for a writer), and so is a directory', async () => {
    const fifo = path.join(importsDir(), `${uniqueId('fifo')}.csv`);
    execFileSync('mkfifo', [fifo]);
    await assertRefused(await importRun(fifo), 'SOURCE_NOT_ALLOWED', /is a FIFO \(named pipe\): only regular files can be imported/);
    const dir = path.join(importsDir(), uniqueId('dir'));
    await fs.mkdir(dir);
    await assertRefused(await importRun(dir), 'SOURCE_NOT_ALLOWED', /is a directory: only regular files can be imported/);
  });

  it('a link inside the imports directory to a file also inside it is followed', async () => {
    const p = uniqueId('linked');
    const file = await writeFixture('target.csv', usersCsv(p, 4));
    const link = path.join(importsDir(), `${uniqueId('link')}.csv`);
    await fs.symlink(file, link);
    const run = await importRun(link);
    assert.equal(run.status, 'success', JSON.stringify(run.error));
    assert.equal(await countUsers(stack.pool, p), 4);
  });

  it("a row error's raw input is cut at a few KiB, and says so", async () => {
    const p = uniqueId('huge');
    const huge = 'x'.repeat(100_000);
    const run = await importRun(await writeFixture('huge.csv', `email,name\nnot-an-email,${huge}\n${p}.1@example.com,Fine\n`));
    assert.equal(run.status, 'partial');
    const { errors } = (await stack.app.inject({ method: 'GET', url: `/runs/${run.runId}/errors` })).json<{ errors: { raw: { cut: boolean; bytes: number; start: string } }[] }>();
    const raw = errors[0]!.raw;
    assert.equal(raw.cut, true);
    assert.ok(raw.bytes > 100_000, String(raw.bytes));
    assert.ok(Buffer.byteLength(raw.start) <= RAW_MAX_BYTES && raw.start.startsWith('{"email":"not-an-email","name":"xxx'), raw.start.slice(0, 50));
  });
});

describe('s3:// sources', () => {
  const put = (bucket: string, key: string, body: string) => createS3Client(stack.config.s3!).send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));

  it('only the allowed buckets: the configured bucket, and those BATCHFLOW_S3_SOURCE_BUCKETS adds', async () => {
    const p = uniqueId('s3ok');
    await put(process.env.S3_BUCKET!, `${p}.csv`, usersCsv(p, 2));
    await put(extraBucket, `${p}-extra.csv`, usersCsv(`${p}x`, 3));
    assert.equal((await importRun(`s3://${process.env.S3_BUCKET}/${p}.csv`)).status, 'success');
    assert.equal((await importRun(`s3://${extraBucket}/${p}-extra.csv`)).status, 'success');
    assert.deepEqual([await countUsers(stack.pool, p), await countUsers(stack.pool, `${p}x`)], [2, 3]);
    await assertRefused(await importRun('s3://someone-elses-bucket/users.csv'), 'SOURCE_NOT_ALLOWED', /bucket "someone-elses-bucket" is not one this worker may read .*; set BATCHFLOW_S3_SOURCE_BUCKETS/);
  });
});
