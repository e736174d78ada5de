export const formats = ['csv', 'ndjson', 'json'] as const;
export type Format = (typeof formats)[number];

/** How files of each format are labelled (Content-Type): exports, quarantine files, reports. */
export const mediaTypes: Record<Format, string> = { csv: 'text/csv; charset=utf-8', ndjson: 'application/x-ndjson', json: 'application/json' };

/** Where reading stands: the next unread record starts at `byte`. */
export interface ReadPosition {
  /** Byte offset in the file of the next unread record. */
  byte: number;
  /** Data records consumed so far (a CSV header excluded); the next record is row + 1. */
  row: number;
  /**
   * Physical lines consumed so far (lines are 1-based): the next record starts on line + 1, or
   * later after blank lines. In a JSON array several elements may share a line; there it is the
   * number of newlines before `byte`.
   */
  line: number;
  /** CSV only: the header, once read, so a resumed read knows the columns. */
  header?: string[];
}

/** A record that is skipped (reported) while reading goes on. */
export const recordErrorCodes = ['COLUMN_COUNT', 'INVALID_JSON', 'NOT_AN_OBJECT', 'INVALID_UTF8'] as const;
export type RecordErrorCode = (typeof recordErrorCodes)[number];

/** A problem that makes the rest of the file unreadable. */
export const fatalCodes = ['EMPTY_FILE', 'BAD_HEADER', 'UNTERMINATED_QUOTE', 'MALFORMED_CSV', 'NOT_AN_ARRAY', 'MALFORMED_JSON'] as const;
export type FatalCode = (typeof fatalCodes)[number];

export type SourceRecord =
  /** CSV only, and only when reading starts at byte 0. */
  | { kind: 'header'; columns: string[]; end: ReadPosition }
  | { kind: 'row'; row: number; line: number; values: Record<string, unknown>; end: ReadPosition }
  | { kind: 'invalid'; row: number; line: number; code: RecordErrorCode; message: string; raw: string; end: ReadPosition };

/** The rest of the file cannot be read. Records before the damage have been yielded already. */
export class SourceFormatError extends Error {
  override readonly name = 'SourceFormatError';

  constructor(
    readonly code: FatalCode,
    message: string,
    /** The (1-based) line where the damage is, when known. */
    readonly line?: number,
    /** The data record the damage is in, when known. */
    readonly row?: number,
  ) {
    super(message);
  }
}

export const initialPosition: ReadPosition = Object.freeze({ byte: 0, row: 0, line: 0 });

export interface ReadOptions {
  format: Format;
  /** CSV field delimiter: one character, default ",". */
  delimiter?: string;
  /** Where `input` starts: initialPosition, or the `end` of a record read before. */
  start: ReadPosition;
  /**
   * A record larger than this (default 16 MiB) stops the read with a SourceFormatError instead of
   * being buffered: it is nearly always an unclosed quote or string swallowing the file.
   */
  maxRecordBytes?: number;
}

export const DEFAULT_MAX_RECORD_BYTES = 16 * 1024 * 1024;
