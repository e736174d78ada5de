import type { Pool } from '../db/pool';
import { runState } from '../db/queries';
import { statsQueries } from '../db/stats';
import type { Checkpoint } from '../jobs/checkpoint';
import type { Counts, RowError, RunFacts } from '../jobs/run';

const SAMPLE_SIZE = 10;

export interface FinishedRun {
  /** The committed counts: authoritative even when the last slice failed after some batches. */
  counts?: Counts;
  warnings?: string[];
  errorSample: RowError[];
  errorCount: number;
}

export function createRunActivities(deps: { pool: Pool }) {
  return {
    /** Ends a run's bookkeeping: drops its duplicate-detection keys, reads its final counts, samples its row errors. */
    async finishRun({ runId }: { runId: string }): Promise<FinishedRun> {
      await runState.forgetImportKeys(deps.pool, runId);
      const [stored, sample, errorCount] = await Promise.all([
        runState.readCheckpoint<Checkpoint<unknown>>(deps.pool, runId),
        runState.listErrors(deps.pool, runId, { limit: SAMPLE_SIZE }),
        runState.countErrors(deps.pool, runId),
      ]);
      return {
        counts: stored?.checkpoint.counts,
        warnings: stored?.checkpoint.warnings,
        errorSample: sample.map(({ id: _id, ...e }) => e),
        errorCount,
      };
    },

    /**
     * Records a finished run's figures for stats, with its committed rows per dataset: from its
     * batches when they name their dataset, else all under the run's own dataset.
     */
    async recordRun(facts: RunFacts): Promise<void> {
      const stored = await runState.readCheckpoint<Checkpoint<unknown>>(deps.pool, facts.runId);
      const checkpoint = stored?.checkpoint;
      const rowsByDataset = checkpoint?.byDataset ?? (checkpoint && facts.dataset ? { [facts.dataset]: checkpoint.counts } : {});
      await statsQueries.recordRun(deps.pool, facts, rowsByDataset);
    },
  };
}
