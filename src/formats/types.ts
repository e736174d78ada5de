/** Where reading stands: the next unread record starts at `byte`. */
export interface ReadPosition {
  /** Byte offset in the file of the next unread record. */
  byte: number;
  /** Data records consumed so far (a CSV header excluded); the next record is row + 1. */
  row: number;
  /** Newlines consumed so far; the next record starts on line + 1 or later. */
  line: number;
  /** CSV only: the header, once read, so a resumed read knows the columns. */
  header?: string[];
}

export const recordErrorCodes = ['COLUMN_COUNT', 'INVALID_JSON', 'NOT_AN_OBJECT', 'INVALID_UTF8'] as const;
export type RecordErrorCode = (typeof recordErrorCodes)[number];
export const fatalCodes = ['EMPTY_FILE', 'BAD_HEADER', 'UNTERMINATED_QUOTE', 'MALFORMED_CSV', 'NOT_AN_ARRAY', 'MALFORMED_JSON'] as const;
export type FatalCode = (typeof fatalCodes)[number];

export type SourceRecord =
  | { kind: 'header'; columns: string[]; end: ReadPosition }
  | { kind: 'row'; row: number; line: number; values: Record<string, unknown>; end: ReadPosition }
  | { kind: 'invalid'; row: number; line: number; code: RecordErrorCode; message: string; raw: string; end: ReadPosition };

/** The rest of the file cannot be read: the run stops with this. */
export class SourceFormatError extends Error {
  constructor(
    readonly code: FatalCode,
    message: string,
    readonly line?: number,
    readonly row?: number,
  ) {
    super(message);
  }
}

export const initialPosition: ReadPosition = { byte: 0, row: 0, line: 0 };

export const invalidUtf8Message = 'the record contains bytes that are not valid UTF-8 (is the file in another encoding?)';
