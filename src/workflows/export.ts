import { CancellationScope, continueAsNew, proxyActivities } from '@temporalio/workflow';
import type { z } from 'zod';
import type { Activities } from '../activities';
import { exportParamsSchema, type ExportPlan, type ExportPosition } from '../jobs/export';
import { zeroCounts, type RunResult } from '../jobs/run';
import { completeLoop, runCheckpointedLoop } from './batch-loop';
import { activityError, currentRun, parseInput, sliceActivityOptions } from './common';
import { completeRun, trackRun, type CarriedState } from './run-tracker';

export { cancelSignal, progressQuery } from './run-tracker';

export interface ExportWorkflowInput {
  params: z.input<typeof exportParamsSchema>;
  /** Settled before the first part; carried across continue-as-new so the run never re-plans. */
  plan?: ExportPlan;
  carried?: CarriedState<ExportPosition>;
}

const { planExport, exportSlice, completeExport, abortExport } = proxyActivities<Activities>(sliceActivityOptions);

/**
 * Writes a dataset's rows (those matching a filter, up to the highest id that matched when the
 * run started) to a CSV, NDJSON or JSON file in the object store or S3: part by part into a
 * multipart upload, from checkpoint to checkpoint. The file appears only when its upload
 * completes; a run that fails or is cancelled aborts the upload, leaving nothing behind.
 */
export async function exportWorkflow(input: ExportWorkflowInput): Promise<RunResult> {
  const params = parseInput(exportParamsSchema, input.params);
  const run = currentRun();
  const tracker = trackRun<ExportPosition>('export', input.carried, params.notify);
  let plan = input.plan;
  if (!plan) {
    tracker.setStep('planning');
    try {
      plan = await planExport({ run, params, asOf: new Date(Date.now()).toISOString() });
    } catch (err) {
      const error = activityError(err);
      if (!error) throw err;
      return completeRun(tracker, { counts: zeroCounts(), error, errorSample: [], errorCount: 0, warnings: [] });
    }
  }
  tracker.setTotal(plan.matched);
  tracker.setStep('exporting');
  const planned = plan;
  const outcome = await runCheckpointedLoop<ExportPosition>({
    tracker,
    slice: (cursor) => exportSlice({ run, params, plan: planned, cursor }),
    continueAsNew: (carried) => continueAsNew<typeof exportWorkflow>({ params: input.params, plan: planned, carried }),
  });
  // Cleaning up must happen even when Temporal itself cancelled the run.
  return CancellationScope.nonCancellable(async () => {
    if (outcome.checkpoint?.done && !tracker.cancelRequested) {
      tracker.setStep('completing');
      try {
        const output = await completeExport({ run, plan: planned });
        return await completeLoop(tracker, outcome, { total: planned.matched, outputs: [output] });
      } catch (err) {
        const error = activityError(err);
        if (!error) throw err;
        outcome.error = error;
      }
    }
    await abortExport({ run, plan: planned });
    return completeLoop(tracker, outcome, { total: planned.matched });
  });
}
