import { z } from 'zod';
import type { Dataset, DatasetRegistry } from '../datasets';
import { mediaTypes } from '../formats/types';
import { datasetNameSchema, withDataset } from './datasets';
import { checkFilter, filterSchema, type Issue } from './filter';
import { notifySchema } from './notify';

export const exportFormats = ['csv', 'ndjson', 'json'] as const;
export type ExportFormat = (typeof exportFormats)[number];

/** Parameters of an export run: the API body's `params`, the CLI's flags and the workflow input. */
export const exportParamsSchema = z.strictObject({
  dataset: datasetNameSchema,
  /** A structured filter, as for bulk updates; every row when absent. */
  where: filterSchema.optional(),
  /** Columns to write, in this order: the id, declared and system columns; all but secret ones when absent. */
  columns: z.array(z.string().min(1)).min(1).max(100).optional(),
  format: z.enum(exportFormats).default('csv'),
  /** Compress the file (gzip); its name gets `.gz`. */
  gzip: z.boolean().default(false),
  /**
   * Where the file goes: a key in Batchflow's object store (`exports/users.csv` or
   * `store://exports/users.csv`), or `s3://bucket/key` in an allowed bucket. Default
   * `exports/<run id>.<format>[.gz]` in the object store.
   */
  destination: z
    .string()
    .min(1)
    .max(1024)
    .refine((d) => d.startsWith('s3://') || d.startsWith('store://') || !/^[a-z][a-z0-9+.-]*:/i.test(d), 'must be a key in the object store (store://key) or s3://bucket/key')
    .optional(),
  /** CSV only: text cells that begin with = + - @ tab CR or LF get a leading ' so that spreadsheets show them as text. */
  csvFormulaEscape: z.boolean().default(true),
  /** Write secret columns (tokens, token hashes) too: only callers with the admin scope may ask. */
  includeSecrets: z.boolean().default(false),
  /** The size of each uploaded part, in MiB (S3 needs at least 5); it doubles every 1,000 parts. */
  partSizeMb: z.number().int().min(5).max(64).default(8),
  /** Email and signed webhook notifications when the run ends. */
  notify: notifySchema.optional(),
});
export type ExportParams = z.infer<typeof exportParamsSchema>;

/** An export's params held against the declared datasets: its filter and the columns it writes. */
export function checkExportParams(params: ExportParams, datasets: DatasetRegistry): Issue[] {
  return withDataset(datasets, params.dataset, ['dataset'], (dataset) => {
    const issues = params.where === undefined ? [] : checkFilter(dataset, params.where, ['where']);
    const seen = new Set<string>();
    params.columns?.forEach((column, i) => {
      const path = ['columns', i];
      if (!exportableColumns(dataset, true).includes(column)) {
        issues.push({ path, message: `"${column}" is not a column of ${dataset.name} (${exportableColumns(dataset, params.includeSecrets).join(', ')})` });
      } else if (dataset.columns[column]?.secret && !params.includeSecrets) {
        issues.push({ path, message: `"${column}" is a secret column: leave it out, or set includeSecrets (admin scope only)` });
      } else if (seen.has(column)) {
        issues.push({ path, message: `"${column}" is listed twice` });
      }
      seen.add(column);
    });
    return issues;
  });
}

/** The columns an export may write, in their default order: the id, the declared columns, the other system columns. */
export function exportableColumns(dataset: Dataset, includeSecrets: boolean): string[] {
  const declared = dataset.columnNames.filter((c) => includeSecrets || !dataset.columns[c]!.secret);
  return [dataset.idColumn, ...declared, ...Object.keys(dataset.system).filter((c) => c !== dataset.idColumn)];
}

/** The file's media type: gzip files are application/gzip, so that no client unpacks them on the way. */
export const exportContentType = (params: Pick<ExportParams, 'format' | 'gzip'>) => (params.gzip ? 'application/gzip' : mediaTypes[params.format]);

/** The default object key of a run's file. */
export const defaultExportKey = (runId: string, params: Pick<ExportParams, 'format' | 'gzip'>) => `exports/${runId}.${params.format}${params.gzip ? '.gz' : ''}`;

/** What an export settles before writing anything: the rows it covers and where they go. */
export interface ExportPlan {
  /** "now" for the filter's relative times, fixed for the run's whole life. */
  asOf: string;
  /** Rows that matched when the run started (its progress total). */
  matched: number;
  /** The highest matching id when the run started: rows past it are not written. */
  upTo: number;
  columns: string[];
  /** `store://key` or `s3://bucket/key`. */
  location: string;
  contentType: string;
}

/**
 * Where an export stands after a committed part: small enough for a heartbeat and for workflow
 * history. The file's bytes so far are the parts listed here; the next part starts after
 * `lastId`, so a retry continues with exactly the bytes an uninterrupted run would write next.
 */
export interface ExportPosition {
  /** Rows with ids up to this one are in the committed parts. */
  lastId: number;
  rows: number;
  bytes: number;
  /** The multipart upload the parts belong to, once created. */
  uploadId?: string;
  /** ETags of the committed parts; part n is parts[n - 1]. */
  parts: string[];
  /** The SHA-256 state after the committed parts (base64), so the digest continues across retries. */
  sha256?: string;
  /** The last part (with the file's closing bytes) is among the committed ones. */
  finished: boolean;
}
export const exportStart: ExportPosition = { lastId: 0, rows: 0, bytes: 0, parts: [], finished: false };

const MIB = 1024 * 1024;
/**
 * S3 allows 10,000 parts: doubling the part size every 1,000 parts, up to 64 MiB, lets a file
 * grow to about 500 GB while smaller files keep small parts, so a small memory footprint, and a
 * part is read well within a slice's heartbeat timeout.
 */
export const PARTS_PER_SIZE = 1_000;
const MAX_PART = 64 * MIB;

/** The size at which part `n` (from 1) is cut: whole chunks of rows are added until it is reached. */
export const partTarget = (partSizeMb: number, n: number) => Math.min(partSizeMb * MIB * 2 ** Math.floor((n - 1) / PARTS_PER_SIZE), MAX_PART);
