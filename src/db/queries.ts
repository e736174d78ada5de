import type { Counts, RowError } from '../jobs/run';
import type { Pool, PoolClient } from './pool';

type Queryable = Pool | PoolClient;

/** Run state stored beside the data, so it commits in the same transaction as each batch. */
export const runState = {
  async readCheckpoint<C>(db: Queryable, runId: string): Promise<{ seq: number; checkpoint: C } | undefined> {
    const { rows } = await db.query<{ seq: number; checkpoint: C }>('SELECT seq, checkpoint FROM run_checkpoints WHERE run_id = $1', [runId]);
    return rows[0];
  },

  /** Creates the run's checkpoint row unless it exists, so batches always have a row to lock. */
  async ensureCheckpoint(db: Queryable, runId: string, checkpoint: unknown): Promise<void> {
    await db.query('INSERT INTO run_checkpoints (run_id, seq, checkpoint) VALUES ($1, 0, $2) ON CONFLICT (run_id) DO NOTHING', [runId, JSON.stringify(checkpoint)]);
  },

  /** Locks the run's checkpoint row for this transaction and returns its seq. */
  async lockCheckpoint(db: Queryable, runId: string): Promise<number | undefined> {
    const { rows } = await db.query<{ seq: number }>('SELECT seq FROM run_checkpoints WHERE run_id = $1 FOR UPDATE', [runId]);
    return rows[0]?.seq;
  },

  async writeCheckpoint(db: Queryable, runId: string, seq: number, checkpoint: unknown): Promise<void> {
    await db.query(
      `INSERT INTO run_checkpoints (run_id, seq, checkpoint) VALUES ($1, $2, $3)
       ON CONFLICT (run_id) DO UPDATE SET seq = EXCLUDED.seq, checkpoint = EXCLUDED.checkpoint, updated_at = now()`,
      [runId, seq, JSON.stringify(checkpoint)],
    );
  },

  async insertErrors(db: Queryable, runId: string, errors: readonly RowError[]): Promise<void> {
    if (errors.length === 0) return;
    await db.query(
      `INSERT INTO run_errors (run_id, row_number, line, field, code, message, raw)
       SELECT $1, * FROM unnest($2::int[], $3::int[], $4::text[], $5::text[], $6::text[], $7::jsonb[])`,
      [
        runId,
        errors.map((e) => e.row),
        errors.map((e) => e.line),
        errors.map((e) => e.field),
        errors.map((e) => e.code),
        errors.map((e) => e.message),
        errors.map((e) => (e.raw === undefined ? null : JSON.stringify(e.raw))),
      ],
    );
  },

  /** A page of a run's row errors in the order they were found; `after` is the last id seen. */
  async listErrors(db: Queryable, runId: string, opts: { after?: number; limit: number }): Promise<(RowError & { id: number })[]> {
    const { rows } = await db.query<RowError & { id: number }>(
      `SELECT id, row_number AS "row", line, field, code, message, raw FROM run_errors
       WHERE run_id = $1 AND id > $2 ORDER BY id LIMIT $3`,
      [runId, opts.after ?? 0, opts.limit],
    );
    return rows;
  },

  async countErrors(db: Queryable, runId: string): Promise<number> {
    const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM run_errors WHERE run_id = $1', [runId]);
    return rows[0]?.n ?? 0;
  },

  /** The committed counts of these runs (those that have a checkpoint), by run id. */
  async countsOf(db: Queryable, runIds: readonly string[]): Promise<Map<string, { counts: Counts; stop?: { code: string } }>> {
    const { rows } = await db.query<{ run_id: string; counts: Counts; stop: { code: string } | null }>(
      `SELECT run_id, checkpoint->'counts' AS counts, checkpoint->'stop' AS stop FROM run_checkpoints WHERE run_id = ANY($1::text[])`,
      [runIds],
    );
    return new Map(rows.map((r) => [r.run_id, { counts: r.counts, ...(r.stop && { stop: r.stop }) }]));
  },

  /** Rejected rows of these runs, by error code. */
  async errorCodesOf(db: Queryable, runIds: readonly string[]): Promise<{ code: string; rows: number }[]> {
    const { rows } = await db.query<{ code: string; rows: number }>(
      'SELECT code, count(*)::int AS rows FROM run_errors WHERE run_id = ANY($1::text[]) GROUP BY code ORDER BY 2 DESC, 1',
      [runIds],
    );
    return rows;
  },

  /** Drops a run's duplicate-detection bookkeeping: the keys it remembered and its batches' ids. */
  async forgetImportKeys(db: Queryable, runId: string): Promise<void> {
    await db.query('DELETE FROM import_keys WHERE run_id = $1', [runId]);
    await db.query('DELETE FROM import_batches WHERE run_id = $1', [runId]);
  },
};
