import { isUtf8 } from 'node:buffer';
import { invalidUtf8Message, SourceFormatError, type ReadPosition, type SourceRecord } from './types';

const NEWLINE = 0x0a;

/** Parses one delimited JSON value: a row, or an invalid record saying why not. */
export function jsonRecord(bytes: Buffer, row: number, line: number, end: ReadPosition): SourceRecord {
  const raw = bytes.toString('utf8');
  if (!isUtf8(bytes)) return { kind: 'invalid', row, line, code: 'INVALID_UTF8', message: invalidUtf8Message, raw, end };
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (err) {
    return { kind: 'invalid', row, line, code: 'INVALID_JSON', message: `invalid JSON: ${(err as Error).message}`, raw, end };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return { kind: 'invalid', row, line, code: 'NOT_AN_OBJECT', message: `expected a JSON object, found ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}`, raw, end };
  }
  return { kind: 'row', row, line, values: value as Record<string, unknown>, end };
}

const isBlank = (b: Buffer) => b.every((c) => c === 0x20 || c === 0x09 || c === 0x0d);

/** One JSON object per line; blank lines are skipped but counted. */
export async function* readNdjson(input: AsyncIterable<Buffer>, start: ReadPosition): AsyncGenerator<SourceRecord[]> {
  let pending = Buffer.alloc(0);
  let pendingAt = start.byte;
  let { row, line } = start;
  let sawContent = false;
  const emit = function* (bytes: Buffer, endByte: number, newline: boolean): Generator<SourceRecord> {
    if (newline) line++;
    let text = bytes;
    if (text.length > 0 && text[text.length - 1] === 0x0d) text = text.subarray(0, -1);
    if (pendingAt === 0 && text[0] === 0xef && text[1] === 0xbb && text[2] === 0xbf) text = text.subarray(3);
    if (isBlank(text)) return;
    sawContent = true;
    row++;
    yield jsonRecord(Buffer.from(text), row, newline ? line : line + 1, { byte: endByte, row, line });
  };
  for await (const chunk of input) {
    const data = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    let from = 0;
    const records: SourceRecord[] = [];
    for (let nl = data.indexOf(NEWLINE); nl !== -1; nl = data.indexOf(NEWLINE, from)) {
      records.push(...emit(data.subarray(from, nl), pendingAt + nl + 1, true));
      from = nl + 1;
    }
    yield records;
    pendingAt += from;
    pending = Buffer.from(data.subarray(from));
  }
  if (pending.length > 0) yield [...emit(pending, pendingAt + pending.length, false)];
  if (!sawContent && start.byte === 0) throw new SourceFormatError('EMPTY_FILE', 'the file is empty: no JSON lines', 1);
}
