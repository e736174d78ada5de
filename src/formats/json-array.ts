import { SourceFormatError, type ReadPosition, type SourceRecord } from './types';
import { jsonRecord } from './ndjson';

const [QUOTE, BACKSLASH, COMMA, NEWLINE] = [0x22, 0x5c, 0x2c, 0x0a];
const [OPEN_ARRAY, CLOSE_ARRAY, OPEN_OBJECT, CLOSE_OBJECT] = [0x5b, 0x5d, 0x7b, 0x7d];
const isSpace = (b: number) => b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;

type State = 'before' | 'first' | 'next' | 'value' | 'after' | 'done';

/**
 * The elements of one top-level JSON array, read as a stream: a byte scanner finds where each
 * element ends (tracking strings, escapes and nesting) and only that element is parsed. Reading
 * can resume right after any element.
 */
export async function* readJsonArray(input: AsyncIterable<Buffer>, start: ReadPosition): AsyncGenerator<SourceRecord[]> {
  let state: State = start.byte === 0 ? 'before' : 'after';
  let offset = start.byte; // absolute offset of the chunk being scanned
  let newlines = start.line;
  let row = start.row;
  let depth = 0;
  let inString = false;
  let escaped = false;
  let parts: Buffer[] = [];
  let elementLine = 0;
  let sawContent = start.byte > 0;
  const fail = (message: string): never => {
    throw new SourceFormatError(sawContent ? 'MALFORMED_JSON' : 'NOT_AN_ARRAY', `${message} on line ${newlines + 1}`, newlines + 1);
  };

  for await (const chunk of input) {
    const records: SourceRecord[] = [];
    let i = 0;
    let segment = state === 'value' ? 0 : -1;
    while (i < chunk.length) {
      const b = chunk[i]!;
      if (state === 'value') {
        let endsAt = -1; // element ends before index endsAt
        if (inString) {
          if (escaped) escaped = false;
          else if (b === BACKSLASH) escaped = true;
          else if (b === QUOTE) inString = false;
        } else if (b === QUOTE) inString = true;
        else if (b === OPEN_OBJECT || b === OPEN_ARRAY) depth++;
        else if (b === CLOSE_OBJECT || b === CLOSE_ARRAY) {
          if (depth === 0) endsAt = i;
          else if (--depth === 0) endsAt = i + 1;
        } else if (depth === 0 && (b === COMMA || isSpace(b))) endsAt = i;
        if (b === NEWLINE && endsAt !== i) newlines++;
        if (endsAt >= 0) {
          parts.push(chunk.subarray(segment, endsAt));
          row++;
          records.push(jsonRecord(Buffer.concat(parts), row, elementLine, { byte: offset + endsAt, row, line: newlines }));
          parts = [];
          state = 'after';
          // A closing bracket belongs to the element (endsAt = i + 1); a delimiter is re-read (endsAt = i).
          i = endsAt;
          continue;
        }
        i++;
        continue;
      }
      if (isSpace(b) || (state === 'before' && offset + i < 3 && (b === 0xef || b === 0xbb || b === 0xbf))) {
        if (b === NEWLINE) newlines++;
        i++;
        continue;
      }
      switch (state) {
        case 'before':
          if (b !== OPEN_ARRAY) fail('the file is not a JSON array: expected "["');
          sawContent = true;
          state = 'first';
          break;
        case 'first':
        case 'next':
          if (b === CLOSE_ARRAY && state === 'first') {
            state = 'done';
            break;
          }
          if (b === CLOSE_ARRAY || b === COMMA) fail(`expected a value, found "${String.fromCharCode(b)}"`);
          state = 'value';
          segment = i;
          elementLine = newlines + 1;
          depth = 0;
          inString = false;
          escaped = false;
          continue; // scan this byte as the element's first
        case 'after':
          sawContent = true;
          if (b === COMMA) state = 'next';
          else if (b === CLOSE_ARRAY) state = 'done';
          else fail(`expected "," or "]" after an element, found "${String.fromCharCode(b)}"`);
          break;
        case 'done':
          fail('unexpected data after the end of the array');
      }
      i++;
    }
    if (state === 'value') parts.push(chunk.subarray(segment));
    offset += chunk.length;
    yield records;
  }
  if (!sawContent && start.byte === 0) throw new SourceFormatError('EMPTY_FILE', 'the file is empty: no JSON array', 1);
  if ((state as State) !== 'done') fail('the array is not closed (is the file truncated?)');
}
