import { continueAsNew, proxyActivities } from '@temporalio/workflow';
import type { z } from 'zod';
import type { Activities } from '../activities';
import type { KeysetPosition } from '../jobs/checkpoint';
import { customParamsSchema } from '../jobs/custom';
import type { RunResult } from '../jobs/run';
import { completeLoop, runCheckpointedLoop } from './batch-loop';
import { currentRun, parseInput, sliceActivityOptions } from './common';
import { trackRun, type CarriedState } from './run-tracker';

export { cancelSignal, progressQuery } from './run-tracker';

export interface CustomStepWorkflowInput {
  params: z.input<typeof customParamsSchema>;
  carried?: CarriedState<KeysetPosition>;
}

const { customStepSlice } = proxyActivities<Activities>(sliceActivityOptions);

/** Runs a custom step registered in code, checkpointed like the built-in flows. */
export async function customStepWorkflow(input: CustomStepWorkflowInput): Promise<RunResult> {
  const params = parseInput(customParamsSchema, input.params);
  const run = currentRun();
  const tracker = trackRun<KeysetPosition>('custom', input.carried, params.notify);
  tracker.setStep(params.step);
  const outcome = await runCheckpointedLoop<KeysetPosition>({
    tracker,
    slice: (cursor) => customStepSlice({ run, params, cursor }),
    continueAsNew: (carried) => continueAsNew<typeof customStepWorkflow>({ params: input.params, carried }),
  });
  return completeLoop(tracker, outcome);
}
