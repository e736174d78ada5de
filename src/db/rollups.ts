import type { Dataset } from '../datasets';
import type { Measure, Rollup } from '../rollups';
import { ident, type Pool, type PoolClient } from './pool';

type Queryable = Pool | PoolClient;

/** One measure as a scalar subquery over its dataset, for the day bounds in the `day` CTE. */
function measureSql(m: Measure, datasetOf: (name: string) => Dataset): string {
  const at = ident(m.at);
  const conditions = [`${at} < day.ends`];
  if (m.window === 'day') conditions.push(`${at} >= day.starts`);
  if (m.deletedAt) conditions.push(`(${ident(m.deletedAt)} IS NULL OR ${ident(m.deletedAt)} >= day.ends)`);
  const counted = m.distinct ? `DISTINCT ${ident(m.distinct)}` : '*';
  return `(SELECT count(${counted})::int FROM ${datasetOf(m.dataset).sqlTable} WHERE ${conditions.join(' AND ')})`;
}

/** Roll-up rows: identifiers come only from the declarations in src/rollups and the datasets they count. */
export const rollupQueries = {
  /** Computes one date of a roll-up as of the end of that day and upserts its row; `datasetOf` gives each measure's declared dataset. */
  async upsertDay(db: Queryable, rollup: Rollup, datasetOf: (name: string) => Dataset, date: string, runId: string): Promise<void> {
    const columns = rollup.measureNames.map(ident);
    await db.query(
      `WITH day AS (SELECT ($1::date)::timestamp AT TIME ZONE $3 AS starts, ($1::date + 1)::timestamp AT TIME ZONE $3 AS ends)
       INSERT INTO ${ident(rollup.table)} (${ident(rollup.dateColumn)}, ${columns.join(', ')}, run_id, computed_at)
       SELECT $1::date, ${rollup.measureNames.map((name) => measureSql(rollup.measures[name]!, datasetOf)).join(', ')}, $2, now() FROM day
       ON CONFLICT (${ident(rollup.dateColumn)}) DO UPDATE SET ${[...columns, 'run_id', 'computed_at'].map((c) => `${c} = EXCLUDED.${c}`).join(', ')}`,
      [date, runId, rollup.timeZone],
    );
  },

  /** A roll-up's rows from `from` to `to`, by date. */
  async rows(db: Queryable, rollup: Rollup, from: string, to: string): Promise<Record<string, unknown>[]> {
    const date = ident(rollup.dateColumn);
    const { rows } = await db.query<Record<string, unknown>>(
      `SELECT ${date}::text AS date, ${rollup.measureNames.map(ident).join(', ')} FROM ${ident(rollup.table)} WHERE ${date} BETWEEN $1 AND $2 ORDER BY ${date}`,
      [from, to],
    );
    return rows;
  },
};
