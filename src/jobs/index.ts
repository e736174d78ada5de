import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';
import type { z } from 'zod';
import { importParamsSchema } from './import';

/** Search attributes on every run (registered with the Temporal server by the stack scripts). */
export const searchAttributes = {
  kind: defineSearchAttributeKey('BatchflowKind', SearchAttributeType.KEYWORD),
  dataset: defineSearchAttributeKey('BatchflowDataset', SearchAttributeType.KEYWORD),
  status: defineSearchAttributeKey('BatchflowStatus', SearchAttributeType.KEYWORD),
};
export const searchAttributeTypes = Object.fromEntries(Object.values(searchAttributes).map((k) => [k.name, 'Keyword' as const]));

export interface JobKind<S extends z.ZodType = z.ZodType> {
  /** Validates the API body's params, the CLI's flags and the workflow input alike. */
  schema: S;
  workflowType: string;
  description: string;
  /** The dataset a run touches, for its search attribute. */
  datasetOf(params: z.output<S>): string | undefined;
}

const job = <S extends z.ZodType>(kind: JobKind<S>) => kind;

/** Every job kind a caller can start, by the name used in `POST /runs` and `batchflow run`. */
export const jobKinds = {
  import: job({
    schema: importParamsSchema,
    workflowType: 'importWorkflow',
    description: 'Load a CSV, NDJSON or JSON file into a dataset.',
    datasetOf: (p) => p.dataset,
  }),
};
export type JobKindName = keyof typeof jobKinds;
export const jobKindNames = Object.keys(jobKinds) as [JobKindName, ...JobKindName[]];
