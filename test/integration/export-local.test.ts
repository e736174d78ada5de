import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { callGate, cancelMidway, openStack, ownUsers, repoRoot, seedUsers, startRun, startWorkerWith, testConfig, uniqueId, waitForRun, writeFixture, type Stack } from '../helpers/stack';

const exec = promisify(execFile);

/** `npm start`'s shape: no S3, so the object store is a local directory; the API listens for the CLI. */
describe('export to the local object store, and the CLI', () => {
  let stack: Stack;
  let worker: Awaited<ReturnType<typeof startWorkerWith>>;
  /** Runs before each export slice (one part each). */
  let beforeSlice: () => Promise<void> = () => Promise.resolve();
  let dataDir: string;
  let apiUrl: string;
  before(async () => {
    dataDir = await fs.mkdtemp(path.join(process.env.BATCHFLOW_TEST_TMP ?? os.tmpdir(), 'data-'));
    stack = await openStack(testConfig({ S3_BUCKET: '', BATCHFLOW_DATA_DIR: dataDir, BATCHFLOW_SLICE_SECONDS: '0.001' }));
    assert.equal(stack.config.s3, undefined);
    worker = await startWorkerWith(stack.config, (activities) => ({
      async exportSlice(input: Parameters<typeof activities.exportSlice>[0]) {
        await beforeSlice();
        return activities.exportSlice(input);
      },
    }));
    apiUrl = await stack.app.listen({ port: 0, host: '127.0.0.1' });
  });
  after(async () => {
    await worker.stop();
    await stack.close();
  });

  const cli = (args: string[]) => exec(process.execPath, [path.join(repoRoot, 'bin/batchflow.js'), ...args], { cwd: dataDir, env: { ...process.env, BATCHFLOW_API_URL: apiUrl }, maxBuffer: 64 * 1024 * 1024 });
  const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

  it('the file is streamed by the API, and imports back from store://', async () => {
    const p = uniqueId('local');
    await seedUsers(stack.pool, p, 25);
    const run = await waitForRun(stack, await startRun(stack, 'export', { dataset: 'users', where: ownUsers(p), format: 'ndjson', destination: `exports/${p}.ndjson` }));
    assert.equal(run.status, 'success', JSON.stringify(run.error));
    const output = run.result!.outputs[0]!;
    assert.equal(output.location, `store://exports/${p}.ndjson`);
    const stored = await fs.readFile(path.join(dataDir, 'objects', 'exports', `${p}.ndjson`));
    assert.equal(sha256(stored), output.sha256);
    assert.deepEqual(await fs.readdir(path.join(dataDir, 'objects', '.uploads')), [], 'the upload area is empty once the file is complete');

    const res = await stack.app.inject({ method: 'GET', url: `/runs/${run.runId}/download` });
    assert.equal(res.statusCode, 200);
    assert.equal(res.headers['content-type'], 'application/x-ndjson');
    assert.equal(res.headers['content-length'], String(output.bytes));
    assert.equal(res.headers['content-disposition'], `attachment; filename="${p}.ndjson"; filename*=UTF-8''${p}.ndjson`);
    assert.deepEqual(res.rawPayload, stored);

    const before = (await stack.pool.query('SELECT email, name, role, status, signup_date FROM users WHERE email LIKE $1 ORDER BY email', [`${p}.%`])).rows;
    await stack.pool.query('DELETE FROM users WHERE email LIKE $1', [`${p}.%`]);
    const imported = await waitForRun(stack, await startRun(stack, 'import', { source: output.location, dataset: 'users', format: 'ndjson' }));
    assert.equal(imported.status, 'success', JSON.stringify(imported.error));
    assert.deepEqual((await stack.pool.query('SELECT email, name, role, status, signup_date FROM users WHERE email LIKE $1 ORDER BY email', [`${p}.%`])).rows, before);
  });

  it('a cancelled export leaves no file and no parts behind', async () => {
    const p = uniqueId('lcancel');
    await seedUsers(stack.pool, p, 100_000);
    const gate = callGate(2);
    beforeSlice = () => gate.pass();
    try {
      const runId = await startRun(stack, 'export', { dataset: 'users', where: ownUsers(p), destination: `exports/${p}.csv`, partSizeMb: 5 });
      const run = await cancelMidway(stack, runId, gate, async () =>
        assert.equal((await fs.readdir(path.join(dataDir, 'objects', '.uploads'))).length, 1, 'parts are written while the run goes'),
      );
      assert.equal(run.status, 'cancelled');
      assert.ok(run.result!.counts.processed < 100_000, 'cancelled before the end');
      await assert.rejects(fs.stat(path.join(dataDir, 'objects', 'exports', `${p}.csv`)), { code: 'ENOENT' });
      assert.deepEqual(await fs.readdir(path.join(dataDir, 'objects', '.uploads')), []);
    } finally {
      beforeSlice = () => Promise.resolve();
    }
  });

  it('batchflow export waits, downloads the file and checks its SHA-256', async () => {
    const p = uniqueId('cli');
    await seedUsers(stack.pool, p, 40);
    const where = await writeFixture('where.yaml', `and:\n  - {field: email, op: starts_with, value: "${p}."}\n  - {field: status, op: eq, value: active}\n`);
    const { stdout, stderr } = await cli(['export', 'users', '--where', where, '--columns', 'email,status', '--format', 'json', '--gzip', '-o', 'active.json.gz']);
    assert.match(stdout, /run export-.*: success/);
    assert.match(stderr, /wrote .*active\.json\.gz: 13 rows/);
    const rows = JSON.parse(gunzipSync(await fs.readFile(path.join(dataDir, 'active.json.gz'))).toString('utf8')) as { email: string; status: string }[];
    assert.equal(rows.length, 13);
    assert.ok(rows.every((r) => r.status === 'active' && r.email.startsWith(`${p}.`)));

    // `-o -` puts the file alone on stdout.
    const toStdout = await cli(['export', 'users', '--where', where, '--columns', 'email', '-o', '-']);
    assert.equal(toStdout.stdout.split('\n')[0], 'email');
    assert.equal(toStdout.stdout.trimEnd().split('\n').length, 14);

    const bad = await cli(['export', 'users', '--columns', 'nope']).catch((err: { code: number; stderr: string }) => err);
    assert.equal((bad as { code: number }).code, 64);
    assert.match((bad as { stderr: string }).stderr, /params\.columns\.0/);
  });
});
