import { continueAsNew, proxyActivities } from '@temporalio/workflow';
import type { z } from 'zod';
import type { Activities } from '../activities';
import type { KeysetPosition } from '../jobs/checkpoint';
import { dedupeParamsSchema } from '../jobs/dedupe';
import type { RunResult } from '../jobs/run';
import { completeLoop, runCheckpointedLoop } from './batch-loop';
import { currentRun, parseInput, sliceActivityOptions } from './common';
import { previewThenRun, type PreviewedRunInput } from './previewed-run';
import { trackRun, type CarriedState } from './run-tracker';

export { approveSignal, rejectSignal } from './approval';
export { cancelSignal, progressQuery } from './run-tracker';

export type DedupeWorkflowInput = PreviewedRunInput<z.input<typeof dedupeParamsSchema>>;

const { dedupeIndexSlice, dedupeCompareSlice, groupDuplicates, dedupeMergeSlice } = proxyActivities<Activities>(sliceActivityOptions);

/**
 * Finds a dataset's duplicates in two checkpointed phases (index the rows' block keys, compare
 * within blocks), groups them and writes the report; with `merge`, previews the rows it would
 * remove, then (after approval if asked) keeps one row per group, like a bulk update.
 */
export async function dedupeWorkflow(input: DedupeWorkflowInput): Promise<RunResult> {
  const params = parseInput(dedupeParamsSchema, input.params);
  const run = currentRun();
  const tracker = trackRun<KeysetPosition>('dedupe', input.carried, params.notify);
  let plan = input.plan;
  if (!plan) {
    const asOf = input.asOf ?? new Date(Date.now()).toISOString();
    const next = (carried: CarriedState<KeysetPosition>) => continueAsNew<typeof dedupeWorkflow>({ params: input.params, asOf, carried });
    // A compare cursor's step is its pass + 1; the index's is 0.
    const comparing = (tracker.checkpoint?.position.step ?? 0) > 0;
    if (!comparing) {
      tracker.setStep('indexing');
      const indexed = await runCheckpointedLoop<KeysetPosition>({ tracker, slice: (cursor) => dedupeIndexSlice({ run, params, asOf, cursor }), continueAsNew: next });
      if (!indexed.checkpoint?.done) return completeLoop(tracker, indexed);
    }
    tracker.setStep('comparing');
    const compared = await runCheckpointedLoop<KeysetPosition>({ tracker, fresh: !comparing, slice: (cursor) => dedupeCompareSlice({ run, params, cursor }), continueAsNew: next });
    if (!compared.checkpoint?.done) return completeLoop(tracker, compared);
    tracker.setStep('grouping');
    plan = await groupDuplicates({ run, params, asOf });
  }
  // Without a merge the run only reports: a dry run of the merge.
  return previewThenRun(tracker, plan, {
    working: 'merging',
    input,
    params: { ...params, dryRun: params.dryRun || !params.merge },
    slice: (approved, cursor) => dedupeMergeSlice({ run, params, plan: approved, cursor }),
    continueAsNew: (carried) => continueAsNew<typeof dedupeWorkflow>(carried as DedupeWorkflowInput),
  });
}
