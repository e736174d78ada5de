import type { Pool } from '../db/pool';
import { runState } from '../db/queries';
import { statsQueries } from '../db/stats';
import type { Checkpoint } from '../jobs/checkpoint';
import type { Counts, ErrorSample, RunFacts, RunRef } from '../jobs/run';
import { heartbeating } from './batch-runner';

const SAMPLE_SIZE = 10;

export interface FinishedRun {
  /** The committed counts: authoritative even when the last slice failed after some batches. */
  counts?: Counts;
  warnings?: string[];
  errorSample: ErrorSample[];
  errorCount: number;
}

export function createRunActivities(deps: { pool: Pool }) {
  return {
    /**
     * Ends a run's bookkeeping: drops its duplicate-detection keys, reads its final counts, samples
     * its row errors (without their raw input: the sample goes into workflow history).
     */
    async finishRun({ run }: { run: RunRef }): Promise<FinishedRun> {
      return heartbeating(async () => {
        await runState.forgetImportKeys(deps.pool, run.execution);
        const [stored, sample, errorCount] = await Promise.all([
          runState.readCheckpoint<Checkpoint<unknown>>(deps.pool, run.execution),
          runState.listErrors(deps.pool, run.execution, { limit: SAMPLE_SIZE }),
          runState.countErrors(deps.pool, run.execution),
        ]);
        return {
          counts: stored?.checkpoint.counts,
          warnings: stored?.checkpoint.warnings,
          errorSample: sample.map(({ row, line, field, code, message }) => ({ row, line, field, code, message })),
          errorCount,
        };
      });
    },

    /**
     * Records a finished run's figures for stats, with its committed rows per dataset: from its
     * batches when they name their dataset, else all under the run's own dataset.
     */
    async recordRun(facts: RunFacts): Promise<void> {
      const stored = await runState.readCheckpoint<Checkpoint<unknown>>(deps.pool, facts.execution);
      const checkpoint = stored?.checkpoint;
      const rowsByDataset = checkpoint?.byDataset ?? (checkpoint && facts.dataset ? { [facts.dataset]: checkpoint.counts } : {});
      await statsQueries.recordRun(deps.pool, facts, rowsByDataset);
    },
  };
}
