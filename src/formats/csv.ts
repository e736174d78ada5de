import { isUtf8 } from 'node:buffer';
import { invalidUtf8Message, SourceFormatError, type ReadPosition, type SourceRecord } from './types';

const [QUOTE, CR, LF] = [0x22, 0x0d, 0x0a];
// A record this large is almost always an unterminated quote swallowing the file: stop early
// instead of buffering the rest of the file in memory.
const MAX_RECORD_BYTES = 8 * 1024 * 1024;

interface Scanned {
  fields: string[];
  /** Index just past the record's line ending. */
  next: number;
  newlines: number;
}

/**
 * Scans one record starting at `at`; undefined when the buffer ends first (more data needed).
 * RFC 4180 quoting: "" inside a quoted field is a quote; quoted fields may hold delimiters and
 * line breaks. Line endings are LF or CRLF.
 */
function scanRecord(data: Buffer, at: number, delimiter: number, final: boolean, quote: number): Scanned | undefined {
  const lf = data.indexOf(LF, at);
  // Fast path: no quote before the end of the line, so the line splits on the delimiter.
  if (quote === -1 || (lf !== -1 && quote > lf)) {
    if (lf === -1 && !final) return undefined;
    const end = lf === -1 ? data.length : lf;
    const text = data.toString('utf8', at, end > at && data[end - 1] === CR ? end - 1 : end);
    return { fields: text.split(String.fromCharCode(delimiter)), next: lf === -1 ? end : lf + 1, newlines: lf === -1 ? 0 : 1 };
  }
  const fields: string[] = [];
  let newlines = 0;
  let i = at;
  for (;;) {
    if (data[i] === QUOTE) {
      let value = '';
      let from = i + 1;
      for (;;) {
        const close = data.indexOf(QUOTE, from);
        if (close === -1) {
          if (final) throw new UnterminatedQuote();
          return undefined;
        }
        value += data.toString('utf8', from, close);
        if (data[close + 1] === QUOTE) {
          value += '"';
          from = close + 2;
          continue;
        }
        if (close + 1 >= data.length && !final) return undefined;
        i = close + 1;
        break;
      }
      for (let k = value.indexOf('\n'); k !== -1; k = value.indexOf('\n', k + 1)) newlines++;
      fields.push(value);
    } else {
      let k = i;
      while (k < data.length && data[k] !== delimiter && data[k] !== LF && data[k] !== QUOTE) k++;
      if (data[k] === QUOTE) throw new StrayQuote();
      if (k >= data.length && !final) return undefined;
      fields.push(data.toString('utf8', i, data[k] === LF && k > i && data[k - 1] === CR ? k - 1 : k));
      i = k;
    }
    if (i >= data.length) return { fields, next: i, newlines };
    const b = data[i];
    if (b === delimiter) {
      i++;
      if (i >= data.length && !final) return undefined;
      if (i >= data.length) return { fields: [...fields, ''], next: i, newlines };
      continue;
    }
    if (b === LF) return { fields, next: i + 1, newlines: newlines + 1 };
    if (b === CR && data[i + 1] === LF) return { fields, next: i + 2, newlines: newlines + 1 };
    if (b === CR && i + 1 >= data.length && !final) return undefined;
    throw new StrayQuote();
  }
}

class UnterminatedQuote extends Error {}
class StrayQuote extends Error {}

const isBlankLine = (fields: string[]) => fields.length === 1 && fields[0] === '';

