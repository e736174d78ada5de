import { z } from 'zod';
import type { DatasetRegistry } from '../datasets';
import { datasetNameSchema, withWritableDataset } from './datasets';
import type { Issue } from './filter';
import { errorPolicySchema, runIdSchema } from './run';

export const importModeSchema = z.enum(['insert', 'upsert', 'skip-existing']);
export type ImportMode = z.infer<typeof importModeSchema>;

/** The column of a quarantine file that holds each row's number in the run that rejected it. */
export const REPLAY_ROW_FIELD = '_row';

/** A CSV field delimiter: one character, not a quote or a line break. */
export const delimiterSchema = z
  .string()
  .length(1)
  .refine((d) => !['"', '\n', '\r'].includes(d), 'must not be a quote or a line break');

/** Parameters of an import run: the API body's `params`, the CLI's flags and the workflow input. */
export const importParamsSchema = errorPolicySchema.extend({
  /** An absolute local path (or file://), s3://bucket/key, or store://key in Batchflow's object store. */
  source: z
    .string()
    .min(1)
    .refine((s) => /^(s3|store|file):\/\//.test(s) || s.startsWith('/'), 'must be an absolute path, file://, s3://bucket/key or store://key'),
  /** Inferred from the file extension when absent. */
  format: z.enum(['csv', 'ndjson', 'json']).optional(),
  dataset: datasetNameSchema,
  mode: importModeSchema.default('upsert'),
  /** Source field → dataset column, for headers that do not match a column name or alias. */
  mapping: z.record(z.string(), z.string()).optional(),
  delimiter: delimiterSchema.default(','),
  batchSize: z.number().int().min(1).max(50_000).default(5_000),
  /**
   * The run whose rejected rows this file fixes (set by POST /runs/:id/replay): each accepted row's
   * `_row` field names the row it fixes, and that run's view counts it as accepted later.
   */
  replayOf: runIdSchema.optional(),
});
export type ImportParams = z.infer<typeof importParamsSchema>;

/** An import's params held against the declared datasets: the dataset, and where the mapping points. */
export function checkImportParams(params: ImportParams, datasets: DatasetRegistry): Issue[] {
  return withWritableDataset(datasets, params.dataset, ['dataset'], (dataset) =>
    Object.entries(params.mapping ?? {}).flatMap(([from, to]) =>
      dataset.isColumn(to) ? [] : [{ path: ['mapping', from], message: `"${to}" is not a column of ${dataset.name} (${dataset.columnNames.join(', ')})` }],
    ),
  );
}
