import type { Counts, PreviewSamples, RowError, RunRef } from '../jobs/run';
import type { ErrorCode } from '../errors';
import type { Pool, PoolClient } from './pool';

type Queryable = Pool | PoolClient;

/** A row error keeps at most this much of its row's raw input, as JSON text. */
export const RAW_MAX_BYTES = 4096;

/**
 * A row's raw input as stored with its error: as it is, or when its JSON is longer than
 * RAW_MAX_BYTES, the start of that JSON marked as cut (`{cut: true, bytes, start}`), so that one
 * huge record neither bloats the error table nor comes back whole through the API.
 */
export function capRaw(raw: unknown): unknown {
  return cutJson(JSON.stringify(raw)) ?? raw;
}

/** The marker that stands for a raw input's JSON when it is too long; undefined when it fits. */
function cutJson(json: string | undefined): { cut: true; bytes: number; start: string } | undefined {
  if (json === undefined || json.length <= RAW_MAX_BYTES / 3) return undefined;
  const bytes = Buffer.from(json);
  if (bytes.length <= RAW_MAX_BYTES) return undefined;
  // Cut on a character boundary: a partial UTF-8 sequence decodes to U+FFFD, dropped here.
  const start = bytes.subarray(0, RAW_MAX_BYTES).toString('utf8').replace(/\uFFFD+$/, '');
  return { cut: true, bytes: bytes.length, start };
}

/** capRaw's result as the JSON text stored, the input's JSON made once. */
function cappedRawJson(raw: unknown): string | undefined {
  const json = JSON.stringify(raw);
  const cut = cutJson(json);
  return cut ? JSON.stringify(cut) : json;
}

/**
 * Run state stored beside the data, so it commits in the same transaction as each batch. It is
 * keyed by the run's execution (RunRef.execution), never by its id alone.
 */
