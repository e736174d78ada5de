import { continueAsNew, proxyActivities } from '@temporalio/workflow';
import type { z } from 'zod';
import type { Activities } from '../activities';
import { cacheRefreshParamsSchema } from '../jobs/cache-refresh';
import type { RunResult } from '../jobs/run';
import { currentRun, parseInput, sliceActivityOptions } from './common';
import { runPreviewed, type PreviewedRunInput } from './previewed-run';

export { approveSignal, rejectSignal } from './approval';
export { cancelSignal, progressQuery } from './run-tracker';

export type CacheRefreshWorkflowInput = PreviewedRunInput<z.input<typeof cacheRefreshParamsSchema>>;

const { planCacheRefresh, cacheRefreshSlice } = proxyActivities<Activities>(sliceActivityOptions);

/**
 * Refreshes a cache dataset's stale rows from an upstream HTTP API: counts them, then asks the
 * upstream in checkpointed batches, politely (concurrency, rate, retries, circuit breaker).
 */
export async function cacheRefreshWorkflow(input: CacheRefreshWorkflowInput): Promise<RunResult> {
  const params = parseInput(cacheRefreshParamsSchema, input.params);
  const run = currentRun();
  return runPreviewed({
    kind: 'cache-refresh',
    working: 'refreshing',
    input,
    params,
    plan: (asOf) => planCacheRefresh({ run, params, asOf }),
    slice: (plan, cursor) => cacheRefreshSlice({ run, params, plan, cursor }),
    continueAsNew: (next) => continueAsNew<typeof cacheRefreshWorkflow>(next as CacheRefreshWorkflowInput),
  });
}
