import type { ReadPosition, SourceRecord } from './types';
import { invalidUtf8Message } from './utf8';

/**
 * V8 quotes the start of the text it could not parse (`Unexpected token 'x', "{"email": x..." is not
 * valid JSON`): drop the quote. Messages reach results, and so workflow history, which holds no
 * row data; the text is the error's raw input.
 */
const withoutQuote = (message: string) => message.replace(/, ".*" is not valid JSON$/s, '');

const describe = (value: unknown) => (value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value === 'object' ? 'an object' : `a ${typeof value}`);

/**
 * One JSON value already delimited in the file (an NDJSON line, an array element): a row if it is
 * an object, else an invalid record saying why not. `invalidUtf8` is Utf8Checker.firstInvalid's
 * answer for its bytes.
 */
export function jsonRecord(text: string, row: number, line: number, end: ReadPosition, invalidUtf8: number): SourceRecord {
  if (invalidUtf8 !== -1) return { kind: 'invalid', row, line, code: 'INVALID_UTF8', message: invalidUtf8Message(invalidUtf8), raw: text, end };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { kind: 'invalid', row, line, code: 'INVALID_JSON', message: `invalid JSON: ${withoutQuote((err as Error).message)}`, raw: text, end };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { kind: 'invalid', row, line, code: 'NOT_AN_OBJECT', message: `expected a JSON object, found ${describe(value)}`, raw: text, end };
  }
  return { kind: 'row', row, line, values: value as Record<string, unknown>, end };
}
