import type { Dataset } from '../datasets';
import type { Pool } from './pool';

// Tables up to this many pages (10 MiB) are counted exactly: counting them takes milliseconds.
const COUNT_UP_TO_PAGES = 1280;

/**
 * How many rows a dataset's table holds: counted when the table is small, otherwise the planner's
 * estimate (pg_class.reltuples scaled to the table's current size, as the planner does).
 */
export async function estimateRows(pool: Pool, dataset: Dataset, countUpToPages = COUNT_UP_TO_PAGES): Promise<{ count: number; exact: boolean }> {
  const { rows } = await pool.query<{ tuples: number; pages: number; currentPages: number }>(
    `SELECT reltuples::float8 AS tuples, relpages AS pages, (pg_relation_size(oid) / current_setting('block_size')::int)::int AS "currentPages"
     FROM pg_class WHERE oid = $1::regclass`,
    [dataset.sqlTable],
  );
  const { tuples, pages, currentPages } = rows[0]!;
  // reltuples is -1 until the table is first analysed.
  if (currentPages > countUpToPages && tuples >= 0 && pages > 0) return { count: Math.round((tuples / pages) * currentPages), exact: false };
  const counted = await pool.query<{ n: number }>(`SELECT count(*)::bigint AS n FROM ${dataset.sqlTable}`);
  return { count: counted.rows[0]!.n, exact: true };
}
