import { continueAsNew, proxyActivities } from '@temporalio/workflow';
import type { z } from 'zod';
import type { Activities } from '../activities';
import { bulkUpdateParamsSchema } from '../jobs/bulk-update';
import type { RunResult } from '../jobs/run';
import { currentRun, parseInput, sliceActivityOptions } from './common';
import { runPreviewed, type PreviewedRunInput } from './previewed-run';

export { approveSignal, rejectSignal } from './approval';
export { cancelSignal, progressQuery } from './run-tracker';

export type BulkUpdateWorkflowInput = PreviewedRunInput<z.input<typeof bulkUpdateParamsSchema>>;

const { planBulkUpdate, bulkUpdateSlice } = proxyActivities<Activities>(sliceActivityOptions);

/** Sets values on the rows matched by a filter or an id list, in keyset batches; previews, refuses or waits for approval first when asked. */
export async function bulkUpdateWorkflow(input: BulkUpdateWorkflowInput): Promise<RunResult> {
  const params = parseInput(bulkUpdateParamsSchema, input.params);
  const run = currentRun();
  return runPreviewed({
    kind: 'bulk-update',
    working: 'updating',
    input,
    params,
    plan: (asOf) => planBulkUpdate({ run, params, asOf }),
    slice: (plan, cursor) => bulkUpdateSlice({ run, params, plan, cursor }),
    continueAsNew: (next) => continueAsNew<typeof bulkUpdateWorkflow>(next as BulkUpdateWorkflowInput),
  });
}
