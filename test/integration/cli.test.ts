import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import YAML from 'yaml';
import { ensureLocalAdminKey } from '../../src/cli/local-key';
import { countUsers, openStack, ownUsers, repoRoot, seedUsers, startWorker, statusCounts, testConfig, uniqueId, usersCsv, writeFixture, type Stack } from '../helpers/stack';

const exec = promisify(execFile);

describe('CLI against a listening API', () => {
  let stack: Stack;
  let worker: Awaited<ReturnType<typeof startWorker>>;
  let apiUrl: string;
  let dataDir: string;
  before(async () => {
    stack = await openStack(testConfig({ BATCHFLOW_UPLOAD_MAX_BYTES: '100000' }));
    worker = await startWorker(stack.config);
    // On every interface, so that 127.0.0.2 reaches it as "another host" (it has auth like any API).
    await stack.app.listen({ port: 0, host: '0.0.0.0' });
    apiUrl = `http://127.0.0.1:${(stack.app.server.address() as { port: number }).port}`;
    dataDir = path.join(path.dirname(await writeFixture('marker', '')), uniqueId('cli-data'));
    await fs.mkdir(dataDir, { recursive: true });
  });
  after(async () => {
    await worker.stop();
    await stack.close();
  });

  /** Runs bin/batchflow.js; env replaces the test environment's entries (undefined removes one). */
  async function cli(args: string[], env: Record<string, string | undefined> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
    const merged: Record<string, string | undefined> = { ...process.env, BATCHFLOW_API_URL: apiUrl, BATCHFLOW_DATA_DIR: dataDir, TASK_QUEUE: stack.config.temporal.taskQueue, ...env };
    for (const [k, v] of Object.entries(merged)) if (v === undefined) delete merged[k];
    try {
      const { stdout, stderr } = await exec(process.execPath, [path.join(repoRoot, 'bin/batchflow.js'), ...args], { cwd: repoRoot, env: merged });
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code: number; stdout: string; stderr: string };
      return { code: e.code, stdout: e.stdout, stderr: e.stderr };
    }
  }

  it('import uploads the file, so the API may be elsewhere; --server-path passes a path the worker reads', async () => {
    const p = uniqueId('cli-up');
    const file = await writeFixture('cli-upload.csv', usersCsv(p, 7));
    const uploaded = await cli(['import', file, '--dataset', 'users']);
    assert.equal(uploaded.code, 0, uploaded.stderr);
    assert.match(uploaded.stderr, /uploaded .*cli-upload\.csv \(\d+ bytes, sha256 [0-9a-f]{64}\) as store:\/\/uploads\/.*-cli-upload\.csv/);
    assert.equal(await countUsers(stack.pool, p), 7);

    const q = uniqueId('cli-path');
    const served = await cli(['import', await writeFixture('cli-path.csv', usersCsv(q, 3)), '--dataset', 'users', '--server-path']);
    assert.equal(served.code, 0, served.stderr);
    assert.doesNotMatch(served.stderr, /uploaded/);
    assert.equal(await countUsers(stack.pool, q), 3);

    const tooBig = await cli(['import', await writeFixture('cli-big.csv', usersCsv(uniqueId('big'), 3000)), '--dataset', 'users']);
    assert.equal(tooBig.code, 64);
    assert.match(tooBig.stderr, /POST \/uploads: 413 UPLOAD_TOO_LARGE\n {2}the file is larger than the upload limit of 100000 bytes/);
  });

  it('a params file with a misspelt key is refused before anything runs, naming the key and the one meant', async () => {
    const p = uniqueId('cli-typo');
    await seedUsers(stack.pool, p, 4, { status: 'active' });
    const params = await writeFixture('typo.yaml', YAML.stringify({ dataset: 'users', where: ownUsers(p), set: { status: 'inactive' }, dryrun: true, preconditions: { maxmatches: 10 } }));
    const res = await cli(['run', 'bulk-update', '--params', params]);
    assert.equal(res.code, 64);
    assert.match(res.stderr, /^POST \/runs: 400 INVALID_REQUEST\n {2}params\.preconditions\.maxmatches: Unrecognized key: "maxmatches"; did you mean "maxMatches"\?\n {2}params\.dryrun: Unrecognized key: "dryrun"; did you mean "dryRun"\?/m);
    assert.deepEqual(await statusCounts(stack.pool, p), { active: 4 });
  });

  it('keys: create, list and revoke through the API with an admin key, or with --database on DATABASE_URL', async () => {
    const name = uniqueId('cli-key');
    const created = await cli(['keys', 'create', '--name', name, '--scopes', 'read,run']);
    assert.equal(created.code, 0, created.stderr);
    const key = created.stdout.trim();
    assert.match(key, /^bf_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$/, 'stdout is the key alone');
    assert.match(created.stderr, /shown this once/);
    const runs = await cli(['runs', '--started-by', name], { BATCHFLOW_API_KEY: key });
    assert.equal(runs.code, 0, runs.stderr);

    const listed = await cli(['keys', 'list', '--database']);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, new RegExp(name));
    assert.ok(!listed.stdout.includes(key.split('_')[2]!), 'no secret in the list');

    const id = key.split('_')[1]!;
    const refused = await cli(['keys', 'revoke', id], { BATCHFLOW_API_KEY: key });
    assert.equal(refused.code, 64);
    assert.match(refused.stderr, /403 FORBIDDEN\n {2}key ".*" lacks the "admin" scope/);
    const revoked = await cli(['keys', 'revoke', id, '--database']);
    assert.equal(revoked.code, 0, revoked.stderr);
    const after = await cli(['runs'], { BATCHFLOW_API_KEY: key });
    assert.equal(after.code, 64);
    assert.match(after.stderr, /401 UNAUTHORIZED\n {2}a valid API key is required.*\n {2}set BATCHFLOW_API_KEY/);

    const bootstrap = await cli(['keys', 'create', '--database', '--name', uniqueId('ops'), '--scopes', 'admin'], { BATCHFLOW_API_KEY: undefined });
    assert.equal(bootstrap.code, 0, bootstrap.stderr);
    const { rows } = await stack.pool.query<{ created_by: string }>('SELECT created_by FROM api_keys WHERE id = $1', [bootstrap.stdout.trim().split('_')[1]]);
    assert.match(rows[0]!.created_by, / \(database\)$/);
    assert.equal((await cli(['keys', 'create', '--database', '--name', 'x', '--scopes', 'root'])).code, 64);
  });

  it('without BATCHFLOW_API_KEY it uses the key npm start keeps in the data directory, for a local API only', async () => {
    const noKey = { BATCHFLOW_API_KEY: undefined };
    const before = await cli(['runs'], noKey);
    assert.equal(before.code, 64, 'no key file yet: 401');
    await ensureLocalAdminKey(stack.pool, testConfig({ BATCHFLOW_DATA_DIR: dataDir }).localKeyFile);
    assert.equal((await cli(['runs'], noKey)).code, 0);
    const viaOtherHost = await cli(['runs'], { ...noKey, BATCHFLOW_API_URL: apiUrl.replace('127.0.0.1', '127.0.0.2') });
    assert.equal(viaOtherHost.code, 64, 'the local key is not sent to another host');
  });

  it('rate-limited: exit 69, saying when to retry', async () => {
    const limited = await openStack(testConfig({ BATCHFLOW_RATE_LIMIT: '1' }));
    try {
      await limited.app.listen({ port: 0, host: '127.0.0.1' });
      const url = `http://127.0.0.1:${(limited.app.server.address() as { port: number }).port}`;
      // One request each (batchflow runs may follow several pages).
      assert.equal((await cli(['datasets'], { BATCHFLOW_API_URL: url })).code, 0);
      const refused = await cli(['datasets'], { BATCHFLOW_API_URL: url });
      assert.equal(refused.code, 69);
      assert.match(refused.stderr, /429 RATE_LIMITED\n.*\n {2}retry after \d+ s/);
    } finally {
      await limited.close();
    }
  });

  it('approve and reject decide as the key; the old --by is gone', async () => {
    const p = uniqueId('cli-approve');
    await seedUsers(stack.pool, p, 2, { status: 'active' });
    const started = await cli(['run', 'bulk-update', '--no-wait', '--params', await writeFixture('approve.json', JSON.stringify({ dataset: 'users', where: ownUsers(p), set: { status: 'pending' }, requiresConfirmation: true }))]);
    assert.equal(started.code, 0, started.stderr);
    const runId = started.stdout.trim();
    const withBy = await cli(['approve', runId, '--by', 'mallory']);
    assert.equal(withBy.code, 64, 'an unknown option is bad usage');
    assert.match(withBy.stderr, /Unknown option '--by'/);
    for (;;) {
      const status = await cli(['status', runId]);
      if ((JSON.parse(status.stdout) as { progress?: { step: string } }).progress?.step === 'awaiting_approval') break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const approved = await cli(['approve', runId, '--comment', 'ok']);
    assert.equal(approved.code, 0, approved.stderr);
    let view: { status: string; startedBy: string; result?: { approval: { by: string; comment: string } } };
    do view = JSON.parse((await cli(['status', runId])).stdout) as typeof view;
    while (view.status === 'running');
    assert.equal(view.status, 'success');
    assert.equal(view.startedBy, 'test-admin');
    assert.deepEqual([view.result?.approval.by, view.result?.approval.comment], ['test-admin', 'ok']);
  });
});
