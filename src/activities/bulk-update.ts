import type { Dataset, DatasetRegistry } from '../datasets';
import type { Pool } from '../db/pool';
import { rowQueries, sortedDistinct, type IdSource, type RowSelection } from '../db/row-queries';
import { ErrorCode } from '../errors';
import { checkBulkUpdateParams, type BulkUpdateParams } from '../jobs/bulk-update';
import type { Checkpoint, KeysetPosition } from '../jobs/checkpoint';
import { resolveSet } from '../jobs/filter';
import type { RunPlan, RunRef } from '../jobs/run';
import { requireDataset, requireValidParams } from './params';
import { planRun, runRowSlice, type RowTarget } from './row-slices';

export interface BulkUpdateSliceInput {
  run: RunRef;
  params: BulkUpdateParams;
  plan: RunPlan;
  cursor?: Checkpoint<KeysetPosition>;
}

function selectionOf(datasets: DatasetRegistry, params: BulkUpdateParams, asOf: string): { selection: RowSelection; ids?: IdSource } {
  const selection = { dataset: requireDataset(datasets, params.dataset), where: params.where, asOf: new Date(asOf) };
  const ids: IdSource | undefined = params.idList ? { listId: params.idList } : params.ids ? { inline: sortedDistinct(params.ids) } : undefined;
  return { selection, ids };
}

const pick = (row: Record<string, unknown>, columns: readonly string[]) => Object.fromEntries(columns.map((c) => [c, row[c]]));

/** A sample row as the preview shows it: which row, and its values before and after. */
function previewRow(dataset: Dataset, row: Record<string, unknown>, after: Record<string, unknown>) {
  const columns = Object.keys(after);
  return { ...pick(row, [dataset.idColumn, ...dataset.key]), before: pick(row, columns), after };
}

export function createBulkUpdateActivities(deps: { pool: Pool; datasets: DatasetRegistry; sliceMs: number; parallelBatches: number }) {
  const { pool } = deps;
  return {
    /** Counts and samples the rows a bulk update would change, and fixes the highest id it may reach. */
    async planBulkUpdate({ run, params, asOf }: { run: RunRef; params: BulkUpdateParams; asOf: string }): Promise<RunPlan> {
      requireValidParams(checkBulkUpdateParams(params, deps.datasets));
      return planRun(pool, run, async () => {
        const { selection, ids } = selectionOf(deps.datasets, params, asOf);
        // The run uses the stored list: it must outlive the retention period as long as the run does.
        if (ids && 'listId' in ids) await rowQueries.referenceIdList(pool, run.execution, ids.listId);
        const values = resolveSet(selection.dataset, params.set, selection.asOf);
        await rowQueries.analyzeIfStale(pool, selection.dataset);
        const [{ matched, maxId }, sample] = await Promise.all([rowQueries.count(pool, selection, ids), rowQueries.sample(pool, selection, params.sampleSize, ids)]);
        let notFound: number | undefined;
        if (ids) {
          const listed = 'inline' in ids ? ids.inline.length : await rowQueries.idListCount(pool, ids.listId);
          notFound = listed - (await rowQueries.count(pool, { ...selection, where: undefined }, ids)).matched;
        }
        return {
          plan: { asOf, preview: { matched, ...(notFound !== undefined && { notFound }) }, bounds: [maxId] },
          samples: { sample: sample.map((row) => previewRow(selection.dataset, row, values)) },
        };
      });
    },

    /** Updates batch after batch from the run's checkpoint for about sliceMs. */
    async bulkUpdateSlice({ run, params, plan, cursor }: BulkUpdateSliceInput): Promise<Checkpoint<KeysetPosition>> {
      const { selection, ids } = selectionOf(deps.datasets, params, plan.asOf);
      const values = resolveSet(selection.dataset, params.set, selection.asOf);
      const target: RowTarget = { name: 'update', selection, ids, upTo: plan.bounds[0]!, batchSize: params.batchSize };
      return runRowSlice({
        pool,
        run,
        sliceMs: deps.sliceMs,
        policy: params,
        cursor,
        targets: [target],
        // One target, disjoint id ranges: no two batches touch the same row.
        parallelBatches: deps.parallelBatches,
        async apply(client, batch) {
          const updated = await rowQueries.update(client, selection, batch.rows, values);
          if (!('ids' in batch.rows)) return { succeeded: updated.count, skipped: 0, updated: updated.count, errors: [], rejectedRows: 0 };
          // Listed ids that were not updated: those that exist did not match the filter
          // (skipped); those that do not exist are reported, never dropped silently.
          const changed = new Set(updated.ids);
          const unchanged = batch.rows.ids.filter((id) => !changed.has(id));
          const existing = unchanged.length > 0 ? await rowQueries.existingIds(client, selection, unchanged) : new Set<number>();
          const missing = unchanged.filter((id) => !existing.has(id));
          return {
            succeeded: updated.count,
            skipped: existing.size,
            updated: updated.count,
            errors: missing.map((id) => ({ row: id, line: null, field: selection.dataset.idColumn, code: ErrorCode.NotFound, message: `no ${selection.dataset.name} row with ${selection.dataset.idColumn} ${id}`, raw: { id } })),
            rejectedRows: missing.length,
          };
        },
      });
    },
  };
}
