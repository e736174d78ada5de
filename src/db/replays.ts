import type { RowError, RunRef } from '../jobs/run';
import type { Pool, PoolClient } from './pool';

type Queryable = Pool | PoolClient;

/**
 * Quarantine and replay: a run's rejected rows, the replays of it, and which of its rows they fixed.
 * Like the rest of a run's state, replays belong to executions (RunRef.execution): a run id used
 * again shows none of the earlier run's replays.
 */
export const replayQueries = {
  /** Rows a replay execution accepted, by their row number in the first run; committed with the replay's batch. */
  async recordAccepted(db: Queryable, replayExecution: string, rows: readonly number[]): Promise<void> {
    if (rows.length === 0) return;
    await db.query('INSERT INTO replayed_rows (execution_id, row_number) SELECT $1, unnest($2::int[]) ON CONFLICT DO NOTHING', [replayExecution, rows]);
  },

  /** Links a replay to the execution whose rows it fixes: `of`'s own, or, when `of` is itself a replay, the first run's. */
  async recordReplay(db: Queryable, of: RunRef, replay: RunRef): Promise<void> {
    await db.query(
      `WITH first AS (SELECT execution_id, run_id FROM run_replays WHERE replay_execution_id = $1 LIMIT 1)
       INSERT INTO run_replays (execution_id, run_id, replay_execution_id, replay_run_id)
       SELECT coalesce((SELECT execution_id FROM first), $1), coalesce((SELECT run_id FROM first), $2), $3, $4
       ON CONFLICT DO NOTHING`,
      [of.execution, of.id, replay.execution, replay.id],
    );
  },

  /** The replays of a run execution, how many of its rows they fixed (each once), and the run a replay itself fixes. */
  async summary(db: Queryable, execution: string): Promise<{ replays: string[]; acceptedLater: number; replayOf: string | null }> {
    const { rows } = await db.query<{ replays: string[]; acceptedLater: number; replayOf: string | null }>(
      `SELECT coalesce((SELECT array_agg(replay_run_id ORDER BY created_at) FROM run_replays WHERE execution_id = $1), '{}') AS replays,
              (SELECT count(DISTINCT r.row_number)::int FROM run_replays p JOIN replayed_rows r ON r.execution_id = p.replay_execution_id WHERE p.execution_id = $1) AS "acceptedLater",
              (SELECT run_id FROM run_replays WHERE replay_execution_id = $1 LIMIT 1) AS "replayOf"`,
      [execution],
    );
    return rows[0]!;
  },

  /** A page of a run execution's rejected rows in row order, one per row: the raw input of its first error. */
  async rejectedRows(db: Queryable, execution: string, afterRow: number, limit: number): Promise<{ row: number; raw: RowError['raw'] }[]> {
    const { rows } = await db.query<{ row: number; raw: unknown }>(
      `SELECT DISTINCT ON (row_number) row_number AS row, raw FROM run_errors
       WHERE execution_id = $1 AND row_number > $2 AND raw IS NOT NULL ORDER BY row_number, id LIMIT $3`,
      [execution, afterRow, limit],
    );
    return rows;
  },
};
