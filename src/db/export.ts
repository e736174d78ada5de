import { to as copyTo } from 'pg-copy-streams';
import type { ExportFormat } from '../jobs/export';
import { ident, type PoolClient } from './pool';
import { andWhere, type RowSelection } from './row-queries';

/**
 * The queries of an export. Postgres writes the rows itself with COPY ... TO STDOUT, a chunk of
 * ids at a time: its CSV and JSON encoders are exact (numerics as stored, ISO dates and
 * timestamps) and far faster than encoding rows in Node.
 *
 * COPY takes no bind parameters, so the filter's values and the chunk's bounds travel as
 * transaction-local settings, set with bind parameters and read back with current_setting():
 * no value is ever spliced into SQL text.
 */

export interface ExportQueryOptions {
  selection: RowSelection;
  columns: readonly string[];
  format: ExportFormat;
  csvFormulaEscape: boolean;
}

// Text cells that a spreadsheet would take for a formula (= + - @) or that hide one behind a
// tab, CR or LF: OWASP's list. Compared by code point, which is cheaper than a pattern.
const FORMULA_STARTS = ['=', '+', '-', '@', '\t', '\r', '\n'].map((c) => c.charCodeAt(0)).join(', ');

/** A column as the file shows it. */
function valueSql(o: ExportQueryOptions, column: string): string {
  const value = `t.${ident(column)}`;
  // row_to_json writes every type exactly as JSON (timestamps in ISO 8601, numerics unrounded).
  if (o.format !== 'csv') return value;
  switch (o.selection.dataset.filterType(column)) {
    case 'timestamptz':
      // The same ISO 8601 text as in JSON (2024-05-01T10:00:00.123456+00:00); the session is in UTC.
      return `to_json(${value}) #>> '{}'`;
    case 'boolean':
      return `CASE WHEN ${value} THEN 'true' WHEN NOT ${value} THEN 'false' END`;
    case 'text':
      return o.csvFormulaEscape ? `CASE WHEN ascii(${value}) IN (${FORMULA_STARTS}) THEN '''' || ${value} ELSE ${value} END` : value;
    default:
      return value;
  }
}

/** The SELECT of an export's rows in id order, with `where` as its extra condition (for the bench's reference too). */
export function exportSelect(o: ExportQueryOptions, where = 'true'): string {
  const { dataset } = o.selection;
  const id = `t.${ident(dataset.idColumn)}`;
  const select = `SELECT ${o.columns.map((c) => `${valueSql(o, c)} AS ${ident(c)}`).join(', ')} FROM ${dataset.sqlTable} t WHERE ${where} ORDER BY ${id}`;
  // A subquery with ORDER BY is never flattened into the outer query, so its order holds.
  return o.format === 'csv' ? select : `SELECT row_to_json(r) FROM (${select}) r`;
}

/**
 * COPY's CSV writer with a quote and a delimiter that JSON text never contains (it escapes every
 * control character): each row_to_json value comes out as it is, one per line.
 */
const COPY_OPTIONS: Record<ExportFormat, string> = { csv: '(FORMAT csv)', ndjson: `(FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')`, json: `(FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')` };

const setting = (name: string) => `current_setting('batchflow.${name}')`;

/** A value as the text a setting holds; arrays as array literals (their elements quoted). */
function settingText(value: unknown): string {
  if (Array.isArray(value)) return `{${value.map((v) => `"${String(v).replace(/["\\]/g, '\\$&')}"`).join(',')}}`;
  return String(value);
}

export type ExportReader = ReturnType<typeof exportReader>;

/** Reads an export's rows chunk by chunk, on connections inside transactions the caller opened. */
export function exportReader(o: ExportQueryOptions) {
  const params: unknown[] = [];
  const id = `t.${ident(o.selection.dataset.idColumn)}`;
  const where = `${id} > ${setting('after')}::bigint AND ${id} <= ${setting('up_to')}::bigint${andWhere(o.selection, params, 't', (n) => setting(`p${n}`))}`;
  const copy = `COPY (${exportSelect(o, where)}) TO STDOUT WITH ${COPY_OPTIONS[o.format]}`;
  const set = async (client: PoolClient, values: [string, unknown][]) => {
    if (values.length === 0) return;
    const calls = values.map(([name], i) => `set_config('batchflow.${name}', $${i + 1}, true)`);
    await client.query(`SELECT ${calls.join(', ')}`, values.map(([, v]) => settingText(v)));
  };
  return {
    /** Fixes the session's output (UTC, ISO dates) and binds the filter's values, for this transaction. */
    async prepare(client: PoolClient): Promise<void> {
      await client.query("SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, YMD'");
      await set(client, params.map((v, i) => [`p${i + 1}`, v]));
    },
    /**
     * The rows with ids in (after, upTo], one line each (CSV rows, or JSON objects), as the pieces
     * COPY sent them in: the caller copies them where they go, so they need no joining first.
     */
    async chunk(client: PoolClient, after: number, upTo: number): Promise<{ pieces: Buffer[]; rows: number }> {
      await set(client, [['after', after], ['up_to', upTo]]);
      const stream = client.query(copyTo(copy));
      const pieces: Buffer[] = [];
      for await (const piece of stream) pieces.push(piece as Buffer);
      // The stream ends at CopyDone; the row count comes with CommandComplete just after it, which
      // the client has handled once it answers its next query (read at once, it was sometimes 0).
      await client.query('SELECT 1');
      return { pieces, rows: stream.rowCount };
    },
  };
}
