import { defineSearchAttributeKey, SearchAttributeType, type SearchAttributePair } from '@temporalio/common';
import type { z } from 'zod';
import type { DatasetRegistry } from '../datasets';
import { aggregateParamsSchema, checkAggregateParams } from './aggregate';
import { bulkUpdateParamsSchema, checkBulkUpdateParams } from './bulk-update';
import { cacheRefreshParamsSchema, checkCacheRefreshParams } from './cache-refresh';
import { checkCleanupParams, cleanupParamsSchema } from './cleanup';
import { checkCustomParams, customParamsSchema } from './custom';
import { prefixIssues } from './datasets';
import { checkDedupeParams, dedupeParamsSchema } from './dedupe';
import { checkExportParams, exportParamsSchema } from './export';
import type { Issue } from './filter';
import { checkImportParams, importParamsSchema } from './import';
import { checkInvoicingParams, invoicingParamsSchema } from './invoicing';
import { pipelineParamsSchema, type PipelineStepKind } from './pipeline';
import { reportParamsSchema } from './report';

/** Search attributes on every run (registered with the Temporal server by the stack scripts). */
export const searchAttributes = {
  kind: defineSearchAttributeKey('BatchflowKind', SearchAttributeType.KEYWORD),
  dataset: defineSearchAttributeKey('BatchflowDataset', SearchAttributeType.KEYWORD),
  status: defineSearchAttributeKey('BatchflowStatus', SearchAttributeType.KEYWORD),
  /** The name of the API key that started the run (a pipeline's steps: the pipeline's); GET /runs?startedBy= filters on it. */
  startedBy: defineSearchAttributeKey('BatchflowStartedBy', SearchAttributeType.KEYWORD),
};
/** On each schedule Batchflow manages: the digest of its declaration, compared by every sync. */
export const scheduleDigestAttribute = defineSearchAttributeKey('BatchflowScheduleDigest', SearchAttributeType.KEYWORD);
export const searchAttributeTypes = Object.fromEntries([...Object.values(searchAttributes), scheduleDigestAttribute].map((k) => [k.name, 'Keyword' as const]));

/** Set by Temporal on every run a schedule starts: which schedule, and the time it was due (its nominal time). */
export const scheduledBy = {
  id: defineSearchAttributeKey('TemporalScheduledById', SearchAttributeType.KEYWORD),
  startTime: defineSearchAttributeKey('TemporalScheduledStartTime', SearchAttributeType.DATETIME),
};

export interface JobKind<S extends z.ZodType = z.ZodType> {
  /** Validates the API body's params, the CLI's flags and the workflow input alike. */
  schema: S;
  workflowType: string;
  description: string;
  /** The dataset a run touches, for its search attribute. */
  datasetOf(params: z.output<S>): string | undefined;
  /** The params held against the declared datasets (the schema checks only their shape). */
  check(params: z.output<S>, datasets: DatasetRegistry): Issue[];
  /** The param (its path under params) that makes this run need the admin scope, if one does. */
  adminOnly?(params: z.output<S>): string | undefined;
}

const job = <S extends z.ZodType>(kind: JobKind<S>) => kind;

/** The job kinds a pipeline step may be. */
export const stepJobKinds = {
  import: job({
    schema: importParamsSchema,
    workflowType: 'importWorkflow',
    description: 'Load a CSV, NDJSON or JSON file into a dataset.',
    datasetOf: (p) => p.dataset,
    check: checkImportParams,
  }),
  'bulk-update': job({
    schema: bulkUpdateParamsSchema,
    workflowType: 'bulkUpdateWorkflow',
    description: 'Set values on the rows of a dataset matched by a filter or an id list, in keyset batches.',
    datasetOf: (p) => p.dataset,
    check: checkBulkUpdateParams,
  }),
  cleanup: job({
    schema: cleanupParamsSchema,
    workflowType: 'cleanupWorkflow',
    description: 'Delete expired or long soft-deleted rows by rules, in small batches.',
    datasetOf: () => undefined,
    check: checkCleanupParams,
  }),
  custom: job({
    schema: customParamsSchema,
    workflowType: 'customStepWorkflow',
    description: 'Run a custom step registered in code (validate_data).',
    datasetOf: (p) => p.dataset,
    check: checkCustomParams,
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
  // Each step's params as its own kind checks them (the pipeline schema has checked their shape).
  check: (params, datasets) =>
    params.steps.flatMap((step, i) => {
      const kind = stepJobKinds[step.kind] as JobKind;
      return prefixIssues(kind.check(kind.schema.parse(step.params), datasets), ['steps', i, 'params']);
    }),
});

const exportJob = job({
  schema: exportParamsSchema,
  workflowType: 'exportWorkflow',
  description: 'Write the rows of a dataset (all, or those matching a filter) to a CSV, NDJSON or JSON file in the object store or S3.',
  datasetOf: (p) => p.dataset,
  check: checkExportParams,
  adminOnly: (p) => (p.includeSecrets ? 'includeSecrets' : undefined),
});

/** Every job kind a caller can start, by the name used in `POST /runs` and `batchflow run`. */
export const jobKinds = {
  ...stepJobKinds,
  pipeline: pipelineJob,
  dedupe: job({
    schema: dedupeParamsSchema,
    workflowType: 'dedupeWorkflow',
    description: "Find a dataset's exact and near duplicates (a downloadable report of groups), and optionally keep one row per group.",
    datasetOf: (p) => p.dataset,
    check: checkDedupeParams,
  }),
  export: exportJob,
  aggregate: job({
    schema: aggregateParamsSchema,
    workflowType: 'aggregateWorkflow',
    description: 'Compute the declared daily roll-ups (daily_stats) for a date or a range of dates, one upsert per date.',
    datasetOf: () => undefined,
    check: checkAggregateParams,
  }),
  report: job({
    schema: reportParamsSchema,
    workflowType: 'reportWorkflow',
    description: "The weekly report: runs by kind and status, rows, top error codes, slowest runs and the week's daily_stats, as CSV and HTML.",
    datasetOf: () => undefined,
    // It reads runs and daily_stats, no dataset.
    check: () => [],
  }),
  'cache-refresh': job({
    schema: cacheRefreshParamsSchema,
    workflowType: 'cacheRefreshWorkflow',
    description: 'Refresh the stale rows of a cache dataset from an upstream HTTP API, with bounded concurrency, a rate limit, retries and a circuit breaker.',
    datasetOf: (p) => p.dataset,
    check: checkCacheRefreshParams,
  }),
  invoicing: job({
    schema: invoicingParamsSchema,
    workflowType: 'invoicingWorkflow',
    description: 'Bill a month: usage per customer → invoices with consecutive numbers → PDFs in the object store → emails; signed webhooks for each invoice.',
    datasetOf: () => 'invoices',
    check: checkInvoicingParams,
  }),
};
export type JobKindName = keyof typeof jobKinds;
export const jobKindNames = Object.keys(jobKinds) as [JobKindName, ...JobKindName[]];

/** The search attributes a run starts with, so the Web UI and GET /runs can find it. */
export function runSearchAttributes(kind: JobKindName, params: unknown, startedBy: string | undefined): SearchAttributePair[] {
  const dataset = (jobKinds[kind] as JobKind).datasetOf(params);
  return [
    { key: searchAttributes.kind, value: kind },
    { key: searchAttributes.status, value: 'running' },
    ...(dataset ? [{ key: searchAttributes.dataset, value: dataset }] : []),
    ...(startedBy ? [{ key: searchAttributes.startedBy, value: startedBy }] : []),
  ];
}
