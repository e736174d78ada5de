import type { Pool, PoolClient } from './pool';

type Queryable = Pool | PoolClient;

/** A table as Postgres describes it: what dataset declarations are checked against and scaffolded from. */
export interface TableCatalogue {
  /** The table as Postgres names it (schema.table). */
  name: string;
  comment: string | null;
  columns: CatalogueColumn[];
  /** Unique indexes and constraints without predicates or expressions: each a conflict target. */
  uniqueKeys: { columns: string[]; primary: boolean }[];
  /** CHECK constraints, as Postgres prints them. */
  checks: string[];
}

export interface CatalogueColumn {
  name: string;
  /** The type's name (int4, varchar, timestamptz, …); a domain's base type. */
  udt: string;
  /** The full type as Postgres prints it (character varying(200), numeric(12,2)). */
  type: string;
  notNull: boolean;
  default: string | null;
  comment: string | null;
}

/** The catalogue of a table given as a quoted identifier, or undefined when there is no such table. */
export async function readTableCatalogue(db: Queryable, sqlTable: string): Promise<TableCatalogue | undefined> {
  const { rows: found } = await db.query<{ oid: number | null; name: string | null; comment: string | null }>(
    `SELECT c.oid::int AS oid, c.oid::regclass::text AS name, obj_description(c.oid, 'pg_class') AS comment
     FROM pg_class c WHERE c.oid = to_regclass($1) AND c.relkind IN ('r', 'p')`,
    [sqlTable],
  );
  const table = found[0];
  if (!table?.oid) return undefined;
  const [columns, keys, checks] = await Promise.all([
    db.query<CatalogueColumn>(
      `SELECT a.attname AS name, coalesce(bt.typname, t.typname) AS udt, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull AS "notNull",
              pg_get_expr(d.adbin, d.adrelid) AS default, col_description(a.attrelid, a.attnum) AS comment
       FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid LEFT JOIN pg_type bt ON t.typtype = 'd' AND bt.oid = t.typbasetype
       LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
       WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
      [table.oid],
    ),
    db.query<{ columns: string[]; primary: boolean }>(
      `SELECT array_agg(a.attname::text ORDER BY k.ord) AS columns, i.indisprimary AS primary
       FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
       JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
       WHERE i.indrelid = $1 AND i.indisunique AND i.indpred IS NULL AND i.indexprs IS NULL
       GROUP BY i.indexrelid, i.indisprimary ORDER BY i.indisprimary DESC, i.indexrelid`,
      [table.oid],
    ),
    db.query<{ def: string }>(`SELECT pg_get_constraintdef(oid) AS def FROM pg_constraint WHERE conrelid = $1 AND contype = 'c' ORDER BY conname`, [table.oid]),
  ]);
  return { name: table.name!, comment: table.comment, columns: columns.rows, uniqueKeys: keys.rows, checks: checks.rows.map((r) => r.def) };
}
