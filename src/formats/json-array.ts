import { formatSize, showByte, slices } from './bytes';
import { jsonRecord } from './json';
import { SourceFormatError, type ReadPosition, type SourceRecord } from './types';
import { Utf8Checker } from './utf8';

const [QUOTE, BACKSLASH, COMMA, LF, CR, SPACE, TAB] = [0x22, 0x5c, 0x2c, 0x0a, 0x0d, 0x20, 0x09];
const [OPEN_ARRAY, CLOSE_ARRAY, OPEN_OBJECT, CLOSE_OBJECT] = [0x5b, 0x5d, 0x7b, 0x7d];
const BOM = [0xef, 0xbb, 0xbf];

// Scanner states.
const BEFORE = 0; // before the opening "[" (BOM and whitespace allowed)
const FIRST = 1; // after "[": a value or "]"
const NEXT = 2; // after ",": a value
const VALUE = 3; // inside an element
const AFTER = 4; // after an element: "," or "]"
const DONE = 5; // after the closing "]": whitespace only

/**
 * Splits the top-level elements of one JSON array out of a byte stream, tracking strings, escapes
 * and bracket depth, without parsing them: each element's text is parsed on its own. Inside an
 * element only brackets, quotes and backslashes matter, so mismatched brackets inside an element
 * are left for JSON.parse to report (an invalid record); what breaks the array itself is fatal.
 */
class ArrayScanner {
  private state: number;
  private depth = 0;
  private inString = false;
  private escaped = false;
  private bomBytes = 0;
  /** Newlines before the scan position. */
  private newlines: number;
  private elementAt = 0;
  private elementLine = 0;
  /** The start of an element cut by the end of a slice. */
  private parts: Buffer[] = [];
  private partBytes = 0;

  /** Elements completed by the last scan: text, and [start byte, start line, end byte, end line] each. */
  readonly texts: string[] = [];
  readonly marks: number[] = [];
  /** What stopped the last scan, if anything did. */
  error: SourceFormatError | undefined;

  constructor(
    start: ReadPosition,
    private readonly maxRecordBytes: number,
  ) {
    // Resuming: reading starts just after an element.
    this.state = start.byte === 0 ? BEFORE : AFTER;
    this.newlines = start.line;
  }

  /** Scans buf, which starts at file offset `at`, stopping at the first structural error. */
  scan(buf: Buffer, at: number): void {
    this.texts.length = 0;
    this.marks.length = 0;
    let { state, depth, inString, escaped, newlines } = this;
    let segment = 0; // where the current element starts in buf
    const n = buf.length;
    let i = 0;
    for (; i < n; i++) {
      const b = buf[i]!;
      if (state === VALUE) {
        if (inString) {
          if (escaped) escaped = false;
          else if (b === BACKSLASH) escaped = true;
          else if (b === QUOTE) {
            inString = false;
            if (depth === 0) {
              this.element(buf, segment, i + 1, at, newlines); // a string element
              state = AFTER;
            }
          } else if (b === LF) newlines++; // not valid JSON, but still a line
          continue;
        }
        if (b === QUOTE) inString = true;
        else if (b === OPEN_OBJECT || b === OPEN_ARRAY) depth++;
        else if (b === CLOSE_OBJECT || b === CLOSE_ARRAY) {
          if (depth > 1) depth--;
          else if (depth === 1) {
            depth = 0;
            this.element(buf, segment, i + 1, at, newlines);
            state = AFTER;
          } else {
            this.element(buf, segment, i, at, newlines); // "]" right after a number or literal
            state = AFTER;
            i--; // and read it again as what follows the element
          }
        } else if (b === COMMA || b === SPACE || b === LF || b === CR || b === TAB) {
          if (depth > 0) {
            if (b === LF) newlines++;
          } else {
            this.element(buf, segment, i, at, newlines); // the end of a number or literal
            state = AFTER;
            i--;
          }
        }
        continue;
      }
      if (b === SPACE || b === TAB || b === CR) continue;
      if (b === LF) {
        newlines++;
        continue;
      }
      const where = `on line ${newlines + 1}`;
      if (state === AFTER) {
        if (b === COMMA) state = NEXT;
        else if (b === CLOSE_ARRAY) state = DONE;
        else {
          this.fail('MALFORMED_JSON', `malformed JSON array ${where}: expected "," or "]" after the element, found ${showByte(b)}`, newlines);
          break;
        }
      } else if (state === FIRST || state === NEXT) {
        if (b === CLOSE_ARRAY && state === FIRST) state = DONE;
        else if (b === CLOSE_ARRAY || b === COMMA) {
          this.fail('MALFORMED_JSON', `malformed JSON array ${where}: expected a value, found ${showByte(b)}${b === CLOSE_ARRAY ? ' (a trailing comma)' : ''}`, newlines);
          break;
        } else {
          state = VALUE;
          segment = i;
          this.elementAt = at + i;
          this.elementLine = newlines + 1;
          depth = 0;
          inString = false;
          escaped = false;
          i--; // read this byte again as the element's first
        }
      } else if (state === BEFORE) {
        if (at + i < 3 && this.bomBytes === at + i && b === BOM[at + i]) this.bomBytes++;
        else if (b === OPEN_ARRAY) state = FIRST;
        else {
          const hint = b === OPEN_OBJECT ? ' (for one JSON object per line, use format ndjson)' : b >= 0x80 ? ' (is the file UTF-8?)' : '';
          this.fail('NOT_AN_ARRAY', `the file is not a JSON array: it must start with "[", but starts with ${showByte(b)}${hint}`, newlines);
          break;
        }
      } else {
        this.fail('MALFORMED_JSON', `malformed JSON ${where}: ${showByte(b)} after the end of the array`, newlines);
        break;
      }
    }
    if (state === VALUE && !this.error) {
      this.parts.push(buf.subarray(segment));
      this.partBytes += n - segment;
      if (at + n - this.elementAt > this.maxRecordBytes) {
        const what = inString ? ': is a string never closed?' : '';
        this.fail('MALFORMED_JSON', `the array element starting on line ${this.elementLine} is larger than ${formatSize(this.maxRecordBytes)}${what}`, this.elementLine - 1);
      }
    }
    this.state = state;
    this.depth = depth;
    this.inString = inString;
    this.escaped = escaped;
    this.newlines = newlines;
  }

