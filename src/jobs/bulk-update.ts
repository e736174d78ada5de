import { z } from 'zod';
import type { DatasetRegistry } from '../datasets';
import { datasetNameSchema, withWritableDataset } from './datasets';
import { checkFilter, checkSet, filterSchema, setSchema, type Issue } from './filter';
import { approvalSchema, errorPolicySchema } from './run';
import { strictObject } from './strict';

/** Id lists longer than this are stored in Postgres by the API, not carried in workflow history. */
export const INLINE_IDS_MAX = 1_000;

/** Parameters of a bulk update: which rows (a filter, an id list, or both) and what to set. */
export const bulkUpdateParamsSchema = errorPolicySchema
  .extend(approvalSchema.shape)
  .extend({
    dataset: datasetNameSchema,
    /** A structured filter; never SQL. */
    where: filterSchema.optional(),
    /** Ids (the dataset's id column) to update; with `where`, only those that also match it. */
    ids: z.array(z.number().int().positive()).min(1).max(1_000_000).optional(),
    /** A stored id list (the API stores long `ids` and passes this instead). */
    idList: z.string().regex(/^[0-9a-f]{64}$/, 'must be a stored id list').optional(),
    /** Column → new value: a literal, null, or for dates and timestamps "now" or "now - 30 days". */
    set: setSchema,
    batchSize: z.number().int().min(1).max(50_000).default(1_000),
    /** Checked after counting the matches, before anything changes. */
    preconditions: strictObject({
      /** At least this many rows must match (1: "at least one row matches"). */
      minMatches: z.number().int().min(0).optional(),
      /** At most this many rows may match. */
      maxMatches: z.number().int().min(0).optional(),
    }).optional(),
  })
  .superRefine((params, ctx) => {
    if (!params.where && !params.ids && !params.idList) {
      ctx.addIssue({ code: 'custom', path: ['where'], message: 'required unless ids are given: say which rows to update (use {"field": "id", "op": "not_null"} for all rows)' });
    }
    if (params.ids && params.idList) ctx.addIssue({ code: 'custom', path: ['idList'], message: 'give ids or idList, not both' });
  });
export type BulkUpdateParams = z.infer<typeof bulkUpdateParamsSchema>;

/** A bulk update's params held against the declared datasets: its filter and the values it sets. */
export function checkBulkUpdateParams(params: BulkUpdateParams, datasets: DatasetRegistry): Issue[] {
  return withWritableDataset(datasets, params.dataset, ['dataset'], (dataset) => [
    ...(params.where === undefined ? [] : checkFilter(dataset, params.where, ['where'])),
    ...checkSet(dataset, params.set, ['set']),
  ]);
}
