import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import type { AuditEntry } from '../../src/api/audit';
import { safeFileName } from '../../src/api/routes/uploads';
import { createS3Client } from '../../src/storage';
import { countUsers, openStack, startWorker, testConfig, uniqueId, usersCsv, waitForRun, writeFixture, type Stack } from '../helpers/stack';

type Uploaded = { source: string; bytes: number; sha256: string };
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** The same tests against both object stores: S3 (MinIO) and a local directory. */
for (const store of ['s3', 'local'] as const) {
  describe(`uploads (${store} object store)`, () => {
    let stack: Stack;
    let worker: Awaited<ReturnType<typeof startWorker>>;
    let dataDir: string;
    before(async () => {
      dataDir = path.dirname(await writeFixture('data-dir-marker', ''));
      dataDir = path.join(dataDir, uniqueId('data'));
      stack = await openStack(testConfig({ BATCHFLOW_UPLOAD_MAX_BYTES: '2000', BATCHFLOW_DATA_DIR: dataDir, ...(store === 'local' && { S3_BUCKET: '' }) }));
      worker = await startWorker(stack.config);
    });
    after(async () => {
      await worker.stop();
      await stack.close();
    });

    /** Every object the store holds under uploads/. */
    async function storedUploads(): Promise<string[]> {
      if (store === 'local') {
        const root = path.join(stack.config.objectStoreDir, 'uploads');
        const files = await fs.readdir(root, { recursive: true, withFileTypes: true }).catch(() => []);
        return files.filter((f) => f.isFile()).map((f) => path.join(f.parentPath, f.name));
      }
      const s3 = createS3Client(stack.config.s3!);
      const listed = await s3.send(new ListObjectsV2Command({ Bucket: stack.config.s3!.bucket, Prefix: 'uploads/' }));
      s3.destroy();
      return (listed.Contents ?? []).map((o) => o.Key!);
    }

    it('streams a file into the store and answers its source, size and SHA-256; an import reads it from there', async () => {
      assert.equal(stack.config.s3 ? 's3' : 'local', store);
      const p = uniqueId('upload');
      const csv = usersCsv(p, 12);
      const res = await stack.app.inject({ method: 'POST', url: '/uploads?filename=../../partner users.csv', payload: csv, headers: { 'content-type': 'text/csv' } });
      assert.equal(res.statusCode, 201, res.body);
      const uploaded = res.json<Uploaded>();
      assert.match(uploaded.source, /^store:\/\/uploads\/\d{4}-\d{2}-\d{2}\/[0-9a-f-]{36}\/partner_users\.csv$/);
      assert.equal(uploaded.bytes, Buffer.byteLength(csv));
      assert.equal(uploaded.sha256, sha256(csv));

      const runId = uniqueId('uploaded');
      const started = await stack.app.inject({ method: 'POST', url: '/runs', payload: { kind: 'import', runId, params: { source: uploaded.source, dataset: 'users' } } });
      assert.equal(started.statusCode, 202, started.body);
      const run = await waitForRun(stack, runId);
      assert.equal(run.status, 'success', JSON.stringify(run.result ?? run.error));
      assert.equal(await countUsers(stack.pool, p), 12);

      const audit = (await stack.app.inject({ method: 'GET', url: '/audit?action=upload&limit=5' })).json<{ entries: AuditEntry[] }>().entries;
      assert.deepEqual(audit.find((e) => e.details?.source === uploaded.source)?.details, { source: uploaded.source, bytes: uploaded.bytes, sha256: uploaded.sha256, filename: '../../partner users.csv' });
    });

    it('any content type is taken as the file (curl --data-binary sends form encoding)', async () => {
      const res = await stack.app.inject({ method: 'POST', url: '/uploads?filename=a.ndjson', payload: '{"a":1}\n', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
      assert.equal(res.statusCode, 201, res.body);
      assert.equal(res.json<Uploaded>().bytes, 8);
    });

    it('past the size limit: 413, whether the length is declared or not, and nothing is kept', async () => {
      const before = await storedUploads();
      const big = 'x'.repeat(2001);
      const declared = await stack.app.inject({ method: 'POST', url: '/uploads?filename=big.csv', payload: big, headers: { 'content-type': 'text/csv' } });
      assert.equal(declared.statusCode, 413, declared.body);
      assert.equal(declared.json<{ error: string }>().error, 'UPLOAD_TOO_LARGE');
      assert.match(declared.json<{ message: string }>().message, /larger than the upload limit of 2000 bytes/);
      // Chunked, without a content-length: the stream is cut at the limit.
      const chunks = Readable.from(Array.from({ length: 30 }, () => Buffer.alloc(100, 'y')));
      const streamed = await stack.app.inject({ method: 'POST', url: '/uploads?filename=big.csv', payload: chunks, headers: { 'content-type': 'application/octet-stream' } });
      assert.equal(streamed.statusCode, 413, streamed.body);
      assert.deepEqual(await storedUploads(), before);
      // Exactly at the limit is fine.
      assert.equal((await stack.app.inject({ method: 'POST', url: '/uploads', payload: 'z'.repeat(2000), headers: { 'content-type': 'text/plain' } })).statusCode, 201);
    });

    it('a request without a body, or with an unknown query key, is a 400', async () => {
      const empty = await stack.app.inject({ method: 'POST', url: '/uploads' });
      assert.equal(empty.statusCode, 400, empty.body);
      const typo = await stack.app.inject({ method: 'POST', url: '/uploads?fileName=a.csv', payload: 'a', headers: { 'content-type': 'text/csv' } });
      assert.equal(typo.statusCode, 400);
      assert.equal(typo.json<{ field: string }>().field, 'fileName');
      assert.match(typo.json<{ message: string }>().message, /did you mean "filename"\?/);
    });
  });
}

describe('upload file names', () => {
  it('keep letters, digits, dot, underscore and dash, and no path', () => {
    assert.equal(safeFileName('users.csv'), 'users.csv');
    assert.equal(safeFileName('../../etc/passwd'), 'passwd');
    assert.equal(safeFileName('C:\\data\\my file (1).csv'), 'my_file__1_.csv');
    assert.equal(safeFileName('.hidden'), 'hidden');
    assert.equal(safeFileName('..'), 'upload');
    assert.equal(safeFileName(`${'a'.repeat(300)}.csv`).length, 100);
  });
});
