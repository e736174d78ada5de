import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { dayCount } from '../../src/jobs/dates';
import { expectedStats, insertSeed, removeSeed, statsRows, type RollupSeed } from '../helpers/rollups';
import { countUsers, openStack, ownUsers, seedUsers, spawnWorker, startRun, statusCounts, testConfig, uniqueId, usersCsv, waitForRun, writeFixture, type Stack } from '../helpers/stack';

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

    const run = await waitForRun(stack, runId, undefined, 240_000);
    assert.equal(run.status, 'success', JSON.stringify(run.error ?? run.result?.error));
    const c = run.result!.counts;
    assert.deepEqual({ processed: c.processed, succeeded: c.succeeded, inserted: c.inserted, updated: c.updated, failed: c.failed }, { processed: rows, succeeded: rows, inserted: rows, updated: 0, failed: 0 });
    assert.equal(await countUsers(stack.pool, p), rows);
    const { rows: errors } = await stack.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM run_errors WHERE run_id = $1', [runId]);
    assert.equal(errors[0]!.n, 0, 'no row was mistaken for a duplicate of itself on resume');
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

it('a worker killed mid aggregate range (SIGKILL) and restarted: every date is computed and counted exactly once', async () => {
  const p = uniqueId('killagg');
  // Users created and deleted across 1960-1965 (no other test has rows then), a few per week.
  const seed: RollupSeed = {
    users: Array.from({ length: 600 }, (_, i) => {
      const at = new Date(Date.parse('1960-01-01T00:00:00Z') + i * 3.3 * 86_400_000).toISOString();
      return i % 4 === 0 ? { at, deleted: new Date(Date.parse(at) + (i % 9) * 86_400_000 + 3_600_000).toISOString() } : { at };
    }),
    posts: [],
    activity: [],
  };
  const from = '1960-01-01';
  const to = '1965-06-30';
  const days = dayCount(from, to);
  const users = await insertSeed(stack.pool, p, seed);
  try {
    await withKillableWorker(async (killAndRestart) => {
      const runId = await startRun(stack, 'aggregate', { from, to });
      await waitForRun(stack, runId, (r) => (r.progress?.counts.processed ?? 0) >= 100);
      await killAndRestart();
      const { rows: done } = await stack.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM daily_stats WHERE run_id = $1', [runId]);
      assert.ok(done[0]!.n < days, `killed before the end (${done[0]!.n} of ${days} dates)`);

      const run = await waitForRun(stack, runId, undefined, 240_000);
      assert.equal(run.status, 'success', JSON.stringify(run.error ?? run.result?.error));
      const c = run.result!.counts;
      assert.deepEqual([c.processed, c.succeeded, c.failed], [days, days, 0], 'each date counted once');
      const rows = await statsRows(stack.pool, from, to);
      assert.equal(rows.length, days);
      assert.ok(rows.every((r) => r.run_id === runId));
      assert.deepEqual(rows.map(({ run_id: _, ...figures }) => figures), expectedStats(seed, from, to));
    });
  } finally {
    await removeSeed(stack.pool, p, users);
  }
});
