import { continueAsNew, proxyActivities } from '@temporalio/workflow';
import type { z } from 'zod';
import type { Activities } from '../activities';
import type { Checkpoint, KeysetPosition } from '../jobs/checkpoint';
import { cleanupParamsSchema, cleanupRules, type CleanupParams } from '../jobs/cleanup';
import { zeroCounts, type RunPlan, type RunResult, type StepState } from '../jobs/run';
import { currentRun, parseInput, sliceActivityOptions } from './common';
import { runPreviewed, type PreviewedRunInput } from './previewed-run';

export { approveSignal, rejectSignal } from './approval';
export { cancelSignal, progressQuery } from './run-tracker';

export type CleanupWorkflowInput = PreviewedRunInput<z.input<typeof cleanupParamsSchema>>;

const { planCleanup, cleanupSlice } = proxyActivities<Activities>(sliceActivityOptions);

/**
 * Each rule's state from the run's checkpoint: rules run in order, so those before the current one
 * are done. Without a checkpoint nothing was deleted (a dry run, a refusal, no approval): every
 * rule was skipped.
 */
function ruleStates(params: CleanupParams, plan: RunPlan, checkpoint: Checkpoint<KeysetPosition> | undefined, final: boolean): Record<string, StepState> {
  const at = checkpoint?.position ?? { step: 0, lastId: 0 };
  return Object.fromEntries(
    cleanupRules(params).map((rule, i): [string, StepState] => {
      const counts = { ...(checkpoint?.byStep?.[rule.name] ?? zeroCounts()), total: plan.preview.steps?.[rule.name]?.matched };
      const finished = !!checkpoint && (checkpoint.done || i < at.step || (i === at.step && at.lastId >= plan.bounds[i]!));
      if (finished) return [rule.name, { status: counts.failed > 0 ? 'partial' : 'success', counts }];
      if (!final) return [rule.name, { status: i === at.step ? 'running' : 'pending', counts }];
      if (checkpoint && i === at.step) return [rule.name, { status: checkpoint.stop ? 'failed' : 'cancelled', counts, ...(checkpoint.stop && { error: checkpoint.stop }) }];
      return [rule.name, { status: 'skipped', counts, reason: checkpoint ? 'the run stopped before this rule' : 'nothing was deleted (dry run, refused or not approved)' }];
    }),
  );
}

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
    steps: (plan, checkpoint, final) => ruleStates(params, plan, checkpoint, final),
  });
}