/** CSV records from `start` on, each with the position right after it. */
export async function* readCsv(input: AsyncIterable<Buffer>, opts: { delimiter: string; start: ReadPosition }): AsyncGenerator<SourceRecord[]> {
  const { start } = opts;
  const delimiter = opts.delimiter.charCodeAt(0);
  let header = start.header;
  if (start.byte > 0 && !header) throw new Error('resuming a CSV read needs the header in the start position');
  let last: ReadPosition = start;
  let data: Buffer = Buffer.alloc(0);
  let dataAt = start.byte; // absolute offset of data[0]
  let pos = 0;
  let nextQuote = -1;
  let checkedUpTo = 0;

  const records = function* (final: boolean): Generator<SourceRecord> {
    if (dataAt === 0 && pos === 0) {
      if (data.length < 3 && !final) return; // a BOM may still be arriving
      if (data[0] === 0xef && data[1] === 0xbb && data[2] === 0xbf) pos = 3;
    }
    while (pos < data.length) {
      const line = last.line + 1;
      let scanned: Scanned | undefined;
      try {
        // Where the next quote is, found once per buffer pass rather than once per record.
        if (nextQuote !== -1 && nextQuote < pos) nextQuote = data.indexOf(QUOTE, pos);
        scanned = scanRecord(data, pos, delimiter, final, nextQuote);
      } catch (err) {
        const row = header ? last.row + 1 : undefined;
        if (err instanceof UnterminatedQuote) throw new SourceFormatError('UNTERMINATED_QUOTE', `unterminated quoted field starting on line ${line}: the quote is never closed`, line, row);
        if (err instanceof StrayQuote) throw new SourceFormatError('MALFORMED_CSV', `malformed CSV on line ${line}: a quote must open a field and close it just before a delimiter or line end`, line, row);
        throw err;
      }
      if (!scanned) {
        if (data.length - pos > MAX_RECORD_BYTES) throw new SourceFormatError('UNTERMINATED_QUOTE', `the record starting on line ${line} is larger than ${MAX_RECORD_BYTES >> 20} MiB: is a quote never closed?`, line);
        return;
      }
      const recordStart = pos;
      pos = scanned.next;
      // One check per buffer up to its last newline (LF never sits inside a UTF-8 sequence);
      // records past that, or in a buffer with bad bytes, are checked one by one.
      const validUtf8 = pos <= checkedUpTo || isUtf8(data.subarray(recordStart, pos));
      const end: ReadPosition = { byte: dataAt + pos, row: last.row, line: last.line + scanned.newlines, header };
      if (isBlankLine(scanned.fields)) {
        last = end;
        continue;
      }
      const { fields } = scanned;
      if (!header) {
        header = fields.map((h) => h.trim());
        const blank = header.indexOf('');
        const dupes = header.filter((h, i) => header!.indexOf(h) !== i);
        if (!validUtf8) throw new SourceFormatError('BAD_HEADER', `the header row (line ${line}) is not valid UTF-8`, line);
        if (blank >= 0) throw new SourceFormatError('BAD_HEADER', `the header row (line ${line}) has an empty name for column ${blank + 1}`, line);
        if (dupes.length > 0) throw new SourceFormatError('BAD_HEADER', `the header row (line ${line}) repeats column(s) ${[...new Set(dupes)].join(', ')}`, line);
        last = { ...end, header };
        yield { kind: 'header', columns: header, end: last };
        continue;
      }
      end.row = last.row + 1;
      last = end;
      if (!validUtf8) {
        yield { kind: 'invalid', row: end.row, line, code: 'INVALID_UTF8', message: invalidUtf8Message, raw: fields.join(opts.delimiter), end };
      } else if (fields.length !== header.length) {
        yield { kind: 'invalid', row: end.row, line, code: 'COLUMN_COUNT', message: `expected ${header.length} columns, found ${fields.length}`, raw: fields.join(opts.delimiter), end };
      } else {
        const values: Record<string, string> = {};
        for (let i = 0; i < header.length; i++) values[header[i]!] = fields[i]!;
        yield { kind: 'row', row: end.row, line, values, end };
      }
    }
  };

  for await (const chunk of input) {
    const carryAt = dataAt + pos;
    data = pos < data.length ? Buffer.concat([data.subarray(pos), chunk]) : chunk;
    dataAt = carryAt;
    pos = 0;
    nextQuote = data.indexOf(QUOTE);
    const lastNewline = data.lastIndexOf(LF) + 1;
    checkedUpTo = lastNewline > 0 && isUtf8(data.subarray(0, lastNewline)) ? lastNewline : 0;
    yield [...records(false)];
  }
  yield [...records(true)];
  if (!header && start.byte === 0) throw new SourceFormatError('EMPTY_FILE', 'the file is empty: no header row', 1);
}
