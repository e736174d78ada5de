import type { Dataset } from '../datasets';
import { ident, type Pool, type PoolClient } from './pool';

type Queryable = Pool | PoolClient;

/** A pair of rows found to be duplicates: a < b, with their similarity (1 when exact). */
export interface Link {
  a: number;
  b: number;
  score: number;
  exact: boolean;
}

/** One member of a duplicate group as stored. */
export interface GroupMember {
  group: number;
  id: number;
  keep: boolean;
  score: number;
  exact: boolean;
}

/**
 * The dedupe kind's own tables: each row's blocking keys, the duplicate pairs found in blocks, and
 * the groups they form, keyed by the run's execution (RunRef.execution). They hold ids, hashes and
 * scores, never row values.
 */
export const dedupeQueries = {
  async insertKeys(db: Queryable, execution: string, keys: { pass: number[]; block: number[]; id: number[] }): Promise<void> {
    if (keys.id.length === 0) return;
    await db.query('INSERT INTO dedupe_keys (execution_id, pass, block, id) SELECT $1, * FROM unnest($2::smallint[], $3::bigint[], $4::bigint[]) ON CONFLICT DO NOTHING', [execution, keys.pass, keys.block, keys.id]);
  },

  /** The next blocks of a pass after `after` that hold more than one row, with their ids. */
  async nextBlocks(db: Queryable, execution: string, pass: number, after: number, limit: number): Promise<{ block: number; ids: number[] }[]> {
    const { rows } = await db.query<{ block: number; ids: number[] }>(
      `SELECT block, array_agg(id ORDER BY id) AS ids FROM dedupe_keys WHERE execution_id = $1 AND pass = $2 AND block > $3
       GROUP BY block HAVING count(*) > 1 ORDER BY block LIMIT $4`,
      [execution, pass, after, limit],
    );
    return rows.map((r) => ({ block: r.block, ids: r.ids.map(Number) }));
  },

  /** Blocks with more rows than `size`: compared within a window, not pair by pair. */
  async largeBlocks(db: Queryable, execution: string, size: number): Promise<number> {
    const { rows } = await db.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM (SELECT 1 FROM dedupe_keys WHERE execution_id = $1 AND pass > 0 GROUP BY pass, block HAVING count(*) > $2) big',
      [execution, size],
    );
    return rows[0]!.n;
  },

  async insertLinks(db: Queryable, execution: string, links: readonly Link[]): Promise<void> {
    if (links.length === 0) return;
    await db.query(
      `INSERT INTO dedupe_links (execution_id, a, b, score, exact) SELECT $1, * FROM unnest($2::bigint[], $3::bigint[], $4::real[], $5::boolean[])
       ON CONFLICT (execution_id, a, b) DO UPDATE SET score = greatest(dedupe_links.score, EXCLUDED.score), exact = dedupe_links.exact OR EXCLUDED.exact`,
      [execution, links.map((l) => l.a), links.map((l) => l.b), links.map((l) => l.score), links.map((l) => l.exact)],
    );
  },

  async countLinks(db: Queryable, execution: string): Promise<number> {
    return (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM dedupe_links WHERE execution_id = $1', [execution])).rows[0]!.n;
  },

  async links(db: Queryable, execution: string): Promise<Link[]> {
    return (await db.query<Link>('SELECT a, b, score, exact FROM dedupe_links WHERE execution_id = $1 ORDER BY a, b', [execution])).rows;
  },

  async hasGroups(db: Queryable, execution: string): Promise<boolean> {
    return (await db.query('SELECT 1 FROM dedupe_groups WHERE execution_id = $1 LIMIT 1', [execution])).rowCount! > 0;
  },

  async insertGroups(db: Queryable, execution: string, members: readonly GroupMember[]): Promise<void> {
    if (members.length === 0) return;
    await db.query(
      `INSERT INTO dedupe_groups (execution_id, group_no, id, keep, score, exact)
       SELECT $1, * FROM unnest($2::int[], $3::bigint[], $4::boolean[], $5::real[], $6::boolean[]) ON CONFLICT DO NOTHING`,
      [execution, members.map((m) => m.group), members.map((m) => m.id), members.map((m) => m.keep), members.map((m) => m.score), members.map((m) => m.exact)],
    );
  },

  /** Drops the run's keys and pairs: its groups hold what the report and the merge need. */
  async dropScratch(db: Queryable, execution: string): Promise<void> {
    await db.query('DELETE FROM dedupe_keys WHERE execution_id = $1', [execution]);
    await db.query('DELETE FROM dedupe_links WHERE execution_id = $1', [execution]);
  },

  async summary(db: Queryable, execution: string): Promise<{ groups: number; rows: number; removals: number; exactRows: number; maxRemoval: number }> {
    const { rows } = await db.query<{ groups: number; rows: number; removals: number; exactRows: number; maxRemoval: number | null }>(
      `SELECT count(DISTINCT group_no)::int AS groups, count(*)::int AS rows, count(*) FILTER (WHERE NOT keep)::int AS removals,
              count(*) FILTER (WHERE exact)::int AS "exactRows", max(id) FILTER (WHERE NOT keep) AS "maxRemoval"
       FROM dedupe_groups WHERE execution_id = $1`,
      [execution],
    );
    const s = rows[0]!;
    return { ...s, maxRemoval: s.maxRemoval ?? 0 };
  },

  /** The first groups, for a preview. */
  async firstGroups(db: Queryable, execution: string, groups: number): Promise<GroupMember[]> {
    const { rows } = await db.query<GroupMember>(
      'SELECT group_no AS "group", id, keep, score, exact FROM dedupe_groups WHERE execution_id = $1 AND group_no <= $2 ORDER BY group_no, keep DESC, id',
      [execution, groups],
    );
    return rows;
  },

  /** A page of groups with the rows' values of `columns`, for the report. */
  async reportPage(db: Queryable, dataset: Dataset, execution: string, afterGroup: number, limit: number, columns: readonly string[]): Promise<(GroupMember & Record<string, unknown>)[]> {
    const values = columns.map((c) => `t.${ident(c)}`).join(', ');
    const { rows } = await db.query<GroupMember & Record<string, unknown>>(
      `SELECT g.group_no AS "group", g.id, g.keep, g.score, g.exact${values ? `, ${values}` : ''}
       FROM dedupe_groups g LEFT JOIN ${dataset.sqlTable} t ON t.${ident(dataset.idColumn)} = g.id
       WHERE g.execution_id = $1 AND g.group_no > $2 AND g.group_no <= $2 + $3 ORDER BY g.group_no, g.keep DESC, g.id`,
      [execution, afterGroup, limit],
    );
    return rows;
  },

  /** Each row's value of the keep rule's column, for choosing the row a group keeps. */
  async keepValues(db: Queryable, dataset: Dataset, column: string, ids: readonly number[]): Promise<Map<number, unknown>> {
    const id = ident(dataset.idColumn);
    const { rows } = await db.query<{ id: number; v: unknown }>(`SELECT ${id} AS id, ${ident(column)} AS v FROM ${dataset.sqlTable} WHERE ${id} = ANY($1::bigint[])`, [ids]);
    return new Map(rows.map((r) => [Number(r.id), r.v]));
  },

  /** Rows by id, every column. */
  async rows(db: Queryable, dataset: Dataset, ids: readonly number[]): Promise<Record<string, unknown>[]> {
    const id = ident(dataset.idColumn);
    return (await db.query<Record<string, unknown>>(`SELECT * FROM ${dataset.sqlTable} WHERE ${id} = ANY($1::bigint[])`, [ids])).rows;
  },

  /**
   * Deletes a batch of the rows a merge removes and, when asked, fills the empty columns of the rows
   * their groups keep from them (the first non-empty value in id order), in one statement.
   */
  async merge(db: Queryable, dataset: Dataset, execution: string, ids: readonly number[], fill: readonly string[]): Promise<number> {
    const id = ident(dataset.idColumn);
    const removed = (ids$: string) => `DELETE FROM ${dataset.sqlTable} WHERE ${id} = ANY(${ids$}::bigint[]) RETURNING *`;
    if (fill.length === 0) {
      const result = await db.query<{ n: number }>(`WITH removed AS (${removed('$1')}) SELECT count(*)::int AS n FROM removed`, [ids]);
      return result.rows[0]!.n;
    }
    const firsts = fill.map((c) => `(array_agg(r.${ident(c)} ORDER BY r.${id}) FILTER (WHERE r.${ident(c)} IS NOT NULL))[1] AS ${ident(c)}`).join(', ');
    const sets = fill.map((c) => `${ident(c)} = coalesce(t.${ident(c)}, f.${ident(c)})`).join(', ');
    const updatedAt = Object.hasOwn(dataset.system, 'updated_at') ? ', "updated_at" = now()' : '';
    const result = await db.query<{ n: number }>(
      `WITH removed AS (${removed('$2')}),
       fills AS (SELECT k.id AS kept, ${firsts} FROM removed r
                 JOIN dedupe_groups g ON g.execution_id = $1 AND g.id = r.${id}
                 JOIN dedupe_groups k ON k.execution_id = $1 AND k.group_no = g.group_no AND k.keep GROUP BY k.id),
       filled AS (UPDATE ${dataset.sqlTable} t SET ${sets}${updatedAt} FROM fills f WHERE t.${id} = f.kept)
       SELECT count(*)::int AS n FROM removed`,
      [execution, ids],
    );
    return result.rows[0]!.n;
  },
};
