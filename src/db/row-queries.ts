import type { Dataset, SqlType } from '../datasets';
import { filterValue, type Filter, type FilterOp } from '../jobs/filter';
import { ident, type Pool, type PoolClient } from './pool';

type Queryable = Pool | PoolClient;

type Scalar = string | number | boolean;

/** The type a value of each column type binds as (integers as bigint: ids exceed int4). */
export const CAST: Record<SqlType, string> = { text: 'text', integer: 'bigint', numeric: 'numeric', date: 'date', timestamptz: 'timestamptz', boolean: 'boolean' };
const COMPARE: Partial<Record<FilterOp, string>> = { eq: '=', lt: '<', lte: '<=', gt: '>', gte: '>=' };
const likeEscape = (s: string) => s.replace(/[\\%_]/g, (c) => `\\${c}`);

/** How a compiled filter refers to its n-th value: a bind parameter unless said otherwise. */
export type Placeholder = (n: number) => string;
const bindParameter: Placeholder = (n) => `$${n}`;

/**
 * Compiles a checked filter to a SQL boolean expression over `alias`, appending its values to
 * `params` (so it composes with the caller's own parameters). Relative times resolve against asOf.
 */
export function compileFilter(dataset: Dataset, filter: Filter, asOf: Date, params: unknown[], alias?: string, placeholder: Placeholder = bindParameter): string {
  const compile = (f: Filter) => compileFilter(dataset, f, asOf, params, alias, placeholder);
  if ('and' in filter) return `(${filter.and.map(compile).join(' AND ')})`;
  if ('or' in filter) return `(${filter.or.map(compile).join(' OR ')})`;
  if ('not' in filter) return `(NOT ${compile(filter.not)})`;
  const sql = dataset.filterType(filter.field);
  if (!sql) throw new Error(`filter field ${filter.field} is not a column of ${dataset.name}`);
  const column = `${alias ? `${ident(alias)}.` : ''}${ident(filter.field)}`;
  const normalise = (v: Scalar) => filterValue(dataset, filter, v, asOf);
  const bind = (v: unknown, cast: string) => {
    params.push(v);
    return `${placeholder(params.length)}::${cast}`;
  };
  switch (filter.op) {
    case 'is_null':
      return `${column} IS NULL`;
    case 'not_null':
      return `${column} IS NOT NULL`;
    case 'ne':
      // "not equal" includes rows where the column is empty: NULL is not equal to the value.
      return `${column} IS DISTINCT FROM ${bind(normalise(filter.value as Scalar), CAST[sql])}`;
    case 'in':
      return `${column} = ANY(${bind((filter.value as Scalar[]).map(normalise), `${CAST[sql]}[]`)})`;
    case 'not_in':
      return `(${column} IS NULL OR ${column} <> ALL(${bind((filter.value as Scalar[]).map(normalise), `${CAST[sql]}[]`)}))`;
    case 'contains':
      return `${column} LIKE ${bind(`%${likeEscape(String(filter.value))}%`, 'text')}`;
    case 'starts_with':
      return `${column} LIKE ${bind(`${likeEscape(String(filter.value))}%`, 'text')}`;
    default:
      return `${column} ${COMPARE[filter.op]} ${bind(normalise(filter.value as Scalar), CAST[sql])}`;
  }
}


/** Which rows of a dataset a run works on: all, or those a filter matches (an id list, when there is one, is an IdSource beside it). */
export interface RowSelection {
  dataset: Dataset;
  where?: Filter;
  asOf: Date;
}

const table = (s: RowSelection) => s.dataset.sqlTable;
const idCol = (s: RowSelection) => ident(s.dataset.idColumn);

/** ` AND (filter)` with its values appended to params, or nothing without a filter. */
export function andWhere(s: RowSelection, params: unknown[], alias?: string, placeholder?: Placeholder): string {
  return s.where ? ` AND ${compileFilter(s.dataset, s.where, s.asOf, params, alias, placeholder)}` : '';
}

/**
 * Queries over existing rows in keyset order (by the dataset's id column). Every batch is an id
 * range (after, upTo] or an id list, so a replayed batch touches exactly the same rows.
 */
