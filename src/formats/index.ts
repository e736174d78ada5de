import { readCsv } from './csv';
import { readJsonArray } from './json-array';
import { readNdjson } from './ndjson';
import { DEFAULT_MAX_RECORD_BYTES, type Format, type ReadOptions, type SourceRecord } from './types';

export * from './types';

/**
 * The records of a file read as a stream from `opts.start`: `input` must yield the file's bytes
 * from start.byte on (the caller opened the file there). Records come in arrays, one per slice of
 * at most 64 KiB of input, so the per-record work stays synchronous; each record's `end` is the
 * position to resume from after it. A problem with one record is an 'invalid' record and reading
 * goes on; a problem that leaves the rest of the file unreadable throws SourceFormatError, after
 * the records before it. Memory stays bounded: one slice, and one record at most maxRecordBytes.
 */
export function readRecords(input: AsyncIterable<Buffer | Uint8Array>, opts: ReadOptions): AsyncGenerator<SourceRecord[]> {
  const { start } = opts;
  if (!Number.isSafeInteger(start.byte) || start.byte < 0 || !Number.isSafeInteger(start.row) || start.row < 0 || !Number.isSafeInteger(start.line) || start.line < 0) {
    throw new RangeError(`readRecords: not a read position: ${JSON.stringify(start)}`);
  }
  const maxRecordBytes = opts.maxRecordBytes ?? DEFAULT_MAX_RECORD_BYTES;
  switch (opts.format) {
    case 'csv': {
      const delimiter = opts.delimiter ?? ',';
      if ([...delimiter].length !== 1 || delimiter === '"' || delimiter === '\r' || delimiter === '\n') {
        throw new RangeError(`the CSV delimiter must be one character other than a quote or a line break, got ${JSON.stringify(delimiter)}`);
      }
      if (start.byte > 0 && !start.header?.length) throw new Error(`resuming a CSV read at byte ${start.byte} needs the header (start.header)`);
      return readCsv(input, { delimiter, start, maxRecordBytes });
    }
    case 'ndjson':
      return readNdjson(input, { start, maxRecordBytes });
    case 'json':
      return readJsonArray(input, { start, maxRecordBytes });
    default:
      throw new TypeError(`readRecords: unknown format ${JSON.stringify(opts.format satisfies never)}`);
  }
}

/** The records of readRecords one at a time. */
export async function* eachRecord(batches: AsyncIterable<SourceRecord[]>): AsyncGenerator<SourceRecord> {
  for await (const batch of batches) {
    for (const record of batch) yield record;
  }
}

const formatOfExtension: Record<string, Format> = { csv: 'csv', tsv: 'csv', ndjson: 'ndjson', jsonl: 'ndjson', json: 'json' };

/**
 * The format a file name suggests, by its last extension (case-insensitive): .csv and .tsv are
 * CSV (a .tsv still needs delimiter "\t"), .ndjson and .jsonl NDJSON, .json a JSON array. Anything
 * else, compressed names such as .csv.gz included (nothing here decompresses), is undefined.
 */
export function detectFormat(source: string): Format | undefined {
  const ext = /\.([a-z0-9]+)$/i.exec(source)?.[1]?.toLowerCase();
  return ext !== undefined && Object.hasOwn(formatOfExtension, ext) ? formatOfExtension[ext] : undefined;
}
