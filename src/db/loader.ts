import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { from as copyFrom } from 'pg-copy-streams';
import type { Dataset } from '../datasets';
import { ErrorCode } from '../errors';
import type { ImportMode } from '../jobs/import';
import { ident, type PoolClient } from './pool';

/** One validated row, its values in the order of the load's columns. */
export interface StagedRow {
  row: number;
  line: number;
  key: string;
  values: readonly unknown[];
}

/** A batch's validated rows as COPY text (`row, line, values...` per line), built where they are read. */
export interface StagedBatch {
  /** UTF-8 bytes: they move between threads without a copy, and go to Postgres as they are. */
  copy: Uint8Array<ArrayBuffer>;
  count: number;
  firstRow: number;
  lastRow: number;
}

/** One staged row as a line of COPY text. */
export const copyLine = (r: StagedRow) => `${r.row}\t${r.line}\t${r.values.map(copyText).join('\t')}\n`;

/**
 * Loaded batches' buffers kept for reuse, on their way back to a reader and in it: one per batch
 * in flight is enough (BATCHFLOW_PARALLEL_BATCHES is 2 by default), a few more cost little.
 */
export const SPARE_BUFFERS = 4;

/**
 * Appends rows as COPY text to one growing buffer. Few, large objects instead of a string per row:
 * a batch stays alive while it loads, and per-row strings would all be promoted and wait for a
 * full garbage collection. Buffers given back once loaded are reused for later batches.
 */
export class CopyBuffer {
  private bytes: Buffer<ArrayBuffer>;
  private length = 0;
  private readonly spares: ArrayBuffer[] = [];

  constructor(private readonly initialBytes = 1 << 16) {
    this.bytes = this.allocate(initialBytes);
  }

  add(row: StagedRow): void {
    const line = copyLine(row);
    const room = line.length * 3; // the most UTF-8 bytes a UTF-16 string of that length needs
    if (this.length + room > this.bytes.length) {
      const grown = this.allocate(Math.max(this.bytes.length * 2, this.length + room));
      this.bytes.copy(grown, 0, 0, this.length);
      this.bytes = grown;
    }
    this.length += this.bytes.write(line, this.length);
  }

  /** The bytes added so far; the buffer starts again empty, at the size the last batch needed. */
  take(): Uint8Array<ArrayBuffer> {
    const taken = this.bytes.subarray(0, this.length);
    this.bytes = this.allocate(Math.max(this.initialBytes, this.length + (this.length >> 3)));
    this.length = 0;
    return taken;
  }

  /** Drops what was added since the last take (a reading that stopped mid-batch). */
  clear(): void {
    this.length = 0;
  }

  /** A buffer a batch taken earlier no longer needs. */
  reuse(buffer: ArrayBuffer): void {
    if (buffer.byteLength > 0 && this.spares.length < SPARE_BUFFERS) this.spares.push(buffer);
  }

  private allocate(size: number): Buffer<ArrayBuffer> {
    const spare = this.spares.findIndex((b) => b.byteLength >= size);
    if (spare >= 0) return Buffer.from(this.spares.splice(spare, 1)[0]!);
    // Its own memory (not Node's shared pool), so that it can be transferred to another thread.
    return Buffer.allocUnsafeSlow(size);
  }
}

const COPY_UNESCAPES: Record<string, string> = { '\\': '\\', t: '\t', n: '\n', r: '\r' };

/** The values of some staged rows back from the COPY text (rows the database step refused), by row number. */
export function stagedValues(staged: StagedBatch, rows: ReadonlySet<number>): Map<number, (string | null)[]> {
  const values = new Map<number, (string | null)[]>();
  for (const line of asBuffer(staged.copy).toString('utf8').split('\n')) {
    const [row, , ...fields] = line.split('\t');
    if (!rows.has(Number(row))) continue;
    values.set(
      Number(row),
      fields.map((v) => (v === '\\N' ? null : v.replace(/\\(.)/g, (_, c: string) => COPY_UNESCAPES[c] ?? c))),
    );
  }
  return values;
}

