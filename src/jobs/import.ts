import { z } from 'zod';
import { getDataset, writableDatasetNames } from '../datasets';
import { errorPolicySchema } from './run';

export const importModeSchema = z.enum(['insert', 'upsert', 'skip-existing']);
export type ImportMode = z.infer<typeof importModeSchema>;

/** Parameters of an import run: the API body's `params`, the CLI's flags and the workflow input. */
export const importParamsSchema = errorPolicySchema
  .extend({
    /** An absolute local path (or file://), s3://bucket/key, or store://key in Batchflow's object store. */
    source: z
      .string()
      .min(1)
      .refine((s) => /^(s3|store|file):\/\//.test(s) || s.startsWith('/'), 'must be an absolute path, file://, s3://bucket/key or store://key'),
    /** Inferred from the file extension when absent. */
    format: z.enum(['csv', 'ndjson', 'json']).optional(),
    dataset: z.enum(writableDatasetNames),
    mode: importModeSchema.default('upsert'),
    /** Source field → dataset column, for headers that do not match a column name or alias. */
    mapping: z.record(z.string(), z.string()).optional(),
    delimiter: z.string().length(1).refine((d) => !['"', '\n', '\r'].includes(d), 'must not be a quote or a line break').default(','),
    batchSize: z.number().int().min(1).max(50_000).default(5_000),
  })
  .superRefine((params, ctx) => {
    const dataset = getDataset(params.dataset);
    for (const [from, to] of Object.entries(params.mapping ?? {})) {
      if (!dataset.isColumn(to)) {
        ctx.addIssue({ code: 'custom', path: ['mapping', from], message: `"${to}" is not a column of ${dataset.name} (${dataset.columnNames.join(', ')})` });
      }
    }
  });
export type ImportParams = z.infer<typeof importParamsSchema>;
