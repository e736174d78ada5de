import { z } from 'zod';
import { datasetNames, getDataset } from '../datasets';
import { addIssues, checkFilter, filterSchema } from './filter';
import { errorPolicySchema } from './run';

/**
 * Custom steps: named activities registered in code (src/activities/custom.ts), runnable as the
 * `custom` job kind and as pipeline steps. Each declares its parameters here, keyed by `step`.
 */
export const customParamsSchema = z.discriminatedUnion('step', [
  errorPolicySchema
    .extend({
      /** Checks the rows of a dataset (all, or those matching `where`) against its declaration; each invalid row is a row error. */
      step: z.literal('validate_data'),
      dataset: z.enum(datasetNames),
      where: filterSchema.optional(),
      batchSize: z.number().int().min(1).max(50_000).default(5_000),
    })
    .superRefine((p, ctx) => {
      if (p.where !== undefined) addIssues(ctx, checkFilter(getDataset(p.dataset), p.where), ['where']);
    }),
]);
export type CustomParams = z.infer<typeof customParamsSchema>;
