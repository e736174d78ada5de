import type { Readable } from 'node:stream';
import { readCsv } from './csv';
import { readJsonArray } from './json-array';
import { readNdjson } from './ndjson';
import type { ReadPosition, SourceRecord } from './types';

export * from './types';

export type Format = 'csv' | 'ndjson' | 'json';

/**
 * Records of a file read as a stream from `start` (the stream begins at start.byte), in arrays:
 * one per chunk read, so the per-record cost stays synchronous.
 */
export function readRecords(input: Readable, opts: { format: Format; delimiter?: string; start: ReadPosition }): AsyncGenerator<SourceRecord[]> {
  switch (opts.format) {
    case 'csv':
      return readCsv(input as AsyncIterable<Buffer>, { delimiter: opts.delimiter ?? ',', start: opts.start });
    case 'ndjson':
      return readNdjson(input as AsyncIterable<Buffer>, opts.start);
    case 'json':
      return readJsonArray(input as AsyncIterable<Buffer>, opts.start);
  }
}

/** The format a file name suggests, if any. */
export function detectFormat(source: string): Format | undefined {
  const name = source.toLowerCase();
  if (/\.(csv|tsv|txt)$/.test(name)) return 'csv';
  if (/\.(ndjson|jsonl)$/.test(name)) return 'ndjson';
  if (name.endsWith('.json')) return 'json';
  return undefined;
}
