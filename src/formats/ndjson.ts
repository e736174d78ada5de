import { formatSize, slices } from './bytes';
import { jsonRecord } from './json';
import { SourceFormatError, type ReadPosition, type SourceRecord } from './types';
import { Utf8Checker } from './utf8';

const [LF, CR, SPACE, TAB] = [0x0a, 0x0d, 0x20, 0x09];

const isBlank = (buf: Buffer, from: number, to: number) => {
  for (let i = from; i < to; i++) {
    const b = buf[i];
    if (b !== SPACE && b !== TAB && b !== CR) return false;
  }
  return true;
};

/**
 * One JSON object per line (LF or CRLF; the last line may lack one), from `start` on; one array
 * of records per input slice. Blank lines are skipped but counted.
 */
export async function* readNdjson(input: AsyncIterable<unknown>, opts: { start: ReadPosition; maxRecordBytes: number }): AsyncGenerator<SourceRecord[]> {
  const { start, maxRecordBytes } = opts;
  const utf8 = new Utf8Checker();
  let { row, line } = start;
  let lineAt = start.byte; // file offset of the line being read
  let sawRecord = false;
  // A line cut by the end of a slice, waiting for the rest.
  let parts: Buffer[] = [];
  let partBytes = 0;

  /** buf[from, to) is a whole line without its LF, which ends at file offset `next`. */
  const take = (buf: Buffer, from: number, to: number, next: number, out: SourceRecord[]) => {
    line++;
    const lineStart = lineAt;
    lineAt = next;
    let s = from;
    let e = to;
    if (e > s && buf[e - 1] === CR) e--;
    if (lineStart === 0 && e - s >= 3 && buf[s] === 0xef && buf[s + 1] === 0xbb && buf[s + 2] === 0xbf) s += 3; // a BOM
    if (s === e) return;
    const b = buf[s];
    if ((b === SPACE || b === TAB || b === CR) && isBlank(buf, s, e)) return;
    sawRecord = true;
    row++;
    out.push(jsonRecord(buf.toString('utf8', s, e), row, line, { byte: next, row, line }, utf8.firstInvalid(lineStart, next)));
  };

  let fed = start.byte;
  for await (const slice of slices(input)) {
    utf8.feed(slice, fed);
    const at = fed;
    fed += slice.length;
    const out: SourceRecord[] = [];
    let from = 0;
    for (let nl = slice.indexOf(LF); nl !== -1; nl = slice.indexOf(LF, from)) {
      if (partBytes > 0) {
        parts.push(slice.subarray(from, nl));
        const whole = Buffer.concat(parts);
        parts = [];
        partBytes = 0;
        take(whole, 0, whole.length, at + nl + 1, out);
      } else {
        take(slice, from, nl, at + nl + 1, out);
      }
      from = nl + 1;
    }
    if (from < slice.length) {
      parts.push(slice.subarray(from));
      partBytes += slice.length - from;
    }
    if (out.length > 0) yield out;
    if (partBytes > maxRecordBytes) {
      throw new SourceFormatError('MALFORMED_JSON', `line ${line + 1} is longer than ${formatSize(maxRecordBytes)}: is the file really NDJSON (one JSON object per line)?`, line + 1, row + 1);
    }
  }
  utf8.finish();
  if (partBytes > 0) {
    const whole = Buffer.concat(parts);
    const out: SourceRecord[] = [];
    take(whole, 0, whole.length, fed, out);
    if (out.length > 0) yield out;
  }
  if (!sawRecord && start.byte === 0) throw new SourceFormatError('EMPTY_FILE', 'the file is empty: no JSON lines');
}
