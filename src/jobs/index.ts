import { defineSearchAttributeKey, SearchAttributeType, type SearchAttributePair } from '@temporalio/common';
import type { z } from 'zod';
import { bulkUpdateParamsSchema } from './bulk-update';
import { cleanupParamsSchema } from './cleanup';
import { customParamsSchema } from './custom';
import { importParamsSchema } from './import';
import { invoicingParamsSchema } from './invoicing';
import { pipelineParamsSchema, type PipelineStepKind } from './pipeline';

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

/** The job kinds a pipeline step may be. */
export const stepJobKinds = {
  import: job({
    schema: importParamsSchema,
    workflowType: 'importWorkflow',
    description: 'Load a CSV, NDJSON or JSON file into a dataset.',
    datasetOf: (p) => p.dataset,
  }),
  'bulk-update': job({
    schema: bulkUpdateParamsSchema,
    workflowType: 'bulkUpdateWorkflow',
    description: 'Set values on the rows of a dataset matched by a filter or an id list, in keyset batches.',
    datasetOf: (p) => p.dataset,
  }),
  cleanup: job({
    schema: cleanupParamsSchema,
    workflowType: 'cleanupWorkflow',
    description: 'Delete expired or long soft-deleted rows by rules, in small batches.',
    datasetOf: () => undefined,
  }),
  custom: job({
    schema: customParamsSchema,
    workflowType: 'customStepWorkflow',
    description: 'Run a custom step registered in code (validate_data).',
    datasetOf: (p) => p.dataset,
  }),
} satisfies Record<PipelineStepKind, JobKind>;

/** A pipeline's steps are runs of the other kinds, checked with their schemas. */
const pipelineJob = job({
  schema: pipelineParamsSchema({
    import: stepJobKinds.import.schema,
    'bulk-update': stepJobKinds['bulk-update'].schema,
    cleanup: stepJobKinds.cleanup.schema,
    custom: stepJobKinds.custom.schema,
  }),
  workflowType: 'pipelineWorkflow',
  description: 'Named steps of the other kinds, with dependencies; independent steps run in parallel.',
  datasetOf: () => undefined,
});

const invoicingJob = job({
  schema: invoicingParamsSchema,
  workflowType: 'invoicingWorkflow',
  description: "Bill a month: usage per customer → invoices with consecutive numbers → PDFs in the object store → emails; signed webhooks for each invoice.",
  datasetOf: () => 'invoices',
});

/** Every job kind a caller can start, by the name used in `POST /runs` and `batchflow run`. */
export const jobKinds = { ...stepJobKinds, pipeline: pipelineJob, invoicing: invoicingJob };
export type JobKindName = keyof typeof jobKinds;
export const jobKindNames = Object.keys(jobKinds) as [JobKindName, ...JobKindName[]];

/** The search attributes a run starts with, so the Web UI and GET /runs can find it. */
export function runSearchAttributes(kind: JobKindName, params: unknown): SearchAttributePair[] {
  const dataset = (jobKinds[kind] as JobKind).datasetOf(params);
  return [
    { key: searchAttributes.kind, value: kind },
    { key: searchAttributes.status, value: 'running' },
    ...(dataset ? [{ key: searchAttributes.dataset, value: dataset }] : []),
  ];
}
