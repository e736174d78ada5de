import { z } from 'zod';
import type { Dataset, DatasetRegistry } from '../datasets';
import { REDACTED, UNDECIDED } from '../datasets/dataset';
import { normaliserSchema } from '../datasets/normalise';
import { similarity } from '../datasets/similarity';
import { detectFormat, formats, initialPosition, readRecords, SourceFormatError, type Format } from '../formats';
import { datasetNameSchema } from '../jobs/datasets';
import { delimiterSchema, importParamsSchema } from '../jobs/import';
import { strictObject } from '../jobs/strict';
import type { SourceOpener } from '../storage';
import { columnProfileSchema, profileColumn, type ColumnProfile } from './detect';

/**
 * Inspecting a file before importing it: a sample of its rows, each column's detected type, and
 * against a dataset, which header feeds which column and which columns would fail and why.
 */

export const inspectRequestSchema = strictObject({
  source: importParamsSchema.shape.source,
  /** From the extension, else sniffed from the first bytes. */
  format: z.enum(formats).optional(),
  /** CSV: sniffed from the header line when absent. */
  delimiter: delimiterSchema.optional(),
  /** Compare the file with this dataset: mapping, and which columns would fail. */
  dataset: datasetNameSchema.optional(),
  /** Rows read from the start of the file. */
  sampleRows: z.number().int().min(1).max(100_000).default(5_000),
  /** Region for national phone numbers (GB, US, …). */
  region: z
    .string()
    .regex(/^[A-Z]{2}$/, 'must be a two-letter region code such as GB or US')
    .optional(),
}).meta({ examples: [{ source: 'store://uploads/2026-11-23/5b0e…/users.csv', dataset: 'users', sampleRows: 5000 }] });
export type InspectRequest = z.infer<typeof inspectRequestSchema>;

const columnCheckSchema = z.object({
  column: z.string(),
  header: z.string().nullable(),
  /** ok; fails (some sampled values are refused); missing (required, no header feeds it); absent (optional, no header). */
  status: z.enum(['ok', 'fails', 'missing', 'absent']),
  failing: z.number().int(),
  message: z.string().optional(),
  examples: z.array(z.string()),
  /** Normalisers the detected values call for that the declaration lacks. */
  suggest: z.array(normaliserSchema).optional(),
});

export const inspectReportSchema = z
  .object({
    source: z.string(),
    format: z.enum(formats),
    delimiter: z.string().optional(),
    sampledRows: z.number().int(),
    /** Whether the sample is the whole file. */
    wholeFile: z.boolean(),
    bytesRead: z.number().int(),
    bytesTotal: z.number().int(),
    columns: z.array(columnProfileSchema),
    /** Rows that could not be read, and damage that stopped reading. */
    problems: z.array(z.string()),
    dataset: z
      .object({
        name: z.string(),
        /** Header → column: the import's `mapping` param. */
        mapping: z.record(z.string(), z.string()),
        columns: z.array(columnCheckSchema),
        ignoredHeaders: z.array(z.string()),
        /** Keys repeated within the sample: an import rejects the later rows. */
        duplicateKeys: z.number().int(),
      })
      .optional(),
    /** Import params this report suggests: source, format, delimiter, dataset and mapping. */
    params: z.record(z.string(), z.unknown()),
  })
  .meta({
    id: 'InspectReport',
    examples: [
      {
        source: 'store://uploads/2026-11-23/5b0e…/users.csv',
        format: 'csv',
        delimiter: ',',
        sampledRows: 3,
        wholeFile: true,
        bytesRead: 131,
        bytesTotal: 131,
        columns: [
          { header: 'E-mail', type: 'email', confidence: 1, formats: [], nullRate: 0, distinct: 3, examples: ['ada@example.com'], problems: [], normalise: ['lower'] },
          { header: 'Joined', type: 'date', confidence: 1, formats: [{ format: 'DD/MM/YYYY', count: 3 }], nullRate: 0, distinct: 3, examples: ['23/11/2026'], problems: [], normalise: [{ date: ['DD/MM/YYYY'] }] },
        ],
        problems: [],
        dataset: {
          name: 'users',
          mapping: { 'E-mail': 'email', Joined: 'signup_date' },
          columns: [
            { column: 'email', header: 'E-mail', status: 'ok', failing: 0, examples: [] },
            { column: 'signup_date', header: 'Joined', status: 'fails', failing: 3, message: 'must be a date (YYYY-MM-DD)', examples: ['23/11/2026'], suggest: [{ date: ['DD/MM/YYYY'] }] },
          ],
          ignoredHeaders: [],
          duplicateKeys: 0,
        },
        params: { source: 'store://uploads/2026-11-23/5b0e…/users.csv', format: 'csv', dataset: 'users', mapping: { 'E-mail': 'email', Joined: 'signup_date' } },
      },
    ],
  })
  .describe("The sample's profile, and against a dataset the mapping and the columns that would fail");
