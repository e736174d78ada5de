import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, it } from 'node:test';
import { ListPartsCommand } from '@aws-sdk/client-s3';
import type { Checkpoint } from '../../src/jobs/checkpoint';
import { dayCount } from '../../src/jobs/dates';
import type { ExportPosition } from '../../src/jobs/export';
import { expectedStats, insertSeed, removeSeed, statsRows, type RollupSeed } from '../helpers/rollups';
import {
  countUsers,
  download,
  openStack,
  ownUsers,
  seedUsers,
  spawnWorker,
  startRun,
  statusCounts,
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

it('a worker killed mid-export (SIGKILL) and restarted: finished parts are not sent again, and the file is byte-identical to an uninterrupted export', async () => {
  const rows = 400_000;
  const p = uniqueId('killexp');
  await seedUsers(stack.pool, p, rows);
  const params = { dataset: 'users', where: ownUsers(p), partSizeMb: 5 };
  const { client, bucket } = stack.objects.s3!;
  const stored = async (runId: string) =>
    (await stack.pool.query<{ checkpoint: Checkpoint<ExportPosition> }>('SELECT checkpoint FROM run_checkpoints WHERE run_id = $1', [runId])).rows[0]?.checkpoint;
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
