import type { ExportFormat } from '../jobs/export';

/**
 * How an export frames the rows Postgres writes (one line per row) into a file of its format.
 * Each function depends only on its arguments, so a part written again after a crash has the
 * same bytes as the first time.
 */

const NEWLINE = 0x0a;
const COMMA = 0x2c;

/** A CSV field, quoted when it must be (RFC 4180). */
const csvField = (s: string) => (/[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s);

/** What the file begins with: the CSV header, or the JSON array's opening bracket. */
export function fileHead(format: ExportFormat, columns: readonly string[]): string {
  if (format === 'csv') return `${columns.map(csvField).join(',')}\n`;
  return format === 'json' ? '[\n' : '';
}

/** What the file ends with, after `rows` rows: the JSON array's closing bracket. */
export function fileTail(format: ExportFormat, rows: number): string {
  if (format !== 'json') return '';
  return rows > 0 ? '\n]\n' : ']\n';
}

/**
 * Rows as the file holds them, from the pieces Postgres sent them in. CSV and NDJSON keep
 * Postgres's lines (the same pieces); a JSON array separates its elements with ",\n" (JSON text
 * has no raw line breaks, so every "\n" ends a row), with none before the file's first row
 * (`first`) and none after the chunk's last.
 */
export function frameRows(format: ExportFormat, pieces: Buffer[], first: boolean): Buffer[] {
  if (format !== 'json') return pieces;
  const lines = Buffer.concat(pieces);
  if (lines.length === 0) return [];
  let rows = 0;
  for (let i = lines.indexOf(NEWLINE); i !== -1; i = lines.indexOf(NEWLINE, i + 1)) rows++;
  const out = Buffer.allocUnsafe(lines.length - 1 + (rows - 1) + (first ? 0 : 2));
  let at = 0;
  if (!first) {
    out[at++] = COMMA;
    out[at++] = NEWLINE;
  }
  for (let start = 0, end = lines.indexOf(NEWLINE); end !== -1; start = end + 1, end = lines.indexOf(NEWLINE, start)) {
    at += lines.copy(out, at, start, end);
    if (end + 1 < lines.length) {
      out[at++] = COMMA;
      out[at++] = NEWLINE;
    }
  }
  return [out];
}
