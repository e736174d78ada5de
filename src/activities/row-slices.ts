import { isRowRefusal, type Pool, type PoolClient } from '../db/pool';
import { runState } from '../db/queries';
import { rowQueries, type IdBatch, type IdSource, type RowSelection } from '../db/row-queries';
import { ErrorCode, permanentFailure } from '../errors';
import { keysetStart, type Checkpoint, type KeysetPosition } from '../jobs/checkpoint';
import type { ErrorPolicy, PreviewSamples, RunPlan, RunRef } from '../jobs/run';
import { heartbeating, runSlice, type Applied, type Batch } from './batch-runner';

/**
 * Batches over rows already in a dataset, shared by the flows that change or delete them (bulk
 * update, cleanup) or read them (validate_data). Batches go in keyset order by id, one target
 * after another, and never past the highest id that matched when the run was planned.
 */

/** One part of such a run: a cleanup rule, or a bulk update's single selection. */
export interface RowTarget {
  name: string;
  selection: RowSelection;
  ids?: IdSource;
  /** The highest matching id when the run was planned. */
  upTo: number;
  batchSize: number;
  /** Each batch loads only once the one before it has committed (batches that share a lock, such as a counter). */
  serial?: boolean;
}

export interface RowBatch extends Batch<KeysetPosition> {
  target: RowTarget;
  rows: IdBatch;
}

/** Batches from a checkpoint on: id ranges holding batchSize matching rows each, or pages of listed ids. */
export async function* rowBatches(pool: Pool, targets: readonly RowTarget[], from: Checkpoint<KeysetPosition>): AsyncGenerator<RowBatch> {
  for (let step = from.position.step; step < targets.length; step++) {
    const target = targets[step]!;
    let after = step === from.position.step ? from.position.lastId : 0;
    // A target's first batch may touch the rows the previous target's last batch did (targets are
    // steps over the same rows): it waits for that one to commit.
    let first = step > 0;
    const batch = (rows: IdBatch, lastId: number): RowBatch => {
      const waitForPrevious = first || target.serial;
      first = false;
      return { end: { step, lastId }, errors: [], rejectedRows: 0, target, rows, step: target.name, dataset: target.selection.dataset.name, ...(waitForPrevious && { waitForPrevious }) };
    };
    if (target.ids) {
      for (;;) {
        const ids = await nextIds(pool, target.ids, after, target.batchSize);
        if (ids.length === 0) break;
        after = ids.at(-1)!;
        yield batch({ ids }, after);
      }
      continue;
    }
    while (after < target.upTo) {
      const end = (await rowQueries.batchEnd(pool, target.selection, after, target.upTo, target.batchSize)) ?? target.upTo;
      yield batch({ after, upTo: end }, end);
      after = end;
    }
  }
}

async function nextIds(pool: Pool, ids: IdSource, after: number, limit: number): Promise<number[]> {
  if ('listId' in ids) return rowQueries.idListPage(pool, ids.listId, after, limit);
  // Inline ids are sorted and distinct: find the first one past `after`.
  let lo = 0;
  for (let hi = ids.inline.length; lo < hi; ) {
    const mid = (lo + hi) >>> 1;
    if (ids.inline[mid]! <= after) lo = mid + 1;
    else hi = mid;
  }
  return ids.inline.slice(lo, lo + limit);
}

/**
 * A slice over existing rows: keyset batches of the targets, each applied under a savepoint.
 * Batches of one target are disjoint id ranges, so they may load side by side (`parallelBatches`).
 */
export function runRowSlice(spec: {
  pool: Pool;
  run: RunRef;
  sliceMs: number;
  policy: ErrorPolicy;
  cursor: Checkpoint<KeysetPosition> | undefined;
  targets: readonly RowTarget[];
  apply: (client: PoolClient, batch: RowBatch) => Promise<Applied>;
  parallelBatches?: number;
}): Promise<Checkpoint<KeysetPosition>> {
  return runSlice<KeysetPosition, RowBatch>({
    ...spec,
    initialPosition: keysetStart,
    batches: (from) => rowBatches(spec.pool, spec.targets, from),
    apply: (client, batch) => applyOrRecordFailure(client, batch, () => spec.apply(client, batch)),
  });
}

/**
 * Applies a batch under a savepoint. When the database refuses it for good (a constraint, a
 * trigger), the batch is rolled back alone and recorded as one error naming the ids it affected;
 * the error policy then decides whether the run goes on.
 */
async function applyOrRecordFailure(client: PoolClient, batch: RowBatch, work: () => Promise<Applied>): Promise<Applied> {
  await client.query('SAVEPOINT bf_batch');
  try {
    const applied = await work();
    await client.query('RELEASE SAVEPOINT bf_batch');
    return applied;
  } catch (err) {
    if (!isRowRefusal(err)) throw err;
    await client.query('ROLLBACK TO SAVEPOINT bf_batch');
    const ids = await rowQueries.matchingIds(client, batch.target.selection, batch.rows);
    const range = ids.length > 0 ? ` (ids ${ids[0]}–${ids.at(-1)})` : '';
    return {
      succeeded: 0,
      skipped: 0,
      rejectedRows: ids.length,
      errors: [{ row: null, line: null, field: null, code: ErrorCode.BatchFailed, message: `${batch.target.name}: a batch of ${ids.length} rows${range} failed: ${err.message}`, raw: { ids } }],
    };
  }
}

/**
 * Plans a run: registers it (its state is kept from here on) and runs `plan`, heartbeating however
 * long that takes. A filter value the database refuses (a data exception) fails the run as bad
 * params instead of being retried.
 */
export async function planOrFail<T>(pool: Pool, run: RunRef, plan: () => Promise<T>): Promise<T> {
  return heartbeating(async () => {
    await runState.register(pool, run);
    try {
      return await plan();
    } catch (err) {
      if (isRowRefusal(err)) throw permanentFailure(ErrorCode.InvalidParams, `the database refused the run's filter: ${err.message}`);
      throw err;
    }
  });
}

/**
 * Plans a run over existing rows: counts and samples them, and stores the sample rows for the API
 * to show; the plan it returns, which enters workflow history, holds counts and bounds only.
 */
export async function planRun(pool: Pool, run: RunRef, plan: () => Promise<{ plan: RunPlan; samples: PreviewSamples }>): Promise<RunPlan> {
  return planOrFail(pool, run, async () => {
    const planned = await plan();
    await runState.storePreviewSamples(pool, run.execution, planned.samples);
    return planned.plan;
  });
}