export const rowQueries = {
  /**
   * Refreshes the table's planner statistics when many rows changed since the last analyze (a
   * fresh import, an earlier bulk update). With stale statistics Postgres plans each keyset batch
   * as a scan and sort of the whole remaining range instead of an index walk: quadratic.
   */
  async analyzeIfStale(db: Queryable, dataset: Dataset): Promise<void> {
    const { rows } = await db.query<{ live: number; changed: number; analyzed: boolean }>(
      `SELECT n_live_tup AS live, n_mod_since_analyze AS changed, (last_analyze IS NOT NULL OR last_autoanalyze IS NOT NULL) AS analyzed
       FROM pg_stat_user_tables WHERE relid = $1::regclass`,
      [dataset.sqlTable],
    );
    const stats = rows[0];
    if (stats && stats.analyzed && stats.changed <= Math.max(stats.live, 1_000) / 10) return;
    await db.query(`ANALYZE ${dataset.sqlTable}`);
  },

  /** How many rows match and the highest matching id (the run never goes past it). */
  async count(db: Queryable, s: RowSelection, ids?: IdSource): Promise<{ matched: number; maxId: number }> {
    const params: unknown[] = [];
    const from = ids ? idListJoin(s, ids, params) : `${table(s)} t WHERE true`;
    const { rows } = await db.query<{ matched: number; maxId: number | null }>(
      `SELECT count(*)::int AS matched, max(t.${idCol(s)}) AS "maxId" FROM ${from}${andWhere(s, params, 't')}`,
      params,
    );
    return { matched: rows[0]!.matched, maxId: rows[0]!.maxId ?? 0 };
  },

  /** The first `limit` matching rows, all columns, secrets redacted (samples are shown). */
  async sample(db: Queryable, s: RowSelection, limit: number, ids?: IdSource): Promise<Record<string, unknown>[]> {
    if (limit === 0) return [];
    const params: unknown[] = [];
    const from = ids ? idListJoin(s, ids, params) : `${table(s)} t WHERE true`;
    const where = andWhere(s, params, 't');
    params.push(limit);
    const { rows } = await db.query<Record<string, unknown>>(`SELECT t.* FROM ${from}${where} ORDER BY t.${idCol(s)} LIMIT $${params.length}`, params);
    return rows.map((row) => s.dataset.redact(row));
  },

  /** The id that closes the next batch of `size` matching rows after `after`, or undefined near the end. */
  async batchEnd(db: Queryable, s: RowSelection, after: number, upTo: number, size: number): Promise<number | undefined> {
    const params: unknown[] = [after, upTo, size - 1];
    const { rows } = await db.query<{ id: number }>(
      `SELECT ${idCol(s)} AS id FROM ${table(s)} t WHERE ${idCol(s)} > $1 AND ${idCol(s)} <= $2${andWhere(s, params, 't')}
       ORDER BY ${idCol(s)} OFFSET $3 LIMIT 1`,
      params,
    );
    return rows[0]?.id;
  },

  /** The matching ids in a range, or in a list: what a failed batch affected. */
  async matchingIds(db: Queryable, s: RowSelection, batch: IdBatch): Promise<number[]> {
    const params: unknown[] = [];
    const { rows } = await db.query<{ id: number }>(`SELECT ${idCol(s)} AS id FROM ${table(s)} t WHERE ${batchWhere(s, batch, params)} ORDER BY 1`, params);
    return rows.map((r) => r.id);
  },

  /** Which of these ids exist at all. */
  async existingIds(db: Queryable, s: RowSelection, ids: readonly number[]): Promise<Set<number>> {
    const { rows } = await db.query<{ id: number }>(`SELECT ${idCol(s)} AS id FROM ${table(s)} WHERE ${idCol(s)} = ANY($1::bigint[])`, [ids]);
    return new Set(rows.map((r) => r.id));
  },

  /** Sets values on the batch's matching rows (and updated_at when the dataset has it); returns the ids changed. */
  async update(db: Queryable, s: RowSelection, batch: IdBatch, values: Record<string, unknown>): Promise<{ count: number; ids?: number[] }> {
    const params: unknown[] = [];
    const assignments = Object.entries(values).map(([column, value]) => {
      params.push(value);
      return `${ident(column)} = $${params.length}::${CAST[s.dataset.columns[column]!.sql]}`;
    });
    if (Object.hasOwn(s.dataset.system, 'updated_at')) assignments.push('"updated_at" = now()');
    const returning = 'ids' in batch ? ` RETURNING ${idCol(s)} AS id` : '';
    const result = await db.query<{ id: number }>(`UPDATE ${table(s)} t SET ${assignments.join(', ')} WHERE ${batchWhere(s, batch, params)}${returning}`, params);
    return { count: result.rowCount ?? 0, ...('ids' in batch && { ids: result.rows.map((r) => r.id) }) };
  },

  async delete(db: Queryable, s: RowSelection, batch: IdBatch): Promise<number> {
    const params: unknown[] = [];
    return (await db.query(`DELETE FROM ${table(s)} t WHERE ${batchWhere(s, batch, params)}`, params)).rowCount ?? 0;
  },

  /** Up to `limit` whole rows after `after`, for steps that read rows (validation). */
  async page(db: Queryable, s: RowSelection, after: number, limit: number): Promise<Record<string, unknown>[]> {
    const params: unknown[] = [after];
    const where = andWhere(s, params, 't');
    params.push(limit);
    return (await db.query<Record<string, unknown>>(`SELECT t.* FROM ${table(s)} t WHERE ${idCol(s)} > $1${where} ORDER BY ${idCol(s)} LIMIT $${params.length}`, params)).rows;
  },

  /** The next ids of a stored or inline id list after `after`. */
  async idListPage(db: Queryable, listId: string, after: number, limit: number): Promise<number[]> {
    const { rows } = await db.query<{ id: number }>('SELECT id FROM id_lists WHERE list_id = $1 AND id > $2 ORDER BY id LIMIT $3', [listId, after, limit]);
    return rows.map((r) => r.id);
  },

  /** Stores an id list under the digest of its ids; storing the same list again only marks it as stored now. */
  async storeIdList(db: Queryable, listId: string, ids: readonly number[]): Promise<void> {
    await db.query('INSERT INTO id_list_heads (list_id) VALUES ($1) ON CONFLICT (list_id) DO UPDATE SET stored_at = now()', [listId]);
    await db.query('INSERT INTO id_lists (list_id, id) SELECT $1, unnest($2::bigint[]) ON CONFLICT DO NOTHING', [listId, ids]);
  },

  /** Records that a run uses a stored list: the purge keeps it while the run's state is kept. */
  async referenceIdList(db: Queryable, execution: string, listId: string): Promise<void> {
    await db.query('INSERT INTO run_id_lists (execution_id, list_id) VALUES ($1, $2) ON CONFLICT DO NOTHING', [execution, listId]);
  },

  async idListCount(db: Queryable, listId: string): Promise<number> {
    return (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM id_lists WHERE list_id = $1', [listId])).rows[0]!.n;
  },

};

/** Ids in the order keyset batches take them, each once. */
export const sortedDistinct = (ids: readonly number[]) => [...new Set(ids)].sort((a, b) => a - b);

/** Ids given by the caller: inline (sorted, distinct) or stored under a list id. */
export type IdSource = { inline: readonly number[] } | { listId: string };
/** One batch over existing rows: an id range (after, upTo], or explicit ids. */
export type IdBatch = { after: number; upTo: number } | { ids: readonly number[] };

function idListJoin(s: RowSelection, ids: IdSource, params: unknown[]): string {
  if ('inline' in ids) {
    params.push(ids.inline);
    return `${table(s)} t WHERE t.${idCol(s)} = ANY($${params.length}::bigint[])`;
  }
  params.push(ids.listId);
  return `${table(s)} t JOIN id_lists l ON l.id = t.${idCol(s)} AND l.list_id = $${params.length} WHERE true`;
}

function batchWhere(s: RowSelection, batch: IdBatch, params: unknown[]): string {
  if ('ids' in batch) {
    params.push(batch.ids);
    return `t.${idCol(s)} = ANY($${params.length}::bigint[])${andWhere(s, params, 't')}`;
  }
  params.push(batch.after, batch.upTo);
  return `t.${idCol(s)} > $${params.length - 1} AND t.${idCol(s)} <= $${params.length}${andWhere(s, params, 't')}`;
}
