import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { from as copyFrom } from 'pg-copy-streams';
import type { Dataset } from '../datasets';
import type { ImportMode } from '../jobs/import';
import { ident, type PoolClient } from './pool';

/** One validated row, its values in the order of the load's columns. */
export interface StagedRow {
  row: number;
  line: number;
  key: string;
  values: readonly unknown[];
}

export interface LoadOutcome {
  inserted: number;
  updated: number;
  skipped: number;
  /** Rows the database refused: a key seen earlier in the file, or (insert mode) already present. */
  rejected: { row: number; line: number; key: string; code: 'DUPLICATE_KEY' | 'ALREADY_EXISTS'; firstRow?: number }[];
}

const COPY_ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

/** Encodes one value for COPY's text format. */
export function copyText(value: unknown): string {
  if (value === undefined || value === null) return '\\N';
  const s = typeof value === 'string' ? value : typeof value === 'number' || typeof value === 'boolean' ? String(value) : JSON.stringify(value);
  return /[\\\t\n\r]/.test(s) ? s.replace(/[\\\t\n\r]/g, (c) => COPY_ESCAPES[c]!) : s;
}

/** Builds the SQL of a load once per (dataset, columns, mode); the statements only differ by those. */
export function loadStatements(dataset: Dataset, columns: readonly string[], mode: ImportMode) {
  const stage = ident(`_bf_stage_${dataset.table}`);
  const table = ident(dataset.table);
  const cols = columns.map(ident).join(', ');
  const keyExpr = (alias: string) =>
    dataset.key.length === 1 ? `${alias}.${ident(dataset.key[0]!)}::text` : `concat_ws(chr(31), ${dataset.key.map((k) => `${alias}.${ident(k)}::text`).join(', ')})`;
  const conflict = dataset.key.map(ident).join(', ');
  const updates = columns
    .filter((c) => !dataset.key.includes(c))
    .map((c) => `${ident(c)} = EXCLUDED.${ident(c)}`)
    .concat('updated_at = now()')
    .join(', ');
  const insert = `INSERT INTO ${table} (${cols}) SELECT ${cols} FROM ${stage}`;
  const columnDefs = dataset.columnNames.map((c) => `${ident(c)} ${dataset.columns[c]!.sql}`).join(', ');
  return {
    createStage: `CREATE TEMP TABLE IF NOT EXISTS ${stage} (_row integer, _line integer, ${columnDefs}) ON COMMIT DELETE ROWS`,
    copy: `COPY ${stage} (_row, _line, ${cols}) FROM STDIN`,
    // Keys of this batch that an earlier batch of the same file already loaded (usually none).
    // One index probe per staged row: a plain join lets the planner hash every key the run has
    // loaded so far, which grows with each batch (quadratic over a file).
    findSeenKeys: `SELECT s._row AS row, s._line AS line, k.key, k.row_number AS "firstRow" FROM ${stage} s
      CROSS JOIN LATERAL (SELECT key, row_number FROM import_keys WHERE run_id = $1 AND key = ${keyExpr('s')} OFFSET 0) k`,
    dropRows: `DELETE FROM ${stage} WHERE _row = ANY($1::int[])`,
    rememberKeys: `INSERT INTO import_keys (run_id, key, row_number) SELECT $1, ${keyExpr('s')}, s._row FROM ${stage} s`,
    load:
      mode === 'upsert'
        ? `WITH w AS (${insert} ON CONFLICT (${conflict}) DO UPDATE SET ${updates} RETURNING (xmax = 0) AS inserted)
           SELECT count(*) FILTER (WHERE inserted)::int AS inserted, count(*) FILTER (WHERE NOT inserted)::int AS updated FROM w`
        : mode === 'skip-existing'
          ? `WITH w AS (${insert} ON CONFLICT (${conflict}) DO NOTHING RETURNING 1)
             SELECT count(*)::int AS inserted, 0 AS updated FROM w`
          : `WITH w AS (${insert} ON CONFLICT (${conflict}) DO NOTHING RETURNING ${keyExpr(table)} AS key)
             SELECT s._row AS row, s._line AS line, ${keyExpr('s')} AS key FROM ${stage} s
             WHERE NOT EXISTS (SELECT 1 FROM w WHERE w.key = ${keyExpr('s')})`,
  };
}
export type LoadStatements = ReturnType<typeof loadStatements>;

// Temp staging tables live per connection; remember which connections already have one.
const staged = new WeakMap<PoolClient, Set<string>>();

/**
 * Loads one batch inside the caller's transaction: COPY into a temp staging table, drop keys the
 * file already had, then one INSERT ... ON CONFLICT. Replaying a batch cannot duplicate rows.
 */
export async function loadBatch(
  client: PoolClient,
  runId: string,
  sql: LoadStatements,
  mode: ImportMode,
  rows: readonly StagedRow[],
): Promise<LoadOutcome> {
  const outcome: LoadOutcome = { inserted: 0, updated: 0, skipped: 0, rejected: [] };
  if (rows.length === 0) return outcome;
  let tables = staged.get(client);
  if (!tables) staged.set(client, (tables = new Set()));
  if (!tables.has(sql.createStage)) {
    await client.query(sql.createStage);
    tables.add(sql.createStage);
  }

  const text = rows.map((r) => `${r.row}\t${r.line}\t${r.values.map(copyText).join('\t')}\n`).join('');
  await pipeline(Readable.from([text]), client.query(copyFrom(sql.copy)));

  // A key seen earlier in the file is a row error, not a second write; the batch's own repeats
  // were already rejected before staging.
  const dups = (await client.query<{ row: number; line: number; key: string; firstRow: number }>(sql.findSeenKeys, [runId])).rows;
  if (dups.length > 0) {
    await client.query(sql.dropRows, [dups.map((d) => d.row)]);
    for (const d of dups) outcome.rejected.push({ ...d, code: 'DUPLICATE_KEY' });
  }
  await client.query(sql.rememberKeys, [runId]);

  if (mode === 'insert') {
    const existing = (await client.query<{ row: number; line: number; key: string }>(sql.load)).rows;
    for (const e of existing) outcome.rejected.push({ ...e, code: 'ALREADY_EXISTS' });
    outcome.inserted = rows.length - dups.length - existing.length;
  } else {
    const { inserted, updated } = (await client.query<{ inserted: number; updated: number }>(sql.load)).rows[0]!;
    outcome.inserted = inserted;
    outcome.updated = updated;
    outcome.skipped = rows.length - dups.length - inserted - updated;
  }
  return outcome;
}
