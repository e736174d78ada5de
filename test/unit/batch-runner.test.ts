import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import { runSlice, SupersededAttempt, type Applied, type Batch } from '../../src/activities/batch-runner';
import { createPool, type Pool, type PoolClient } from '../../src/db/pool';
import type { Checkpoint } from '../../src/jobs/checkpoint';
import type { ErrorPolicy } from '../../src/jobs/run';

// The runner against a real Postgres: `npm test` provides one (DATABASE_URL); `npm run test:unit` skips this.
const databaseUrl = process.env.DATABASE_URL;

/** A test batch: its number is its position; it rejects `rejected` rows and its load takes `loadMs`. */
interface NumberedBatch extends Batch<number> {
  loadMs: number;
}
const batch = (end: number, opts: { loadMs?: number; rejected?: number; waitForPrevious?: boolean; handBack?: boolean } = {}): NumberedBatch => ({
  end,
  errors: Array.from({ length: opts.rejected ?? 0 }, (_, i) => ({ row: end * 100 + i, line: null, field: null, code: 'VALIDATION_FAILED', message: 'bad', raw: null })),
  rejectedRows: opts.rejected ?? 0,
  loadMs: opts.loadMs ?? 0,
  waitForPrevious: opts.waitForPrevious,
  handBack: opts.handBack,
});

