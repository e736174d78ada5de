import type { DatasetRegistry } from '../datasets';
import type { Pool } from '../db/pool';
import { rowQueries } from '../db/row-queries';
import type { Checkpoint, KeysetPosition } from '../jobs/checkpoint';
import { checkCleanupParams, cleanupRules, type CleanupParams } from '../jobs/cleanup';
import type { RunPlan, RunRef } from '../jobs/run';
import { requireDataset, requireValidParams } from './params';
import { planRun, runRowSlice, type RowTarget } from './row-slices';

export interface CleanupSliceInput {
  run: RunRef;
  params: CleanupParams;
  plan: RunPlan;
  cursor?: Checkpoint<KeysetPosition>;
}

const selectionsOf = (datasets: DatasetRegistry, params: CleanupParams, asOf: string) =>
  cleanupRules(params).map((rule) => ({ rule, selection: { dataset: requireDataset(datasets, rule.dataset), where: rule.where, asOf: new Date(asOf) } }));

export function createCleanupActivities(deps: { pool: Pool; datasets: DatasetRegistry; sliceMs: number }) {
  const { pool } = deps;
  return {
    /** Counts and samples what each rule would delete, and fixes the highest id each may reach. */
    async planCleanup({ run, params, asOf }: { run: RunRef; params: CleanupParams; asOf: string }): Promise<RunPlan> {
      requireValidParams(checkCleanupParams(params, deps.datasets));
      return planRun(pool, run, async () => {
        const selections = selectionsOf(deps.datasets, params, asOf);
        // Several rules may share a table: check its statistics once.
        await Promise.all([...new Set(selections.map((s) => s.selection.dataset))].map((dataset) => rowQueries.analyzeIfStale(pool, dataset)));
        const planned = await Promise.all(
          selections.map(async ({ rule, selection }) => {
            const [{ matched, maxId }, sample] = await Promise.all([rowQueries.count(pool, selection), rowQueries.sample(pool, selection, params.sampleSize)]);
            return { name: rule.name, matched, maxId, sample };
          }),
        );
        return {
          plan: {
            asOf,
            preview: { matched: planned.reduce((n, p) => n + p.matched, 0), steps: Object.fromEntries(planned.map((p) => [p.name, { matched: p.matched }])) },
            bounds: planned.map((p) => p.maxId),
          },
          samples: {
            sample: planned.flatMap((p) => p.sample.map((row) => ({ rule: p.name, ...row }))).slice(0, params.sampleSize),
            steps: Object.fromEntries(planned.map((p) => [p.name, p.sample])),
          },
        };
      });
    },

    /** Deletes rule after rule, batch after batch, from the run's checkpoint for about sliceMs. */
    async cleanupSlice({ run, params, plan, cursor }: CleanupSliceInput): Promise<Checkpoint<KeysetPosition>> {
      const targets: RowTarget[] = selectionsOf(deps.datasets, params, plan.asOf).map(({ rule, selection }, i) => ({
        name: rule.name,
        selection,
        upTo: plan.bounds[i]!,
        batchSize: rule.batchSize,
      }));
      return runRowSlice({
        pool,
        run,
        sliceMs: deps.sliceMs,
        policy: params,
        cursor,
        targets,
        async apply(client, batch) {
          const deleted = await rowQueries.delete(client, batch.target.selection, batch.rows);
          return { succeeded: deleted, skipped: 0, errors: [], rejectedRows: 0 };
        },
      });
    },
  };
}
