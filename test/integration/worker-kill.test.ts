import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { assertImportedOnce, countUsers, openStack, ownUsers, seedUsers, spawnWorker, startRun, statusCounts, testConfig, uniqueId, usersCsv, waitForRun, writeFixture, type Stack } from '../helpers/stack';

let stack: Stack;
before(async () => {
  stack = await openStack(testConfig({ BATCHFLOW_SLICE_SECONDS: '1' }));
});
after(() => stack.close());

/** Runs `fn` with a worker process that the test may kill, and stops whichever worker is left. */
async function withKillableWorker(fn: (kill: () => Promise<void>) => Promise<void>): Promise<void> {
  let worker = spawnWorker(stack.config);
  try {
    await fn(async () => {
      worker.kill('SIGKILL');
      await worker.exited;
      worker = spawnWorker(stack.config);
    });
  } finally {
    worker.kill('SIGTERM');
    await worker.exited;
  }
}

it('a worker killed mid-import (SIGKILL) and restarted: the run completes with every row exactly once', async () => {
  const rows = 300_000;
  const p = uniqueId('kill');
  const file = await writeFixture('kill.csv', usersCsv(p, rows));
  await withKillableWorker(async (killAndRestart) => {
    const runId = await startRun(stack, 'import', { source: file, dataset: 'users', batchSize: 2000 });
    const midway = await waitForRun(stack, runId, (r) => (r.progress?.counts.processed ?? 0) >= 20_000);
    await killAndRestart();
    const loadedAtKill = await countUsers(stack.pool, p);
    assert.ok(loadedAtKill < rows, `killed before the end (${loadedAtKill} of ${rows} loaded, ${midway.progress?.counts.processed} reported)`);

    await assertImportedOnce(stack, await waitForRun(stack, runId, undefined, 240_000), p, rows);
  });
});

it('a worker killed mid bulk-update (SIGKILL) and restarted: the run completes with the exact count', async () => {
  const rows = 200_000;
  const p = uniqueId('killupd');
  await seedUsers(stack.pool, p, rows, { status: 'active' });
  await withKillableWorker(async (killAndRestart) => {
    // The filter still matches updated rows, so a batch applied twice would be counted twice.
    const runId = await startRun(stack, 'bulk-update', { dataset: 'users', where: ownUsers(p), set: { status: 'inactive' }, batchSize: 1_000 });
    await waitForRun(stack, runId, (r) => (r.progress?.counts.processed ?? 0) >= 10_000);
    await killAndRestart();
    const changedAtKill = (await statusCounts(stack.pool, p)).inactive ?? 0;
    assert.ok(changedAtKill < rows, `killed before the end (${changedAtKill} of ${rows})`);
    const run = await waitForRun(stack, runId, undefined, 240_000);
    assert.equal(run.status, 'success', JSON.stringify(run.error ?? run.result?.error));
    assert.deepEqual(
      { processed: run.result!.counts.processed, succeeded: run.result!.counts.succeeded, failed: run.result!.counts.failed },
      { processed: rows, succeeded: rows, failed: 0 },
    );
    assert.deepEqual(await statusCounts(stack.pool, p), { inactive: rows });
  });
});
