import { z } from 'zod';
import type { Dataset, DatasetRegistry } from '../datasets';
import { datasetNameSchema, withDataset, writtenByIssue } from './datasets';
import { checkFilter, filterSchema, type Issue } from './filter';
import { approvalSchema, errorPolicySchema } from './run';
import { strictObject } from './strict';

const fieldName = z.string().min(1).max(63);

/** One part of a blocking key: a field's normalised value, or its first or last characters (of each word). */
const blockPartSchema = z.union([
  fieldName,
  strictObject({
    field: fieldName,
    prefix: z.number().int().min(1).max(50).optional(),
    suffix: z.number().int().min(1).max(50).optional(),
    /** Apply prefix / suffix to each word: "ada lovelace" → "ada lov" with prefix 3. */
    eachWord: z.boolean().default(false),
  }).refine((p) => p.prefix === undefined || p.suffix === undefined, 'give prefix or suffix, not both'),
]);
export type BlockPart = z.infer<typeof blockPartSchema>;

/** Parameters of a dedupe run: which rows count as duplicates, how to find them cheaply, and what to keep. */
export const dedupeParamsSchema = errorPolicySchema
  .extend(approvalSchema.shape)
  .extend({
    dataset: datasetNameSchema,
    /** Only the rows that match (default all). */
    where: filterSchema.optional(),
    /** Exact duplicates: rows whose normalised values of these fields are all equal (compared by a hash). */
    exact: z.array(fieldName).min(1).max(10).optional(),
    /** Near duplicates: rows whose fields are similar (1 − Levenshtein distance / length, averaged) at least `threshold`. */
    similar: strictObject({
      fields: z.array(fieldName).min(1).max(5),
      threshold: z.number().min(0.5).max(1).default(0.85),
    }).optional(),
    /**
     * Near duplicates are looked for only among rows that share a block: the rows with the same value
     * of one of these keys (each a list of parts). Several keys catch a typo that breaks one of them.
     */
    blockBy: z.array(z.array(blockPartSchema).min(1).max(4)).min(1).max(4).optional(),
    /** Blocks larger than this compare each row with its `window` neighbours in sorted order, not with every row. */
    maxBlockSize: z.number().int().min(2).max(10_000).default(1_000),
    window: z.number().int().min(1).max(200).default(20),
    /** Keep one row per group and delete the others (with approval and dry run like bulk updates); without it the run only reports. */
    merge: strictObject({
      /** The row kept: first by this column (default the id column), nulls last. */
      keep: strictObject({ by: fieldName.optional(), order: z.enum(['asc', 'desc']).default('asc') }).default({ order: 'asc' }),
      /** Fill the kept row's empty columns from the deleted rows (in id order). */
      fillEmpty: z.boolean().default(false),
    }).optional(),
    batchSize: z.number().int().min(1).max(50_000).default(5_000),
  })
  .superRefine((p, ctx) => {
    if (!p.exact && !p.similar) ctx.addIssue({ code: 'custom', path: ['exact'], message: 'give exact fields, similar fields, or both' });
    if (p.similar && !p.blockBy) ctx.addIssue({ code: 'custom', path: ['blockBy'], message: 'required with similar: comparing every pair of rows grows with the square of their number' });
  });
export type DedupeParams = z.infer<typeof dedupeParamsSchema>;

const partField = (part: BlockPart) => (typeof part === 'string' ? part : part.field);

/** A dedupe's params held against the declared datasets: its fields, its filter, its keep rule. */
export function checkDedupeParams(params: DedupeParams, datasets: DatasetRegistry): Issue[] {
  return withDataset(datasets, params.dataset, ['dataset'], (dataset: Dataset) => {
    const notColumn = (field: string, path: (string | number)[]): Issue[] =>
      dataset.isColumn(field) ? [] : [{ path, message: `"${field}" is not a column of ${dataset.name} (${dataset.columnNames.join(', ')})` }];
    const keepBy = params.merge?.keep.by;
    return [
      // Finding duplicates only reads; merging them deletes rows.
      ...(params.merge && dataset.writtenBy ? [writtenByIssue(dataset, ['merge'])] : []),
      ...(params.where === undefined ? [] : checkFilter(dataset, params.where, ['where'])),
      ...(params.exact ?? []).flatMap((f, i) => notColumn(f, ['exact', i])),
      ...(params.similar?.fields ?? []).flatMap((f, i) => notColumn(f, ['similar', 'fields', i])),
      ...(params.blockBy ?? []).flatMap((key, i) => key.flatMap((part, j) => notColumn(partField(part), typeof part === 'string' ? ['blockBy', i, j] : ['blockBy', i, j, 'field']))),
      ...(keepBy !== undefined && dataset.filterType(keepBy) === undefined
        ? [{ path: ['merge', 'keep', 'by'], message: `must be a column of ${dataset.name} (${dataset.filterableColumns.join(', ')})` }]
        : []),
    ];
  });
}