describe('checkpointed batch loop', { skip: !databaseUrl && 'needs DATABASE_URL (npm test starts Postgres)' }, () => {
  let pool: Pool;
  before(async () => {
    pool = createPool(databaseUrl!, 4);
    await pool.query('CREATE TABLE IF NOT EXISTS test_runner_marks (run_id text, batch integer)');
  });
  after(async () => {
    await pool.query('DROP TABLE IF EXISTS test_runner_marks');
    await pool.end();
  });

  /** Runs one slice over `batches`, recording when each load starts and ends, and every heartbeat. */
  async function slice(batches: NumberedBatch[], opts: { parallelBatches: number; policy?: ErrorPolicy; runId?: string; heartbeatMs?: number }) {
    const runId = opts.runId ?? `runner-${randomUUID()}`;
    const events: string[] = [];
    const env = new MockActivityEnvironment();
    const heartbeats: number[] = [];
    env.on('heartbeat', (c: Checkpoint<number>) => heartbeats.push(c.position));
    const checkpoint: Checkpoint<number> = await env.run(() =>
      runSlice<number, NumberedBatch>({
        pool,
        run: { id: runId, execution: runId },
        sliceMs: 60_000,
        policy: opts.policy ?? { errorHandling: 'continue_on_error' },
        cursor: undefined,
        initialPosition: 0,
        parallelBatches: opts.parallelBatches,
        heartbeatMs: opts.heartbeatMs,
        batches: async function* () {
          for (const b of batches) yield await Promise.resolve(b);
        },
        async apply(client: PoolClient, b: NumberedBatch): Promise<Applied> {
          events.push(`start ${b.end}`);
          await client.query('INSERT INTO test_runner_marks VALUES ($1, $2)', [runId, b.end]);
          await sleep(b.loadMs);
          events.push(`end ${b.end}`);
          return { succeeded: 1, skipped: 0, errors: [], rejectedRows: 0 };
        },
      }),
    );
    const marks = (await pool.query<{ batch: number }>('SELECT batch FROM test_runner_marks WHERE run_id = $1 ORDER BY batch', [runId])).rows.map((r) => r.batch);
    const errors = (await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM run_errors WHERE execution_id = $1', [runId])).rows[0]!.n;
    return { checkpoint, events, heartbeats, marks, errors };
  }

  it('loads two batches side by side and commits them in order', async () => {
    const run = await slice([batch(1, { loadMs: 300 }), batch(2), batch(3, { loadMs: 100 }), batch(4)], { parallelBatches: 2 });
    assert.ok(run.events.indexOf('start 2') < run.events.indexOf('end 1'), `batch 2 loads while batch 1 does: ${run.events.join(', ')}`);
    assert.deepEqual(run.heartbeats, [1, 2, 3, 4], 'checkpoints commit in input order');
    assert.deepEqual(run.marks, [1, 2, 3, 4]);
    assert.deepEqual([run.checkpoint.seq, run.checkpoint.done, run.checkpoint.counts.succeeded], [4, true, 4]);
  });

  it('ends the slice after a batch its producer hands back with, without asking for the next', async () => {
    const run = await slice([batch(1), batch(2, { handBack: true }), batch(3)], { parallelBatches: 1 });
    assert.deepEqual(run.marks, [1, 2]);
    assert.deepEqual([run.checkpoint.position, run.checkpoint.done], [2, false]);
  });

  it('heartbeats the committed checkpoint while a long batch loads, so a live worker never looks dead', async () => {
    const run = await slice([batch(1, { loadMs: 5_500 })], { parallelBatches: 1 });
    assert.equal(run.heartbeats[0], 0, `a heartbeat before the first commit: ${run.heartbeats.join(', ')}`);
    assert.equal(run.heartbeats.at(-1), 1);
  });

  it('never has more than parallelBatches loading', async () => {
    const run = await slice([batch(1, { loadMs: 200 }), batch(2, { loadMs: 200 }), batch(3)], { parallelBatches: 2 });
    assert.ok(run.events.indexOf('start 3') > run.events.indexOf('end 1'), run.events.join(', '));
    const serial = await slice([batch(1, { loadMs: 100 }), batch(2)], { parallelBatches: 1 });
    assert.deepEqual(serial.events, ['start 1', 'end 1', 'start 2', 'end 2']);
  });

  it('a batch that touches the rows of the one before waits for it to commit', async () => {
    const run = await slice([batch(1, { loadMs: 200 }), batch(2, { waitForPrevious: true })], { parallelBatches: 2 });
    assert.deepEqual(run.events, ['start 1', 'end 1', 'start 2', 'end 2']);
    assert.deepEqual(run.heartbeats, [1, 2]);
  });

  it('three batches loading at once: a batch that touches rows of one still loading waits for every batch before it', async () => {
    const run = await slice([batch(1, { loadMs: 300 }), batch(2, { loadMs: 100 }), batch(3, { waitForPrevious: true }), batch(4)], { parallelBatches: 3 });
    assert.ok(run.events.indexOf('start 2') < run.events.indexOf('end 1'), `batch 2 loads beside batch 1: ${run.events.join(', ')}`);
    assert.ok(run.events.indexOf('start 3') > run.events.indexOf('end 1') && run.events.indexOf('start 3') > run.events.indexOf('end 2'), run.events.join(', '));
    assert.deepEqual(run.heartbeats, [1, 2, 3, 4]);
    assert.deepEqual(run.marks, [1, 2, 3, 4]);
  });

  it('keeps heartbeating the committed checkpoint while a batch takes long', async () => {
    const run = await slice([batch(1), batch(2, { loadMs: 700 })], { parallelBatches: 1, heartbeatMs: 100 });
    // Between batch 1's commit and batch 2's, periodic heartbeats carry batch 1's checkpoint.
    const during = run.heartbeats.slice(run.heartbeats.indexOf(1) + 1, run.heartbeats.indexOf(2));
    assert.ok(during.length >= 3, `heartbeats: ${run.heartbeats.join(', ')}`);
    assert.ok(during.every((position) => position === 1), `heartbeats: ${run.heartbeats.join(', ')}`);
    assert.equal(run.heartbeats.at(-1), 2);
  });

  it('a batch loading beside one that stops the run is rolled back, not committed', async () => {
    const run = await slice([batch(1), batch(2, { rejected: 3, loadMs: 200 }), batch(3), batch(4)], { parallelBatches: 2, policy: { errorHandling: 'continue_on_error', maxErrors: 2 } });
    assert.ok(run.events.includes('end 3'), 'batch 3 loaded beside batch 2');
    assert.deepEqual(run.marks, [1, 2], "batch 3's writes were rolled back");
    assert.deepEqual(run.heartbeats, [1, 2]);
    assert.equal(run.checkpoint.stop?.code, 'TOO_MANY_ERRORS');
    assert.deepEqual([run.checkpoint.seq, run.checkpoint.position, run.checkpoint.counts.failed, run.errors], [2, 2, 3, 3]);
  });

  it('two attempts of one slice running at once apply each batch exactly once', async () => {
    const runId = `runner-${randomUUID()}`;
    const batches = () => [batch(1, { loadMs: 50 }), batch(2, { loadMs: 50 }), batch(3, { loadMs: 50 })];
    const attempts = await Promise.allSettled([slice(batches(), { parallelBatches: 2, runId }), slice(batches(), { parallelBatches: 2, runId })]);
    for (const a of attempts) if (a.status === 'rejected') assert.ok(a.reason instanceof SupersededAttempt, String(a.reason));
    const won = attempts.find((a) => a.status === 'fulfilled');
    assert.ok(won, 'one attempt finishes the slice');
    assert.deepEqual(won.value.marks, [1, 2, 3], 'each batch was applied once');
    assert.deepEqual([won.value.checkpoint.seq, won.value.checkpoint.counts.succeeded], [3, 3]);
  });
});
