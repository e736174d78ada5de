import type { Counts, RunFacts } from '../jobs/run';
import type { Pool } from './pool';

/** The runs a figure counts: those that started in [from, to). */
export interface StatsWindow {
  from: Date;
  to: Date;
}

/** Finished runs' figures (run_facts) and their row errors (run_errors). */
export const statsQueries = {
  /** Records a finished run; recording it again (a retried activity) replaces the same figures. */
  async recordRun(pool: Pool, facts: RunFacts, rowsByDataset: Record<string, Counts>): Promise<void> {
    const c = facts.counts;
    await pool.query(
      `INSERT INTO run_facts (run_id, kind, status, error_code, started_at, ended_at, duration_ms, processed, succeeded, failed, skipped, rows_by_dataset, execution_id)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
       ON CONFLICT (run_id) DO UPDATE SET execution_id = EXCLUDED.execution_id, kind = EXCLUDED.kind, status = EXCLUDED.status, error_code = EXCLUDED.error_code,
         started_at = EXCLUDED.started_at, ended_at = EXCLUDED.ended_at, duration_ms = EXCLUDED.duration_ms, processed = EXCLUDED.processed,
         succeeded = EXCLUDED.succeeded, failed = EXCLUDED.failed, skipped = EXCLUDED.skipped, rows_by_dataset = EXCLUDED.rows_by_dataset`,
      [facts.runId, facts.kind, facts.status, facts.errorCode ?? null, facts.startedAt, facts.endedAt, facts.durationMs, c.processed, c.succeeded, c.failed, c.skipped, JSON.stringify(rowsByDataset), facts.execution],
    );
  },

  async runsByKindAndStatus(pool: Pool, w: StatsWindow): Promise<{ kind: string; status: string; runs: number }[]> {
    const { rows } = await pool.query<{ kind: string; status: string; runs: number }>(
      `SELECT kind, status, count(*)::int AS runs FROM run_facts WHERE started_at >= $1 AND started_at < $2 GROUP BY kind, status ORDER BY kind, status`,
      [w.from, w.to],
    );
    return rows;
  },

  /** p50 and p95 by nearest rank: each is the duration of one of the runs. */
  async durations(pool: Pool, w: StatsWindow): Promise<{ kind: string; runs: number; p50Ms: number; p95Ms: number }[]> {
    const { rows } = await pool.query<{ kind: string; runs: number; p50Ms: number; p95Ms: number }>(
      `SELECT kind, count(*)::int AS runs,
              percentile_disc(0.5) WITHIN GROUP (ORDER BY duration_ms) AS "p50Ms",
              percentile_disc(0.95) WITHIN GROUP (ORDER BY duration_ms) AS "p95Ms"
       FROM run_facts WHERE started_at >= $1 AND started_at < $2 GROUP BY kind ORDER BY kind`,
      [w.from, w.to],
    );
    return rows;
  },

  async rowsByDataset(pool: Pool, w: StatsWindow): Promise<{ dataset: string; processed: number; succeeded: number; rejected: number; skipped: number }[]> {
    const { rows } = await pool.query<{ dataset: string; processed: number; succeeded: number; rejected: number; skipped: number }>(
      `SELECT d.key AS dataset,
              sum((d.value->>'processed')::bigint) AS processed, sum((d.value->>'succeeded')::bigint) AS succeeded,
              sum((d.value->>'failed')::bigint) AS rejected, sum((d.value->>'skipped')::bigint) AS skipped
       FROM run_facts f, jsonb_each(f.rows_by_dataset) d
       WHERE f.started_at >= $1 AND f.started_at < $2 GROUP BY d.key ORDER BY d.key`,
      [w.from, w.to],
    );
    return rows;
  },

  /**
   * The codes that occurred most: as row errors (counted per row) or as why a run failed, stopped or
   * was cancelled; `runs` counts the runs each occurred in either way.
   */
  async topErrorCodes(pool: Pool, w: StatsWindow, limit: number): Promise<{ code: string; runs: number; rows: number }[]> {
    const { rows } = await pool.query<{ code: string; runs: number; rows: number }>(
      `WITH runs AS (SELECT run_id, execution_id, error_code FROM run_facts WHERE started_at >= $1 AND started_at < $2),
       occurrences AS (
         SELECT e.code, runs.run_id, count(*) AS rows FROM run_errors e JOIN runs USING (execution_id) GROUP BY e.code, runs.run_id
         UNION ALL
         SELECT error_code, run_id, 0 FROM runs WHERE error_code IS NOT NULL
       )
       SELECT code, count(DISTINCT run_id)::int AS runs, sum(rows)::bigint AS rows FROM occurrences
       GROUP BY code ORDER BY runs DESC, rows DESC, code LIMIT $3`,
      [w.from, w.to, limit],
    );
    return rows;
  },

  /** Which of these runs have their figures recorded (they have ended). */
  async recorded(pool: Pool, runIds: string[]): Promise<Set<string>> {
    if (runIds.length === 0) return new Set();
    const { rows } = await pool.query<{ run_id: string }>('SELECT run_id FROM run_facts WHERE run_id = ANY($1)', [runIds]);
    return new Set(rows.map((r) => r.run_id));
  },
};
