import { continueAsNew, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { z } from 'zod';
import type { Activities } from '../activities';
import { bulkUpdateParamsSchema } from '../jobs/bulk-update';
import type { RunResult } from '../jobs/run';
import { parseInput, sliceActivityOptions } from './common';
import { runPreviewed, type PreviewedRunInput } from './previewed-run';

export { approveSignal, rejectSignal } from './approval';
export { cancelSignal, progressQuery } from './run-tracker';

export type BulkUpdateWorkflowInput = PreviewedRunInput<z.input<typeof bulkUpdateParamsSchema>>;

const { planBulkUpdate, bulkUpdateSlice } = proxyActivities<Activities>(sliceActivityOptions);

/** Sets values on the rows matched by a filter or an id list, in keyset batches; previews, refuses or waits for approval first when asked. */
export async function bulkUpdateWorkflow(input: BulkUpdateWorkflowInput): Promise<RunResult> {
  const params = parseInput(bulkUpdateParamsSchema, input.params);
  const runId = workflowInfo().workflowId;
  return runPreviewed({
    kind: 'bulk-update',
    working: 'updating',
    input,
    params,
    plan: (asOf) => planBulkUpdate({ params, asOf }),
    slice: (plan, cursor) => bulkUpdateSlice({ runId, params, plan, cursor }),
    continueAsNew: (next) => continueAsNew<typeof bulkUpdateWorkflow>(next as BulkUpdateWorkflowInput),
  });
}
