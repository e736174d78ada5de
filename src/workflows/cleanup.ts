import { continueAsNew, proxyActivities } from '@temporalio/workflow';
import type { z } from 'zod';
import type { Activities } from '../activities';
import { cleanupParamsSchema, cleanupRules } from '../jobs/cleanup';
import type { RunResult } from '../jobs/run';
import { currentRun, parseInput, sliceActivityOptions } from './common';
import { runPreviewed, targetStates, type PreviewedRunInput } from './previewed-run';

export { approveSignal, rejectSignal } from './approval';
export { cancelSignal, progressQuery } from './run-tracker';

export type CleanupWorkflowInput = PreviewedRunInput<z.input<typeof cleanupParamsSchema>>;

const { planCleanup, cleanupSlice } = proxyActivities<Activities>(sliceActivityOptions);

/** Deletes expired and long soft-deleted rows rule by rule, in small batches so locks stay short. */
export async function cleanupWorkflow(input: CleanupWorkflowInput): Promise<RunResult> {
  const params = parseInput(cleanupParamsSchema, input.params);
  const run = currentRun();
  return runPreviewed({
    kind: 'cleanup',
    working: 'deleting',
    input,
    params,
    plan: (asOf) => planCleanup({ run, params, asOf }),
    slice: (plan, cursor) => cleanupSlice({ run, params, plan, cursor }),
    continueAsNew: (next) => continueAsNew<typeof cleanupWorkflow>(next as CleanupWorkflowInput),
    steps: (plan, checkpoint, final) => {
      const names = cleanupRules(params).map((rule) => rule.name);
      return targetStates(names, names.map((name) => plan.preview.steps?.[name]?.matched), plan, checkpoint, final);
    },
  });
}
