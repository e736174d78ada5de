import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, it } from 'node:test';
import { ListPartsCommand } from '@aws-sdk/client-s3';
import { dayCount } from '../../src/jobs/dates';
import type { ExportPosition } from '../../src/jobs/export';
import { startFakeUpstream, upstreamMapping } from '../helpers/fake-upstream';
import { expectedStats, insertSeed, removeSeed, statsRows, type RollupSeed } from '../helpers/rollups';
import {
  assertImportedOnce,
  countUsers,
  download,
  openStack,
  ownStaleProducts,
  ownUsers,
  seedProductCache,
  seedUsers,
  spawnWorker,
  startRun,
  statusCounts,
  storedCheckpoint,
  testConfig,
  uniqueId,
  usersCsv,
  waitForRun,
  writeFixture,
  type Stack,
} from '../helpers/stack';

let stack: Stack;
before(async () => {
  stack = await openStack(testConfig({ BATCHFLOW_SLICE_SECONDS: '1' }));
});
after(() => stack.close());

/** Runs `fn` with a worker process that the test may kill, and stops whichever worker is left. */
async function withKillableWorker(fn: (kill: () => Promise<void>) => Promise<void>, env: Record<string, string> = {}): Promise<void> {
  let worker = spawnWorker(stack.config, env);
  try {
    await fn(async () => {
      worker.kill('SIGKILL');
      await worker.exited;
      worker = spawnWorker(stack.config, env);
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

it('a worker killed mid cache-refresh (SIGKILL) and restarted: rows of committed batches are not asked again, every row is refreshed once', async () => {
  const rows = 3_000;
  const p = uniqueId('killcache');
  const ids = await seedProductCache(stack.pool, p, rows);
  const upstream = await startFakeUpstream({ latencyMs: 20 });
  try {
    await withKillableWorker(
      async (killAndRestart) => {
        const runId = await startRun(stack, 'cache-refresh', {
          dataset: 'product_cache',
          where: ownStaleProducts(p),
          upstream: { url: `${upstream.url}/products/{product_id}`, mapping: upstreamMapping },
          concurrency: 4,
          batchSize: 100,
        });
        await waitForRun(stack, runId, (r) => (r.progress?.counts.processed ?? 0) >= 400);
        await killAndRestart();
        const { rows: at } = await stack.pool.query<{ lastId: number }>(`SELECT (checkpoint->'position'->>'lastId')::bigint AS "lastId" FROM run_checkpoints WHERE execution_id IN (SELECT execution_id FROM run_executions WHERE workflow_id = $1)`, [runId]);
        const { rows: committed } = await stack.pool.query<{ product_id: string }>('SELECT product_id FROM product_cache WHERE product_id LIKE $1 AND id <= $2 ORDER BY id', [`${p}-%`, at[0]!.lastId]);
        assert.ok(committed.length >= 400 && committed.length < rows, `killed mid-run (${committed.length} of ${rows} committed)`);

        const run = await waitForRun(stack, runId, undefined, 240_000);
        assert.equal(run.status, 'success', JSON.stringify(run.error ?? run.result?.error));
        assert.deepEqual([run.result!.counts.processed, run.result!.counts.refreshed, run.result!.counts.failed], [rows, rows, 0]);
        const { rows: left } = await stack.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM product_cache WHERE product_id LIKE $1 AND (last_status <> 'ok' OR last_updated < now() - interval '1 hour')", [`${p}-%`]);
        assert.equal(left[0]!.n, 0, 'every row refreshed');
        const askedAgain = committed.filter((r) => upstream.requestsFor(r.product_id) !== 1);
        assert.deepEqual(askedAgain, [], 'rows of batches committed before the kill were asked exactly once');
        assert.ok(ids.every((id) => upstream.requestsFor(id) >= 1));
        // Only the answers in flight or not yet committed when the worker died are asked again: at most the window.
        assert.ok(upstream.arrivals.length - rows <= 200, `${upstream.arrivals.length - rows} rows asked again`);
      },
      { BATCHFLOW_UPSTREAM_ORIGINS: `${upstream.url}` },
    );
  } finally {
    await upstream.close();
  }
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

it('a worker killed mid-export (SIGKILL) and restarted: finished parts are not sent again, and the file is byte-identical to an uninterrupted export', async () => {
  const rows = 400_000;
  const p = uniqueId('killexp');
  await seedUsers(stack.pool, p, rows);
  const params = { dataset: 'users', where: ownUsers(p), partSizeMb: 5 };
  const { client, bucket } = stack.objects.s3!;
  const stored = (runId: string) => storedCheckpoint<ExportPosition>(stack.pool, runId);
  /** The upload's parts as S3 lists them: number → ETag and when it was last written. */
  const listParts = async (key: string, uploadId: string) => {
    const { Parts } = await client.send(new ListPartsCommand({ Bucket: bucket, Key: key, UploadId: uploadId }));
    return new Map((Parts ?? []).map((part) => [part.PartNumber!, `${part.ETag} ${part.LastModified?.toISOString()}`]));
  };
  const until = async <T>(what: string, check: () => Promise<T | undefined>): Promise<T> => {
    const deadline = Date.now() + 240_000;
    for (;;) {
      const value = await check();
      if (value !== undefined) return value;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  const key = `exports/${p}/killed.csv`;
  let killedRun = '';
  await withKillableWorker(async (killAndRestart) => {
    killedRun = await startRun(stack, 'export', { ...params, destination: key });
    await until('two committed parts', async () => ((await stored(killedRun))?.position.parts.length ?? 0) >= 2 || undefined);
    await killAndRestart();
    // The new worker takes over once the killed attempt's heartbeat times out; until then nothing moves.
    const atKill = (await stored(killedRun))!;
    assert.ok(!atKill.position.finished, 'killed before the last part');
    const uploadId = atKill.position.uploadId!;
    const before = await listParts(key, uploadId);
    const finished = atKill.position.parts.map((_, i) => i + 1);
    for (const n of finished) assert.ok(before.get(n)?.startsWith(atKill.position.parts[n - 1]!), `part ${n} is in the upload with its committed ETag`);

    // Once the resumed run has committed a part of its own, the parts finished before the kill are as they were: not sent again.
    await until('a part committed after the restart', async () => ((await stored(killedRun))!.seq > atKill.seq ? true : undefined));
    const afterResume = await listParts(key, uploadId);
    for (const n of finished) assert.equal(afterResume.get(n), before.get(n), `part ${n} was not sent again`);

    const run = await waitForRun(stack, killedRun, undefined, 240_000);
    assert.equal(run.status, 'success', JSON.stringify(run.error ?? run.result?.error));
    assert.deepEqual({ processed: run.result!.counts.processed, succeeded: run.result!.counts.succeeded }, { processed: rows, succeeded: rows });
    assert.equal(run.result!.outputs[0]!.rows, rows);
  });

  // The same export without a kill, on a fresh worker: the same bytes.
  const worker = spawnWorker(stack.config);
  try {
    const uninterrupted = await waitForRun(stack, await startRun(stack, 'export', { ...params, destination: `exports/${p}/uninterrupted.csv` }), undefined, 240_000);
    assert.equal(uninterrupted.status, 'success');
    const killed = await waitForRun(stack, killedRun);
    const [a, b] = [killed.result!.outputs[0]!, uninterrupted.result!.outputs[0]!];
    assert.equal(a.bytes, b.bytes);
    assert.equal(a.sha256, b.sha256, 'the SHA-256 of the resumed export equals the uninterrupted one');
    const sha256 = (body: Buffer) => createHash('sha256').update(body).digest('hex');
    assert.equal(sha256((await download(stack, killedRun)).body), a.sha256, 'and it is the SHA-256 of the stored file');
    assert.equal(sha256((await download(stack, uninterrupted.runId)).body), b.sha256);
  } finally {
    worker.kill('SIGTERM');
    await worker.exited;
  }
});
