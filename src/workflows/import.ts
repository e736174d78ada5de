import { continueAsNew, proxyActivities } from '@temporalio/workflow';
import type { z } from 'zod';
import type { Activities } from '../activities';
import type { ReadPosition } from '../formats';
import { importParamsSchema } from '../jobs/import';
import type { RunResult } from '../jobs/run';
import { completeLoop, runCheckpointedLoop } from './batch-loop';
import { currentRun, parseInput, sliceActivityOptions } from './common';
import { trackRun, type CarriedState } from './run-tracker';

export { cancelSignal, progressQuery } from './run-tracker';

export interface ImportWorkflowInput {
  params: z.input<typeof importParamsSchema>;
  /** Set by continue-as-new only. */
  carried?: CarriedState<ReadPosition>;
}

const { importSlice } = proxyActivities<Activities>(sliceActivityOptions);

/** Imports a CSV, NDJSON or JSON file into a dataset, batch by batch, from checkpoint to checkpoint. */
export async function importWorkflow(input: ImportWorkflowInput): Promise<RunResult> {
  const params = parseInput(importParamsSchema, input.params);
  const run = currentRun();
  const tracker = trackRun<ReadPosition>('import', input.carried, params.notify);
  tracker.setStep('importing');
  const outcome = await runCheckpointedLoop<ReadPosition>({
    tracker,
    slice: (cursor) => importSlice({ run, params, cursor }),
    continueAsNew: (carried) => continueAsNew<typeof importWorkflow>({ params: input.params, carried }),
  });
  return completeLoop(tracker, outcome);
}
