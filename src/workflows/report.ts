import { proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { z } from 'zod';
import type { Activities } from '../activities';
import { reportParamsSchema, reportWindow } from '../jobs/report';
import type { RunResult } from '../jobs/run';
import { nominalTime, parseInput } from './common';
import { completeRun, trackRun } from './run-tracker';

export { cancelSignal, progressQuery } from './run-tracker';

export interface ReportWorkflowInput {
  params: z.input<typeof reportParamsSchema>;
}

// One activity reads the week's runs and writes two files: no batches to checkpoint, and writing
// the same keys again on a retry is harmless.
const { buildReport } = proxyActivities<Activities>({
  startToCloseTimeout: '10 minutes',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 10 },
});

/** The weekly report: what ran in the window, written to the object store as CSV and HTML. */
export async function reportWorkflow(input: ReportWorkflowInput): Promise<RunResult> {
  const params = parseInput(reportParamsSchema, input.params);
  const window = reportWindow(params, nominalTime());
  const tracker = trackRun('report', undefined, params.notify);
  tracker.setStep(`reporting ${window.from} to ${window.to}`);
  const { outputs, runs } = await buildReport({ runId: workflowInfo().workflowId, window });
  return completeRun(tracker, {
    counts: { processed: runs, succeeded: runs, failed: 0, skipped: 0 },
    errorSample: [],
    errorCount: 0,
    warnings: [],
    outputs,
  });
}