export const runState = {
  /** Registers the execution under its run id, or marks it as still in use (plans and slices call it). */
  async register(db: Queryable, run: RunRef): Promise<void> {
    await db.query(
      `INSERT INTO run_executions (execution_id, workflow_id) VALUES ($1, $2)
       ON CONFLICT (execution_id) DO UPDATE SET touched_at = now()`,
      [run.execution, run.id],
    );
  },

  /** The newest execution registered under a run id (for servers that do not report a run's first execution). */
  async latestExecution(db: Queryable, runId: string): Promise<string | undefined> {
    const { rows } = await db.query<{ execution_id: string }>('SELECT execution_id FROM run_executions WHERE workflow_id = $1 ORDER BY started_at DESC LIMIT 1', [runId]);
    return rows[0]?.execution_id;
  },

  async readCheckpoint<C>(db: Queryable, execution: string): Promise<{ seq: number; checkpoint: C } | undefined> {
    const { rows } = await db.query<{ seq: number; checkpoint: C }>('SELECT seq, checkpoint FROM run_checkpoints WHERE execution_id = $1', [execution]);
    return rows[0];
  },

  /** Creates the run's checkpoint row unless it exists, so batches always have a row to lock. */
  async ensureCheckpoint(db: Queryable, execution: string, checkpoint: unknown): Promise<void> {
    await db.query('INSERT INTO run_checkpoints (execution_id, seq, checkpoint) VALUES ($1, 0, $2) ON CONFLICT (execution_id) DO NOTHING', [execution, JSON.stringify(checkpoint)]);
  },

  /** Locks the run's checkpoint row for this transaction and returns its seq. */
  async lockCheckpoint(db: Queryable, execution: string): Promise<number | undefined> {
    const { rows } = await db.query<{ seq: number }>('SELECT seq FROM run_checkpoints WHERE execution_id = $1 FOR UPDATE', [execution]);
    return rows[0]?.seq;
  },

  async writeCheckpoint(db: Queryable, execution: string, seq: number, checkpoint: unknown): Promise<void> {
    await db.query(
      `INSERT INTO run_checkpoints (execution_id, seq, checkpoint) VALUES ($1, $2, $3)
       ON CONFLICT (execution_id) DO UPDATE SET seq = EXCLUDED.seq, checkpoint = EXCLUDED.checkpoint, updated_at = now()`,
      [execution, seq, JSON.stringify(checkpoint)],
    );
  },

  /** Stores row errors; a raw input over RAW_MAX_BYTES is cut (and says so). */
  async insertErrors(db: Queryable, execution: string, errors: readonly RowError[]): Promise<void> {
    if (errors.length === 0) return;
    await db.query(
      `INSERT INTO run_errors (execution_id, row_number, line, field, code, message, raw)
       SELECT $1, * FROM unnest($2::int[], $3::int[], $4::text[], $5::text[], $6::text[], $7::jsonb[])`,
      [
        execution,
        errors.map((e) => e.row),
        errors.map((e) => e.line),
        errors.map((e) => e.field),
        errors.map((e) => e.code),
        errors.map((e) => e.message),
        errors.map((e) => (e.raw === undefined ? null : cappedRawJson(e.raw))),
      ],
    );
  },

  /** A page of a run's row errors in the order they were found; `after` is the last id seen. */
  async listErrors(db: Queryable, execution: string, opts: { after?: number; limit: number }): Promise<(RowError & { id: number })[]> {
    const { rows } = await db.query<RowError & { id: number }>(
      `SELECT id, row_number AS "row", line, field, code, message, raw FROM run_errors
       WHERE execution_id = $1 AND id > $2 ORDER BY id LIMIT $3`,
      [execution, opts.after ?? 0, opts.limit],
    );
    return rows;
  },

  async countErrors(db: Queryable, execution: string): Promise<number> {
    const { rows } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM run_errors WHERE execution_id = $1', [execution]);
    return rows[0]?.n ?? 0;
  },

  /** The committed counts of these runs (those that have a checkpoint), by run id: each run's newest execution's. */
  async countsOf(db: Queryable, runIds: readonly string[]): Promise<Map<string, { counts: Counts; stop?: { code: ErrorCode } }>> {
    const { rows } = await db.query<{ run_id: string; counts: Counts; stop: { code: ErrorCode } | null }>(
      `SELECT DISTINCT ON (e.workflow_id) e.workflow_id AS run_id, c.checkpoint->'counts' AS counts, c.checkpoint->'stop' AS stop
       FROM run_executions e JOIN run_checkpoints c USING (execution_id)
       WHERE e.workflow_id = ANY($1::text[]) ORDER BY e.workflow_id, e.started_at DESC`,
      [runIds],
    );
    return new Map(rows.map((r) => [r.run_id, { counts: r.counts, ...(r.stop && { stop: r.stop }) }]));
  },

  /** Rejected rows of these runs (each run's newest execution), by error code. */
  async errorCodesOf(db: Queryable, runIds: readonly string[]): Promise<{ code: ErrorCode; rows: number }[]> {
    const { rows } = await db.query<{ code: ErrorCode; rows: number }>(
      `SELECT code, count(*)::int AS rows FROM run_errors
       WHERE execution_id IN (SELECT DISTINCT ON (workflow_id) execution_id FROM run_executions WHERE workflow_id = ANY($1::text[]) ORDER BY workflow_id, started_at DESC)
       GROUP BY code ORDER BY 2 DESC, 1`,
      [runIds],
    );
    return rows;
  },

  /** Drops a run's duplicate-detection bookkeeping: the keys it remembered and its batches' ids. */
  async forgetImportKeys(db: Queryable, execution: string): Promise<void> {
    await db.query('DELETE FROM import_keys WHERE execution_id = $1', [execution]);
    await db.query('DELETE FROM import_batches WHERE execution_id = $1', [execution]);
  },

  /** Keeps a plan's sample rows for the API to show; planning again replaces them. */
  async storePreviewSamples(db: Queryable, execution: string, samples: PreviewSamples): Promise<void> {
    await db.query('INSERT INTO run_previews (execution_id, samples) VALUES ($1, $2) ON CONFLICT (execution_id) DO UPDATE SET samples = EXCLUDED.samples', [
      execution,
      JSON.stringify(samples),
    ]);
  },

  async readPreviewSamples(db: Queryable, execution: string): Promise<PreviewSamples | undefined> {
    const { rows } = await db.query<{ samples: PreviewSamples }>('SELECT samples FROM run_previews WHERE execution_id = $1', [execution]);
    return rows[0]?.samples;
  },

  /**
   * Deletes the state of executions untouched since `before` (checkpoints, row errors, previews,
   * import bookkeeping, dedupe keys, pairs and groups, id list references, replay links and the rows
   * replays accepted, notification deliveries), then the stored id lists no run references that
   * were not stored again since. Returns how many executions went.
   */
  async purge(db: Queryable, before: Date): Promise<number> {
    const { rows } = await db.query<{ n: number }>(
      `WITH gone AS (DELETE FROM run_executions WHERE touched_at < $1 RETURNING execution_id),
         checkpoints AS (DELETE FROM run_checkpoints WHERE execution_id IN (SELECT execution_id FROM gone)),
         errors AS (DELETE FROM run_errors WHERE execution_id IN (SELECT execution_id FROM gone)),
         previews AS (DELETE FROM run_previews WHERE execution_id IN (SELECT execution_id FROM gone)),
         keys AS (DELETE FROM import_keys WHERE execution_id IN (SELECT execution_id FROM gone)),
         batches AS (DELETE FROM import_batches WHERE execution_id IN (SELECT execution_id FROM gone)),
         lists AS (DELETE FROM run_id_lists WHERE execution_id IN (SELECT execution_id FROM gone)),
         dedupe_keys AS (DELETE FROM dedupe_keys WHERE execution_id IN (SELECT execution_id FROM gone)),
         dedupe_links AS (DELETE FROM dedupe_links WHERE execution_id IN (SELECT execution_id FROM gone)),
         dedupe_groups AS (DELETE FROM dedupe_groups WHERE execution_id IN (SELECT execution_id FROM gone)),
         -- A replay link goes with either of its executions.
         replays AS (DELETE FROM run_replays WHERE execution_id IN (SELECT execution_id FROM gone) OR replay_execution_id IN (SELECT execution_id FROM gone)),
         replayed AS (DELETE FROM replayed_rows WHERE execution_id IN (SELECT execution_id FROM gone)),
         deliveries AS (DELETE FROM notification_deliveries WHERE execution_id IN (SELECT execution_id FROM gone))
       SELECT count(*)::int AS n FROM gone`,
      [before],
    );
    await db.query(
      `WITH gone AS (DELETE FROM id_list_heads h WHERE stored_at < $1 AND NOT EXISTS (SELECT 1 FROM run_id_lists r WHERE r.list_id = h.list_id) RETURNING list_id)
       DELETE FROM id_lists WHERE list_id IN (SELECT list_id FROM gone)`,
      [before],
    );
    return rows[0]!.n;
  },
};
