import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import { runSlice, type Batch } from '../../src/activities/batch-runner';
import { createPool, type Pool } from '../../src/db/pool';
import type { Checkpoint } from '../../src/jobs/checkpoint';
import { workerRegistry } from '../../src/metrics/worker';
import { sample } from '../helpers/prometheus';

// The runner against a real Postgres: `npm test` provides one (DATABASE_URL); `npm run test:unit` skips this.
const databaseUrl = process.env.DATABASE_URL;

const value = async (name: string, labels: Record<string, string>) => sample(await workerRegistry.metrics(), name, labels);

describe('what the batch runner counts', { skip: !databaseUrl && 'needs DATABASE_URL (npm test starts Postgres)' }, () => {
  let pool: Pool;
  before(() => {
    pool = createPool(databaseUrl!, 2);
  });
  after(() => pool.end());

  it('rows per kind and dataset, batches, retried slices (with a warning); rows per dataset in the checkpoint', async () => {
    const labels = { kind: 'cleanup', dataset: 'sessions' };
    const before = {
      processed: await value('batchflow_rows_processed_total', labels),
      rejected: await value('batchflow_rows_rejected_total', labels),
      skipped: await value('batchflow_rows_skipped_total', labels),
      batches: await value('batchflow_batch_duration_seconds_count', labels),
      retries: await value('batchflow_slice_retries_total', { kind: 'cleanup' }),
    };
    // A second attempt of a cleanup slice: two batches of sessions, one of tokens.
    const batches: Batch<number>[] = [
      { end: 1, errors: [], rejectedRows: 0, dataset: 'sessions' },
      { end: 2, errors: [{ row: 7, line: null, field: null, code: 'BATCH_FAILED', message: 'refused', raw: null }], rejectedRows: 1, dataset: 'sessions' },
      { end: 3, errors: [], rejectedRows: 0, dataset: 'verification_tokens' },
    ];
    const logged: { level: string; message: string; meta?: Record<string, unknown> }[] = [];
    const record = (level: string) => (message: string, meta?: Record<string, unknown>) => void logged.push({ level, message, meta });
    const logger = { log: (level: string, message: string, meta?: Record<string, unknown>) => record(level)(message, meta), trace: record('TRACE'), debug: record('DEBUG'), info: record('INFO'), warn: record('WARN'), error: record('ERROR') };
    const env = new MockActivityEnvironment({ attempt: 2, workflowType: 'cleanupWorkflow' }, { logger });
    const checkpoint: Checkpoint<number> = await env.run(() =>
      runSlice<number, Batch<number>>({
        pool,
        run: { id: 'metrics', execution: `metrics-${randomUUID()}` },
        sliceMs: 60_000,
        policy: { errorHandling: 'continue_on_error' },
        cursor: undefined,
        initialPosition: 0,
        batches: async function* () {
          for (const b of batches) yield await Promise.resolve(b);
        },
        apply: () => Promise.resolve({ succeeded: 3, skipped: 1, errors: [], rejectedRows: 0 }),
      }),
    );
    assert.deepEqual(
      {
        processed: (await value('batchflow_rows_processed_total', labels)) - before.processed,
        rejected: (await value('batchflow_rows_rejected_total', labels)) - before.rejected,
        skipped: (await value('batchflow_rows_skipped_total', labels)) - before.skipped,
        batches: (await value('batchflow_batch_duration_seconds_count', labels)) - before.batches,
        retries: (await value('batchflow_slice_retries_total', { kind: 'cleanup' })) - before.retries,
      },
      // Each batch: 3 succeeded and 1 skipped, plus the rejected row of the second.
      { processed: 9, rejected: 1, skipped: 2, batches: 2, retries: 1 },
    );
    const retried = logged.find((l) => l.message.startsWith('slice retried'));
    assert.equal(retried?.level, 'WARN', JSON.stringify(logged));
    assert.deepEqual([retried.meta?.attempt, retried.meta?.batch], [2, 0], 'the attempt, and the batch it resumes after');
    assert.deepEqual(checkpoint.byDataset, {
      sessions: { processed: 9, succeeded: 6, failed: 1, skipped: 2 },
      verification_tokens: { processed: 4, succeeded: 3, failed: 0, skipped: 1 },
    });
  });
});
