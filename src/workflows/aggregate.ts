import { continueAsNew, proxyActivities } from '@temporalio/workflow';
import type { z } from 'zod';
import type { Activities } from '../activities';
import { aggregateParamsSchema, aggregateRange, type DatePosition } from '../jobs/aggregate';
import { dayCount, type DateRange } from '../jobs/dates';
import type { RunResult } from '../jobs/run';
import { completeLoop, runCheckpointedLoop } from './batch-loop';
import { currentRun, nominalTime, parseInput, sliceActivityOptions } from './common';
import { trackRun, type CarriedState } from './run-tracker';

export { cancelSignal, progressQuery } from './run-tracker';

export interface AggregateWorkflowInput {
  params: z.input<typeof aggregateParamsSchema>;
  /** Set by continue-as-new only: the dates were settled by the first execution. */
  range?: DateRange;
  carried?: CarriedState<DatePosition>;
}

const { aggregateSlice } = proxyActivities<Activities>(sliceActivityOptions);

/** Computes the declared roll-ups date by date, one upsert per date and roll-up, from checkpoint to checkpoint. */
export async function aggregateWorkflow(input: AggregateWorkflowInput): Promise<RunResult> {
  const params = parseInput(aggregateParamsSchema, input.params);
  const run = currentRun();
  const range = input.range ?? aggregateRange(params, nominalTime());
  const tracker = trackRun<DatePosition>('aggregate', input.carried, params.notify);
  tracker.setTotal(dayCount(range.from, range.to));
  tracker.setStep(range.from === range.to ? `aggregating ${range.from}` : `aggregating ${range.from} to ${range.to}`);
  const outcome = await runCheckpointedLoop<DatePosition>({
    tracker,
    slice: (cursor) => aggregateSlice({ run, rollups: params.rollups, range, cursor }),
    continueAsNew: (carried) => continueAsNew<typeof aggregateWorkflow>({ params: input.params, range, carried }),
  });
  return completeLoop(tracker, outcome);
}
