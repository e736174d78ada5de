import type { CacheDataset, CacheStatus } from '../datasets';
import { ident, type PoolClient } from './pool';
import { CAST } from './row-queries';

/** A cache row's key, as the database returned it. */
export type CacheKey = string | number;

const keyArray = (dataset: CacheDataset) => `${CAST[dataset.columns[dataset.cache.key]!.sql]}[]`;

/** The writes of a cache refresh, by key; identifiers come from the dataset's declaration only. */
export const cacheQueries = {
  /**
   * Stores fresh values and marks the rows ok, refreshed now. A row's updated_at moves only when
   * its values (or its status) changed. Returns how many rows were stored and how many changed.
   */
  async store(db: PoolClient, dataset: CacheDataset, rows: readonly { key: CacheKey; values: Record<string, unknown> }[]): Promise<{ stored: number; changed: number }> {
    if (rows.length === 0) return { stored: 0, changed: 0 };
    const { key, fields, refreshedAt, status } = dataset.cache;
    const columns = [key, ...fields];
    const t = (c: string) => `t.${ident(c)}`;
    const v = (c: string) => `v.${ident(c)}`;
    const differs = `(${[...fields, status].map(t).join(', ')}) IS DISTINCT FROM (${fields.map(v).join(', ')}, 'ok')`;
    const { rows: result } = await db.query<{ changed: boolean }>(
      `UPDATE ${dataset.sqlTable} t
       SET ${fields.map((c) => `${ident(c)} = ${v(c)}`).join(', ')}, ${ident(refreshedAt)} = now(), ${ident(status)} = 'ok',
           "updated_at" = CASE WHEN ${differs} THEN now() ELSE t."updated_at" END
       FROM unnest(${columns.map((c, i) => `$${i + 1}::${CAST[dataset.columns[c]!.sql]}[]`).join(', ')}) AS v(${columns.map(ident).join(', ')})
       WHERE ${t(key)} = ${v(key)}
       RETURNING t."updated_at" = now() AS changed`,
      columns.map((c) => rows.map((r) => (c === key ? r.key : (r.values[c] ?? null)))),
    );
    return { stored: result.length, changed: result.filter((r) => r.changed).length };
  },

  /**
   * Sets the rows' status. not_found also counts as settled (refreshed now, so not stale again
   * until staleAfter); error leaves last_updated as it was, so the row is tried again next run.
   */
  async flag(db: PoolClient, dataset: CacheDataset, keys: readonly CacheKey[], status: Extract<CacheStatus, 'not_found' | 'error'>): Promise<void> {
    if (keys.length === 0) return;
    const { key, refreshedAt, status: statusColumn } = dataset.cache;
    const settled = status === 'not_found' ? `, ${ident(refreshedAt)} = now()` : '';
    await db.query(`UPDATE ${dataset.sqlTable} SET ${ident(statusColumn)} = $2${settled} WHERE ${ident(key)} = ANY($1::${keyArray(dataset)})`, [keys, status]);
  },

  async remove(db: PoolClient, dataset: CacheDataset, keys: readonly CacheKey[]): Promise<void> {
    if (keys.length === 0) return;
    await db.query(`DELETE FROM ${dataset.sqlTable} WHERE ${ident(dataset.cache.key)} = ANY($1::${keyArray(dataset)})`, [keys]);
  },
};
