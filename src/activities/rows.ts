import { isPermanentDbError, type Pool, type PoolClient } from '../db/pool';
import { rowQueries, type IdBatch, type IdSource, type RowSelection } from '../db/rows';
import { ErrorCode, permanentFailure } from '../errors';
import type { Checkpoint } from '../jobs/checkpoint';
import type { ErrorPolicy, Preview, RunOutput } from '../jobs/run';
import { runSlice, type Applied, type Batch } from './batch-runner';

/**
 * Batches over rows already in a dataset, shared by the flows that change or delete them (bulk
 * update, cleanup) or read them (validate_data). Batches go in keyset order by id, one target
 * after another, and never past the highest id that matched when the run was planned.
 */

/** Where a run over existing rows stands: which target, and the last id done in it. */
export interface KeysetPosition {
  step: number;
  lastId: number;
}
export const keysetStart: KeysetPosition = { step: 0, lastId: 0 };

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
  runId: string;
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
    if (!isPermanentDbError(err)) throw err;
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

/** What a run over existing rows settled before changing anything: its clock, its preview, its bounds. */
export interface RunPlan {
  /** "now" for the run's relative times, fixed for its whole life. */
  asOf: string;
  preview: Preview;
  /** Per target, the highest id that matched. */
  bounds: number[];
  /** Units of work in the loop, when not one per matched row (several steps over the same rows). */
  total?: number;
  /** What planning wrote (a dedupe's report), for the result's outputs. */
  outputs?: RunOutput[];
  /** What planning noticed that the result should say (positions and counts only). */
  warnings?: string[];
}

/** Plans a run; a query the database refuses for good fails the run instead of retrying forever. */
export async function planOrFail<T>(plan: () => Promise<T>): Promise<T> {
  try {
    return await plan();
  } catch (err) {
    if (isPermanentDbError(err)) throw permanentFailure(ErrorCode.InvalidParams, `the database refused the run's filter: ${err.message}`);
    throw err;
  }
}
