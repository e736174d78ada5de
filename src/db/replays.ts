import type { RowError } from '../jobs/run';
import type { Pool, PoolClient } from './pool';

type Queryable = Pool | PoolClient;

/** Quarantine and replay: a run's rejected rows, the replays of it, and which of its rows they fixed. */
export const replayQueries = {
  /** Rows of `runId` a replay accepted; a row fixed twice counts once. */
  async recordAccepted(db: Queryable, runId: string, acceptedBy: string, rows: readonly number[]): Promise<void> {
    if (rows.length === 0) return;
    await db.query('INSERT INTO replayed_rows (run_id, row_number, accepted_by) SELECT $1, unnest($2::int[]), $3 ON CONFLICT DO NOTHING', [runId, rows, acceptedBy]);
  },

  async recordReplay(db: Queryable, runId: string, replayRunId: string): Promise<void> {
    await db.query('INSERT INTO run_replays (run_id, replay_run_id) VALUES ($1, $2) ON CONFLICT DO NOTHING', [runId, replayRunId]);
  },

  /** The replays of a run, how many of its rows they fixed, and the run a replay itself fixes. */
  async summary(db: Queryable, runId: string): Promise<{ replays: string[]; acceptedLater: number; replayOf: string | null }> {
    const { rows } = await db.query<{ replays: string[]; acceptedLater: number; replayOf: string | null }>(
      `SELECT coalesce((SELECT array_agg(replay_run_id ORDER BY created_at) FROM run_replays WHERE run_id = $1), '{}') AS replays,
              (SELECT count(*)::int FROM replayed_rows WHERE run_id = $1) AS "acceptedLater",
              (SELECT run_id FROM run_replays WHERE replay_run_id = $1 LIMIT 1) AS "replayOf"`,
      [runId],
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