// A Uint8Array that crossed a thread arrives without Buffer's methods.
const asBuffer = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

export interface LoadOutcome {
  inserted: number;
  updated: number;
  skipped: number;
  /** Rows the database refused: a key seen earlier in the file, or (insert mode) already present. */
  rejected: { row: number; line: number; key: string; code: typeof ErrorCode.DuplicateKey | typeof ErrorCode.AlreadyExists; firstSeen?: FirstSeen }[];
}

/** Where a repeated key first appeared: its row, or the row range of the batch that wrote it. */
export type FirstSeen = { row: number } | { rows: [number, number] };

const COPY_ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

/** Encodes one value for COPY's text format. */
export function copyText(value: unknown): string {
  if (value === undefined || value === null) return '\\N';
  const s = typeof value === 'string' ? value : typeof value === 'number' || typeof value === 'boolean' ? String(value) : JSON.stringify(value);
  return /[\\\t\n\r]/.test(s) ? s.replace(/[\\\t\n\r]/g, (c) => COPY_ESCAPES[c]!) : s;
}

/** Builds the SQL of a load once per (dataset, columns, mode); the statements only differ by those. */
export function loadStatements(dataset: Dataset, columns: readonly string[], mode: ImportMode) {
  const stage = ident(`_bf_stage_${dataset.name}`);
  const table = dataset.sqlTable;
  const cols = columns.map(ident).join(', ');
  const keyExpr = (alias: string) =>
    dataset.key.length === 1 ? `${alias}.${ident(dataset.key[0]!)}::text` : `concat_ws(chr(31), ${dataset.key.map((k) => `${alias}.${ident(k)}::text`).join(', ')})`;
  const conflict = dataset.key.map(ident).join(', ');
  const assignments = columns
    .filter((c) => !dataset.key.includes(c))
    .map((c) => `${ident(c)} = EXCLUDED.${ident(c)}`)
    .concat(Object.hasOwn(dataset.system, 'updated_at') ? ['updated_at = now()'] : []);
  // A file of key columns alone still upserts: the row is rewritten as it is.
  const updates = assignments.length > 0 ? assignments.join(', ') : `${ident(dataset.key[0]!)} = EXCLUDED.${ident(dataset.key[0]!)}`;
  const insert = `INSERT INTO ${table} AS t (${cols}) SELECT ${cols} FROM ${stage}`;
  const columnDefs = dataset.columnNames.map((c) => `${ident(c)} ${dataset.columns[c]!.sql}`).join(', ');
  // In the transaction that writes the batch's rows (not a savepoint: they would carry the subtransaction's id).
  const rememberBatch = 'INSERT INTO import_batches (execution_id, xid, first_row, last_row) VALUES ($1, pg_current_xact_id()::xid, $2, $3)';
  // The batch that wrote a row, if it is one of this run's committed batches.
  const writtenBy = (alias: string) => `SELECT first_row, last_row FROM import_batches b WHERE b.xid = ${alias}.xmin AND b.execution_id = $1`;
  return {
    createStage: `CREATE TEMP TABLE IF NOT EXISTS ${stage} (_row integer, _line integer, ${columnDefs}) ON COMMIT DELETE ROWS`,
    copy: `COPY ${stage} (_row, _line, ${cols}) FROM STDIN`,
    // One statement writes the batch and records it in import_batches. Upsert leaves alone a row an
    // earlier batch of this run wrote (that key is a repeat, found below); the batch's own record is
    // not visible to the statement that adds it, and cannot matter: the batch has no repeats of its own.
    load: `WITH batch AS (${rememberBatch}), w AS (${insert} ON CONFLICT (${conflict}) ${
      mode === 'upsert'
        ? `DO UPDATE SET ${updates} WHERE NOT EXISTS (${writtenBy('t')}) RETURNING (xmax = 0) AS inserted)
           SELECT count(*) FILTER (WHERE inserted)::int AS inserted, count(*) FILTER (WHERE NOT inserted)::int AS updated FROM w`
        : `DO NOTHING RETURNING 1) SELECT count(*)::int AS inserted, 0 AS updated FROM w`
    }`,
    // Staged rows the load did not write (their row has another transaction's xmin), with where
    // the key was first seen: an earlier batch that wrote it, or a row remembered in import_keys.
    // The import_keys probe is one index lookup per row (OFFSET 0 keeps the planner from hashing
    // every key the run remembered).
    unwritten: `SELECT s._row AS row, s._line AS line, ${keyExpr('s')} AS key, b.first_row AS "batchFirst", b.last_row AS "batchLast", k.row_number AS "seenRow"
      FROM ${stage} s JOIN ${table} t ON ${dataset.key.map((k) => `t.${ident(k)} = s.${ident(k)}`).join(' AND ')}
      LEFT JOIN LATERAL (${writtenBy('t')}) b ON true
      LEFT JOIN LATERAL (SELECT row_number FROM import_keys WHERE execution_id = $1 AND key = ${keyExpr('s')} OFFSET 0) k ON true
      WHERE t.xmin <> pg_current_xact_id()::xid ORDER BY s._row`,
    // Keys met but not written (skipped, or already present): a later repeat of one is a duplicate too.
    rememberKeys: `INSERT INTO import_keys (execution_id, key, row_number) SELECT $1, * FROM unnest($2::text[], $3::int[]) ON CONFLICT DO NOTHING`,
  };
}
export type LoadStatements = ReturnType<typeof loadStatements>;

