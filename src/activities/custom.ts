import { z } from 'zod';
import type { DatasetRegistry } from '../datasets';
import type { Pool } from '../db/pool';
import { rowQueries, type RowSelection } from '../db/row-queries';
import { ErrorCode } from '../errors';
import { keysetStart, type Checkpoint, type KeysetPosition } from '../jobs/checkpoint';
import { checkCustomParams, type CustomParams } from '../jobs/custom';
import type { RowError, RunRef } from '../jobs/run';
import { runSlice, type Batch } from './batch-runner';
import { requireDataset, requireValidParams } from './params';

export interface CustomSliceInput {
  run: RunRef;
  params: CustomParams;
  cursor?: Checkpoint<KeysetPosition>;
}

interface CheckedPage extends Batch<KeysetPosition> {
  valid: number;
}

// Values as Postgres returns them, back in the shape the dataset's validation expects.
const asInput = (v: unknown) => (v instanceof Date ? v.toISOString() : typeof v === 'number' ? String(v) : (v ?? undefined));

/** validate_data: pages of rows, each checked against the dataset's declaration. */
async function* checkedPages(pool: Pool, selection: RowSelection, batchSize: number, from: Checkpoint<KeysetPosition>): AsyncGenerator<CheckedPage> {
  const { dataset } = selection;
  const schema = z.object(Object.fromEntries(dataset.columnNames.map((c) => [c, dataset.columns[c]!.schema])));
  for (let after = from.position.lastId; ; ) {
    const rows = await rowQueries.page(pool, selection, after, batchSize);
    if (rows.length === 0) return;
    const errors: RowError[] = [];
    let rejected = 0;
    for (const row of rows) {
      const id = Number(row[dataset.idColumn]);
      const parsed = schema.safeParse(Object.fromEntries(dataset.columnNames.map((c) => [c, asInput(row[c])])));
      if (parsed.success) continue;
      rejected += 1;
      for (const issue of parsed.error.issues) {
        errors.push({ row: id, line: null, field: issue.path.join('.') || null, code: ErrorCode.ValidationFailed, message: issue.message, raw: dataset.redact(row) });
      }
    }
    after = Number(rows.at(-1)![dataset.idColumn]);
    yield { end: { step: 0, lastId: after }, errors, rejectedRows: rejected, valid: rows.length - rejected, dataset: dataset.name };
  }
}

/** Custom steps registered in code; each is a checkpointed slice like the built-in flows. */
export function createCustomActivities(deps: { pool: Pool; datasets: DatasetRegistry; sliceMs: number }) {
  return {
    async customStepSlice({ run, params, cursor }: CustomSliceInput): Promise<Checkpoint<KeysetPosition>> {
      requireValidParams(checkCustomParams(params, deps.datasets));
      switch (params.step) {
        case 'validate_data': {
          // A validation run's "now" is each slice's own: it changes nothing, so drift is harmless.
          const selection = { dataset: requireDataset(deps.datasets, params.dataset), where: params.where, asOf: new Date() };
          if (!cursor) await rowQueries.analyzeIfStale(deps.pool, selection.dataset);
          return runSlice<KeysetPosition, CheckedPage>({
            pool: deps.pool,
            run,
            sliceMs: deps.sliceMs,
            policy: params,
            cursor,
            initialPosition: keysetStart,
            batches: (from) => checkedPages(deps.pool, selection, params.batchSize, from),
            // Nothing to write: the page's row errors are stored with its checkpoint.
            apply: (_client, page) => Promise.resolve({ succeeded: page.valid, skipped: 0, errors: [], rejectedRows: 0 }),
          });
        }
      }
    },
  };
}
