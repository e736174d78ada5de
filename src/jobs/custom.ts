import { z } from 'zod';
import type { DatasetRegistry } from '../datasets';
import { datasetNameSchema, withDataset } from './datasets';
import { checkFilter, filterSchema, type Issue } from './filter';
import { errorPolicySchema } from './run';

/**
 * Custom steps: named activities registered in code (src/activities/custom.ts), runnable as the
 * `custom` job kind and as pipeline steps. Each declares its parameters here, keyed by `step`.
 */
export const customParamsSchema = z.discriminatedUnion('step', [
  errorPolicySchema.extend({
    /** Checks the rows of a dataset (all, or those matching `where`) against its declaration; each invalid row is a row error. */
    step: z.literal('validate_data'),
    dataset: datasetNameSchema,
    where: filterSchema.optional(),
    batchSize: z.number().int().min(1).max(50_000).default(5_000),
  }),
]);
export type CustomParams = z.infer<typeof customParamsSchema>;

/** A custom step's params held against the declared datasets. */
export function checkCustomParams(params: CustomParams, datasets: DatasetRegistry): Issue[] {
  return withDataset(datasets, params.dataset, ['dataset'], (dataset) => (params.where === undefined ? [] : checkFilter(dataset, params.where, ['where'])));
}