/**
 * Loads one batch inside the caller's transaction: COPY into a temp staging table, then one
 * INSERT ... ON CONFLICT that never overwrites a row an earlier batch of the run wrote. Only when
 * some staged rows were not written does it look up why. Replaying a batch cannot duplicate rows.
 */
export async function loadBatch(
  client: PoolClient,
  /** The run's execution (RunRef.execution): its batches and remembered keys are its own. */
  execution: string,
  sql: LoadStatements,
  mode: ImportMode,
  staged: StagedBatch,
): Promise<LoadOutcome> {
  const outcome: LoadOutcome = { inserted: 0, updated: 0, skipped: 0, rejected: [] };
  if (staged.count === 0) return outcome;
  // Temp tables live per connection, but their creation is part of the transaction: one created by
  // a batch that was rolled back is gone again. So ask every time (a catalog lookup, when it exists).
  await client.query(sql.createStage);

  await pipeline(Readable.from([asBuffer(staged.copy)]), client.query(copyFrom(sql.copy)));

  const { inserted, updated } = (await client.query<{ inserted: number; updated: number }>(sql.load, [execution, staged.firstRow, staged.lastRow])).rows[0]!;
  outcome.inserted = inserted;
  outcome.updated = updated;
  if (inserted + updated < staged.count) {
    // The batch's own repeats were rejected before staging, so an unwritten row's key is a repeat
    // of an earlier batch's, or (skip-existing, insert) a row that was there before the run.
    type Unwritten = { row: number; line: number; key: string; batchFirst: number | null; batchLast: number | null; seenRow: number | null };
    const unwritten = (await client.query<Unwritten>(sql.unwritten, [execution])).rows;
    const fresh: Unwritten[] = [];
    for (const u of unwritten) {
      const firstSeen: FirstSeen | undefined = u.seenRow !== null ? { row: u.seenRow } : u.batchFirst !== null ? { rows: [u.batchFirst, u.batchLast!] } : undefined;
      if (firstSeen) outcome.rejected.push({ row: u.row, line: u.line, key: u.key, code: ErrorCode.DuplicateKey, firstSeen });
      else fresh.push(u);
    }
    if (mode === 'insert') for (const u of fresh) outcome.rejected.push({ row: u.row, line: u.line, key: u.key, code: ErrorCode.AlreadyExists });
    if (fresh.length > 0) await client.query(sql.rememberKeys, [execution, fresh.map((u) => u.key), fresh.map((u) => u.row)]);
  }
  outcome.skipped = staged.count - inserted - updated - outcome.rejected.length;
  return outcome;
}