export type InspectReport = z.infer<typeof inspectReportSchema>;

/** The file cannot be read as the format at all (empty, no header, not JSON). */
export class UnreadableFileError extends Error {}

/** JSON array, NDJSON or CSV from the first non-blank byte; CSV's delimiter from the header line. */
function sniff(head: string): { format: Format; delimiter?: string } {
  const first = head.replace(/^\uFEFF/, '').trimStart()[0];
  if (first === '[') return { format: 'json' };
  if (first === '{') return { format: 'ndjson' };
  return { format: 'csv', delimiter: sniffDelimiter(head) };
}

function sniffDelimiter(head: string): string {
  const line = head.replace(/^\uFEFF/, '').split(/\r?\n/)[0] ?? '';
  const outsideQuotes = line.replace(/"[^"]*"/g, '');
  const counts = [',', ';', '\t', '|'].map((d) => [d, outsideQuotes.split(d).length - 1] as const);
  const best = counts.sort((a, b) => b[1] - a[1])[0]!;
  return best[1] > 0 ? best[0] : ',';
}

/** Reads the first rows of a source, profiles each column and, given a dataset, checks the file against it. */
export async function inspectSource(sources: SourceOpener, datasets: DatasetRegistry, request: InspectRequest): Promise<InspectReport> {
  const dataset = request.dataset === undefined ? undefined : datasets.get(request.dataset);
  const opened = await sources.open(request.source);
  const chunks = opened.stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  const firstChunk = await chunks.next();
  const head = firstChunk.done ? Buffer.alloc(0) : Buffer.from(firstChunk.value);
  const sniffed = sniff(head.subarray(0, 64 * 1024).toString('utf8'));
  const format = request.format ?? detectFormat(request.source) ?? sniffed.format;
  const delimiter = format === 'csv' ? (request.delimiter ?? sniffDelimiter(head.subarray(0, 64 * 1024).toString('utf8'))) : undefined;
  async function* bytes() {
    if (head.length > 0) yield head;
    for (let next = await chunks.next(); !next.done; next = await chunks.next()) yield next.value;
  }

  let headers: string[] = [];
  const rows: Record<string, unknown>[] = [];
  const problems: string[] = [];
  let bytesRead = 0;
  let wholeFile = true;
  try {
    reading: for await (const records of readRecords(bytes(), { format, delimiter, start: initialPosition })) {
      for (const record of records) {
        if (rows.length >= request.sampleRows) {
          wholeFile = false;
          break reading;
        }
        bytesRead = record.end.byte;
        if (record.kind === 'header') headers = record.columns;
        else if (record.kind === 'invalid') problems.push(`row ${record.row} (line ${record.line}) cannot be read: ${record.message}`);
        else {
          rows.push(record.values);
          if (format !== 'csv') for (const key of Object.keys(record.values)) if (!headers.includes(key)) headers.push(key);
        }
      }
    }
  } catch (err) {
    if (!(err instanceof SourceFormatError)) throw err;
    if (rows.length === 0 && headers.length === 0) throw new UnreadableFileError(`${request.source} cannot be read as ${format}: ${err.message}`);
    problems.push(`reading stopped at line ${err.line ?? '?'}: ${err.message}`);
  } finally {
    opened.stream.destroy();
  }

  const columns = headers.map((h) => profileColumn(h, rows.map((r) => r[h]), { region: request.region }));
  const comparison = dataset && compareWithDataset(dataset, headers, rows, columns);
  return {
    source: request.source,
    format,
    ...(delimiter !== undefined && { delimiter }),
    sampledRows: rows.length,
    wholeFile,
    bytesRead: wholeFile ? opened.size : bytesRead,
    bytesTotal: opened.size,
    columns,
    problems: problems.slice(0, 20).concat(problems.length > 20 ? [`… and ${problems.length - 20} more unreadable rows`] : []),
    ...(comparison && { dataset: comparison }),
    params: { source: request.source, format, ...(delimiter !== undefined && delimiter !== ',' && { delimiter }), ...(dataset && { dataset: dataset.name, mapping: comparison!.mapping }) },
  };
}

const normalName = (s: string) => s.trim().toLowerCase().replace(/[^a-z0-9]+/g, '_').replace(/^_|_$/g, '');

/** Declared types a detected type can feed, for mapping a header no name or alias matches. */
const feeds: Record<string, readonly string[]> = {
  email: ['email'],
  date: ['date'],
  timestamp: ['timestamp'],
  boolean: ['boolean'],
  integer: ['integer', 'decimal'],
  decimal: ['decimal'],
};

