import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, it } from 'node:test';
import { createKey } from '../../src/api/keys';
import { migrate } from '../../src/db/migrate';
import { createPool } from '../../src/db/pool';
import { startPostgres, type PostgresStack } from '../../src/stack/postgres';
import { assertImportedOnce, openStack, spawnWorker, startRun, testConfig, uniqueId, usersCsv, waitForRun, writeFixture, type Stack } from '../helpers/stack';

/**
 * Postgres restarted in immediate mode (every connection dropped, crash recovery on start) while
 * an import runs. This file has a Postgres of its own, so that crashing it disturbs no other test;
 * durable (fsync and synchronous commit on), as a crash test needs: an acknowledged commit stays.
 */
const dataDir = path.join(process.env.BATCHFLOW_TEST_TMP ?? '/tmp', uniqueId('pg-restart'));
const log = () => undefined;
let postgres: PostgresStack;
let stack: Stack;

before(async () => {
  postgres = await startPostgres({ dataDir, logFile: `${dataDir}.log`, log });
  await migrate(postgres.url);
  // This database has none of the test stack's keys: the API here takes one of its own.
  const pool = createPool(postgres.url, 1);
  const { key } = await createKey(pool, { name: 'test' }, { name: 'pg-restart-admin', scopes: ['admin'] }).finally(() => pool.end());
  stack = await openStack(testConfig({ DATABASE_URL: postgres.url, BATCHFLOW_API_KEY: key }));
});
after(async () => {
  await stack.close();
  await postgres.stop();
});

const health = async () => {
  const res = await stack.app.inject({ method: 'GET', url: '/health' });
  return { statusCode: res.statusCode, body: res.json<{ status: string; database: string }>() };
};

/** Crashes Postgres, checks that /health says so, and starts it again on the same port. */
async function restartPostgres(): Promise<void> {
  await postgres.crash();
  assert.deepEqual(await health(), { statusCode: 503, body: { status: 'degraded', temporal: 'ok', database: 'unavailable' } });
  postgres = await startPostgres({ dataDir, port: postgres.port, logFile: `${dataDir}.log`, log });
  // The API's pool reconnects on its own: /health is ok again once a connection succeeds.
  for (let tries = 0; (await health()).statusCode !== 200; tries++) {
    assert.ok(tries < 50, '/health stays degraded after Postgres came back');
    await new Promise((r) => setTimeout(r, 200));
  }
}

it('two Postgres restarts (immediate mode) mid-import: the worker and the API ride them out, every row loads exactly once', async () => {
  const rows = 300_000;
  const p = uniqueId('pgrestart');
  const file = await writeFixture('pg-restart.csv', usersCsv(p, rows));
  const worker = spawnWorker(stack.config);
  try {
    const runId = await startRun(stack, 'import', { source: file, dataset: 'users', batchSize: 2000 });
    for (const atLeast of [20_000, 100_000]) {
      const before = await waitForRun(stack, runId, (r) => (r.progress?.counts.processed ?? 0) >= atLeast);
      assert.ok(before.progress!.counts.processed < rows, `the import is still running at the restart (${before.progress!.counts.processed} of ${rows})`);
      await restartPostgres();
      assert.equal(worker.exitCode, null, 'the worker process is still running');
    }
    await assertImportedOnce(stack, await waitForRun(stack, runId, undefined, 300_000), p, rows);
    assert.equal(worker.exitCode, null, 'the worker process survived both restarts');
  } finally {
    worker.kill('SIGTERM');
    await worker.exited;
  }
});
