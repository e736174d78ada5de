import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { countUsers, openStack, spawnWorker, startRun, testConfig, uniqueId, usersCsv, waitForRun, writeFixture, type Stack } from '../helpers/stack';

let stack: Stack;
before(async () => {
  stack = await openStack(testConfig({ BATCHFLOW_SLICE_SECONDS: '1' }));
});
after(() => stack.close());

it('a worker killed mid-import (SIGKILL) and restarted: the run completes with every row exactly once', async () => {
  const rows = 300_000;
  const p = uniqueId('kill');
  const file = await writeFixture('kill.csv', usersCsv(p, rows));
  const first = spawnWorker(stack.config);
  const runId = await startRun(stack, 'import', { source: file, dataset: 'users', batchSize: 2000 });

  const midway = await waitForRun(stack, runId, (r) => (r.progress?.counts.processed ?? 0) >= 20_000);
  first.kill('SIGKILL');
  await first.exited;
  const loadedAtKill = await countUsers(stack.pool, p);
  assert.ok(loadedAtKill < rows, `killed before the end (${loadedAtKill} of ${rows} loaded, ${midway.progress?.counts.processed} reported)`);

  const second = spawnWorker(stack.config);
  try {
    const run = await waitForRun(stack, runId, undefined, 240_000);
    assert.equal(run.status, 'success', JSON.stringify(run.error ?? run.result?.error));
    const c = run.result!.counts;
    assert.deepEqual({ processed: c.processed, succeeded: c.succeeded, inserted: c.inserted, updated: c.updated, failed: c.failed }, { processed: rows, succeeded: rows, inserted: rows, updated: 0, failed: 0 });
    assert.equal(await countUsers(stack.pool, p), rows);
    const { rows: errors } = await stack.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM run_errors WHERE run_id = $1', [runId]);
    assert.equal(errors[0]!.n, 0, 'no row was mistaken for a duplicate of itself on resume');
  } finally {
    second.kill('SIGTERM');
    await second.exited;
  }
});
