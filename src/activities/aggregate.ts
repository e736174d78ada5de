import type { DatasetRegistry } from '../datasets';
import type { Pool } from '../db/pool';
import { rollupQueries } from '../db/rollups';
import { checkAggregateParams, type DatePosition } from '../jobs/aggregate';
import type { Checkpoint } from '../jobs/checkpoint';
import { addDays, type DateRange } from '../jobs/dates';
import type { RunRef } from '../jobs/run';
import { rollups, type RollupName } from '../rollups';
import { runSlice, type Batch } from './batch-runner';
import { requireDataset, requireValidParams } from './params';

export interface AggregateSliceInput {
  run: RunRef;
  rollups: RollupName[];
  range: DateRange;
  cursor?: Checkpoint<DatePosition>;
}

interface DateBatch extends Batch<DatePosition> {
  date: string;
}

/** One batch per date, from the date after the checkpoint's to the end of the range. */
// eslint-disable-next-line @typescript-eslint/require-await -- the batch runner reads an async iterable; dates need no I/O
async function* dateBatches(range: DateRange, from: Checkpoint<DatePosition>): AsyncGenerator<DateBatch> {
  for (let date = from.position.lastDate ? addDays(from.position.lastDate, 1) : range.from; date <= range.to; date = addDays(date, 1)) {
    yield { date, end: { lastDate: date }, errors: [], rejectedRows: 0 };
  }
}

export function createAggregateActivities(deps: { pool: Pool; datasets: DatasetRegistry; sliceMs: number }) {
  const datasetOf = (name: string) => requireDataset(deps.datasets, name);
  return {
    /** Computes date after date, each date's roll-up rows committed with the checkpoint, for about sliceMs. */
    async aggregateSlice({ run, rollups: names, range, cursor }: AggregateSliceInput): Promise<Checkpoint<DatePosition>> {
      // Every slice, as the run has no planning step: the check is in memory.
      requireValidParams(checkAggregateParams({ rollups: names }, deps.datasets));
      return runSlice<DatePosition, DateBatch>({
        pool: deps.pool,
        run,
        sliceMs: deps.sliceMs,
        // A date has no rows to reject: it is computed or the slice fails and is retried.
        policy: { errorHandling: 'continue_on_error' },
        cursor,
        initialPosition: {},
        batches: (from) => dateBatches(range, from),
        async apply(client, batch) {
          for (const name of names) await rollupQueries.upsertDay(client, rollups[name], datasetOf, batch.date, run.id);
          return { succeeded: 1, skipped: 0, errors: [], rejectedRows: 0 };
        },
      });
    },
  };
}