/** Header → column: by name or alias, then by a close name, then by type when only one column fits. */
function suggestMapping(dataset: Dataset, headers: readonly string[], profiles: readonly ColumnProfile[]): Record<string, string> {
  const mapping: Record<string, string> = {};
  const taken = new Set<string>();
  const assign = (h: string, c: string) => {
    mapping[h] = c;
    taken.add(c);
  };
  for (const h of headers) {
    const c = dataset.columnFor(h);
    if (c && !taken.has(c)) assign(h, c);
  }
  // A close name ("E-mail adress"), or a name that ends the header ("Customer Name" → name).
  const closeness = (h: string, name: string) => {
    const [header, candidate] = [normalName(h), normalName(name)];
    return header.endsWith(`_${candidate}`) ? 0.8 : similarity(header, candidate);
  };
  for (const h of headers.filter((x) => !(x in mapping))) {
    const candidates = dataset.columnNames
      .filter((c) => !taken.has(c))
      .map((c) => ({ c, score: Math.max(...[c, ...(dataset.columns[c]!.aliases ?? [])].map((name) => closeness(h, name))) }))
      .filter((x) => x.score >= 0.75)
      .sort((a, b) => b.score - a.score);
    if (candidates[0]) assign(h, candidates[0].c);
  }
  for (const [i, h] of headers.entries()) {
    if (h in mapping) continue;
    const type = profiles[i]!.type;
    const fitting = dataset.columnNames.filter((c) => !taken.has(c) && (feeds[type] ?? []).includes(dataset.columns[c]!.declaration.type));
    if (fitting.length === 1) assign(h, fitting[0]!);
  }
  return mapping;
}

/** The raw value a column would receive, as a row error would show it (secret columns hidden). */
const shown = (dataset: Dataset, column: string, v: unknown) => (dataset.columns[column]!.secret ? REDACTED : typeof v === 'string' ? v : JSON.stringify(v));

function compareWithDataset(dataset: Dataset, headers: string[], rows: readonly Record<string, unknown>[], profiles: readonly ColumnProfile[]): NonNullable<InspectReport['dataset']> {
  const mapping = suggestMapping(dataset, headers, profiles);
  const headerOf = new Map(Object.entries(mapping).map(([h, c]) => [c, h]));
  // Each row's parsed key values; null once one of them is refused (that row is rejected anyway).
  const parsedKeys: (string[] | null)[] = rows.map(() => []);
  const columns = dataset.columnNames.map((column) => {
    const spec = dataset.columns[column]!;
    const header = headerOf.get(column) ?? null;
    if (header === null) return { column, header, status: spec.required ? ('missing' as const) : ('absent' as const), failing: 0, examples: [], ...(spec.required && { message: 'required, and no header feeds it: add a mapping' }) };
    const failures: { raw: unknown; message: string }[] = [];
    rows.forEach((row, i) => {
      const raw = row[header];
      const value = raw === '' || raw === null ? undefined : raw;
      const quick = spec.quick ? spec.quick(value) : UNDECIDED;
      let parsed: unknown = quick;
      if (quick === UNDECIDED) {
        const result = spec.schema.safeParse(value);
        if (!result.success) {
          failures.push({ raw, message: result.error.issues[0]?.message ?? 'invalid' });
          if (dataset.key.includes(column)) parsedKeys[i] = null;
          return;
        }
        parsed = result.data;
      }
      if (dataset.key.includes(column)) parsedKeys[i]?.push(String(parsed));
    });
    const profile = profiles[headers.indexOf(header)]!;
    const declared = new Set((spec.declaration.normalise ?? []).map((n) => JSON.stringify(n)));
    const suggest = profile.normalise.filter((n) => !declared.has(JSON.stringify(n)));
    return {
      column,
      header,
      status: failures.length > 0 ? ('fails' as const) : ('ok' as const),
      failing: failures.length,
      ...(failures[0] && { message: failures[0].message }),
      examples: [...new Set(failures.map((f) => shown(dataset, column, f.raw)))].slice(0, 3),
      ...(failures.length > 0 && suggest.length > 0 && { suggest }),
    };
  });
  const seen = new Set<string>();
  let duplicateKeys = 0;
  if (dataset.key.every((k) => headerOf.has(k))) {
    for (const key of parsedKeys) {
      if (!key) continue;
      const k = key.join('\u001f');
      if (seen.has(k)) duplicateKeys += 1;
      seen.add(k);
    }
  }
  return { name: dataset.name, mapping, columns, ignoredHeaders: headers.filter((h) => !(h in mapping)), duplicateKeys };
}
