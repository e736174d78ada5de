import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';
import { jobKindNames, jobKinds } from '../jobs';
import { runResultSchema, type Counts } from '../jobs/run';

/**
 * Batchflow's own worker metrics, in a registry of their own (the API keeps its own), served on
 * BATCHFLOW_WORKER_METRICS_PORT. The Temporal SDK's metrics come from its runtime, on another port.
 */
export const workerRegistry = new Registry();
collectDefaultMetrics({ register: workerRegistry });

const labelNames = ['kind', 'dataset'] as const;
const rowsProcessed = new Counter({
  name: 'batchflow_rows_processed_total',
  help: 'Rows through committed batches (succeeded, rejected or skipped), by job kind and dataset',
  labelNames,
  registers: [workerRegistry],
});
const rowsRejected = new Counter({ name: 'batchflow_rows_rejected_total', help: 'Rows rejected in committed batches (row errors), by job kind and dataset', labelNames, registers: [workerRegistry] });
const rowsSkipped = new Counter({ name: 'batchflow_rows_skipped_total', help: 'Rows skipped in committed batches (already present, not matching), by job kind and dataset', labelNames, registers: [workerRegistry] });
const batchDuration = new Histogram({
  name: 'batchflow_batch_duration_seconds',
  help: 'Time from starting to load a batch to its commit, by job kind and dataset',
  labelNames,
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
  registers: [workerRegistry],
});
const sliceRetries = new Counter({
  name: 'batchflow_slice_retries_total',
  help: 'Slices started again after a failed or lost attempt (a worker died, a database error), by job kind',
  labelNames: ['kind'],
  registers: [workerRegistry],
});
const runsStarted = new Counter({ name: 'batchflow_runs_started_total', help: 'Runs started, by job kind', labelNames: ['kind'], registers: [workerRegistry] });
const runsFinished = new Counter({ name: 'batchflow_runs_finished_total', help: 'Runs finished, by job kind and status', labelNames: ['kind', 'status'], registers: [workerRegistry] });

// Every series exists at 0 from the start: rate() and increase() cannot see the first increment
// of a series that appears with it (a run's first rows, a fresh worker's first retry).
for (const kind of jobKindNames) {
  runsStarted.inc({ kind }, 0);
  sliceRetries.inc({ kind }, 0);
  for (const status of runResultSchema.shape.status.options) runsFinished.inc({ kind, status }, 0);
}

/** Starts the row series of the declared datasets at 0, once the worker has loaded them. */
export function startDatasetSeries(datasets: readonly string[]): void {
  for (const kind of jobKindNames) for (const dataset of datasets) for (const rows of [rowsProcessed, rowsRejected, rowsSkipped]) rows.inc({ kind, dataset }, 0);
}

const kindOfWorkflowType = new Map<string, string>(Object.entries(jobKinds).map(([kind, job]) => [job.workflowType, kind]));
/** A slice's job kind, from the workflow type that called it. */
const kindOf = (workflowType: string | undefined) => (workflowType && kindOfWorkflowType.get(workflowType)) ?? workflowType ?? '';

/** What the batch runner and the workflows' sink report; each call is one line where it happens. */
export const workerMetrics = {
  /** A slice started; attempts after the first are retries. */
  sliceStarted(workflowType: string | undefined, attempt: number): void {
    if (attempt > 1) sliceRetries.inc({ kind: kindOf(workflowType) });
  },
  /** A batch committed: the run's counts before and after it, and how long it took. */
  batchCommitted(workflowType: string | undefined, dataset: string | undefined, before: Counts, after: Counts, seconds: number): void {
    const labels = { kind: kindOf(workflowType), dataset: dataset ?? '' };
    rowsProcessed.inc(labels, after.processed - before.processed);
    rowsRejected.inc(labels, after.failed - before.failed);
    rowsSkipped.inc(labels, after.skipped - before.skipped);
    batchDuration.observe(labels, seconds);
  },
  runStarted(kind: string): void {
    runsStarted.inc({ kind });
  },
  runFinished(kind: string, status: string): void {
    runsFinished.inc({ kind, status });
  },
};