  private element(buf: Buffer, from: number, to: number, at: number, newlines: number): void {
    let text: string;
    if (this.partBytes > 0) {
      this.parts.push(buf.subarray(from, to));
      text = Buffer.concat(this.parts).toString('utf8');
      this.parts = [];
      this.partBytes = 0;
    } else {
      text = buf.toString('utf8', from, to);
    }
    this.texts.push(text);
    this.marks.push(this.elementAt, this.elementLine, at + to, newlines);
  }

  private fail(code: 'NOT_AN_ARRAY' | 'MALFORMED_JSON', message: string, newlines: number): void {
    this.error = new SourceFormatError(code, message, newlines + 1);
  }

  /** The input has ended: the array must have been closed. */
  finish(resuming: boolean): void {
    if (this.state === DONE) return;
    if (this.state === BEFORE && !resuming) throw new SourceFormatError('EMPTY_FILE', 'the file is empty: no JSON array');
    const line = this.newlines + 1;
    throw new SourceFormatError('MALFORMED_JSON', `malformed JSON array: the file ends on line ${line} before the array is closed (is it truncated?)`, line);
  }
}

/**
 * The elements of one top-level JSON array, from `start` on (0, or just after an element read
 * before); one array of records per input slice. Only one element is held in memory at a time.
 */
export async function* readJsonArray(input: AsyncIterable<unknown>, opts: { start: ReadPosition; maxRecordBytes: number }): AsyncGenerator<SourceRecord[]> {
  const { start } = opts;
  const scanner = new ArrayScanner(start, opts.maxRecordBytes);
  const utf8 = new Utf8Checker();
  let row = start.row;
  let fed = start.byte;
  for await (const slice of slices(input)) {
    utf8.feed(slice, fed);
    scanner.scan(slice, fed);
    fed += slice.length;
    const { texts, marks } = scanner;
    if (texts.length > 0) {
      const out: SourceRecord[] = new Array<SourceRecord>(texts.length);
      for (let k = 0; k < texts.length; k++) {
        row++;
        const to = marks[4 * k + 2]!;
        out[k] = jsonRecord(texts[k]!, row, marks[4 * k + 1]!, { byte: to, row, line: marks[4 * k + 3]! }, utf8.firstInvalid(marks[4 * k]!, to));
      }
      yield out;
    }
    if (scanner.error) throw scanner.error;
  }
  utf8.finish();
  scanner.finish(start.byte > 0);
}
