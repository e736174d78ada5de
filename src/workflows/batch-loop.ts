import { CancellationScope, isCancellation, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { Checkpoint } from '../jobs/checkpoint';
import { zeroCounts, type ApprovalRecord, type Failure, type Preview, type RunOutput, type RunResult, type StepState } from '../jobs/run';
import { activityError, currentRun, sliceActivityOptions } from './common';
import { completeRun, type CarriedState, type RunTracker } from './run-tracker';

export interface LoopOutcome<P> {
  checkpoint?: Checkpoint<P>;
  /** Set when the loop ended on an error rather than at the end of its input. */
  error?: Failure;
}

/**
 * Calls a slice activity from checkpoint to checkpoint until the input is done, the run is
 * stopped by its error policy, a cancel arrives (a signal or Temporal's own cancel), or a slice
 * fails permanently. A cancel reaches the running slice as an activity cancellation, which it
 * honours at its next batch boundary and reports back; a batch is never interrupted. Long runs
 * continue-as-new when Temporal suggests it, carrying only the checkpoint.
 */
export async function runCheckpointedLoop<P>(opts: {
  tracker: RunTracker;
  /** Start from the beginning of the input rather than the tracker's checkpoint (the run's next phase). */
  fresh?: boolean;
  /** Per-step states to show in progress after each slice, for runs made of steps. */
  stepsOf?: (checkpoint: Checkpoint<P>) => Record<string, StepState>;
  slice: (cursor: Checkpoint<P> | undefined) => Promise<Checkpoint<P>>;
  continueAsNew: (carried: CarriedState<P>) => Promise<never>;
}): Promise<LoopOutcome<P>> {
  const { tracker } = opts;
  const stopRequested = () => tracker.cancelRequested || CancellationScope.current().consideredCancelled;
  let checkpoint = opts.fresh ? undefined : (tracker.checkpoint as Checkpoint<P> | undefined);
  while (!checkpoint?.done && !checkpoint?.stop && !stopRequested()) {
    if (workflowInfo().continueAsNewSuggested) await opts.continueAsNew(tracker.carry() as CarriedState<P>);
    try {
      checkpoint = await sliceUntilCancelled(tracker, () => opts.slice(checkpoint));
    } catch (err) {
      // A slice cancelled before it started: nothing ran, the checkpoint stands.
      if (isCancellation(err)) break;
      const error = activityError(err);
      if (error) return { checkpoint, error };
      throw err;
    }
    tracker.update(checkpoint);
    if (opts.stepsOf) tracker.setSteps(opts.stepsOf(checkpoint));
  }
  if (CancellationScope.current().consideredCancelled && !tracker.cancelRequested) {
    // Temporal's own cancel: record it like the signal so the result says cancelled.
    tracker.requestCancel();
  }
  return { checkpoint, error: checkpoint?.stop };
}

/**
 * Runs a slice shielded from Temporal's cancel of the workflow, then cancels it on purpose when
 * the run is cancelled (signal or Temporal's own cancel), and waits for it to stop on a batch boundary.
 */
async function sliceUntilCancelled<T>(tracker: RunTracker, slice: () => Promise<T>): Promise<T> {
  const outer = CancellationScope.current();
  return CancellationScope.nonCancellable(async () => {
    const scope = new CancellationScope();
    const stop = () => scope.cancel();
    const unhook = tracker.whenCancelled(stop);
    outer.cancelRequested.catch(stop);
    try {
      return await scope.run(slice);
    } finally {
      unhook();
    }
  });
}

const { finishRun } = proxyActivities<Activities>(sliceActivityOptions);

/**
 * Ends a run after its loop: final counts from the database (authoritative even when the last
 * slice failed after some batches), a sample of its row errors, then the result.
 */
export async function completeLoop<P>(
  tracker: RunTracker,
  outcome: LoopOutcome<P>,
  extra: { preview?: Preview; total?: number; approval?: ApprovalRecord; outputs?: RunOutput[]; warnings?: string[]; steps?: (checkpoint: Checkpoint<P> | undefined) => Record<string, StepState> } = {},
): Promise<RunResult> {
  tracker.setStep('finishing');
  const finished = await finishRun({ run: currentRun() });
  const total = extra.total ?? extra.preview?.matched;
  const counts = finished.counts ?? outcome.checkpoint?.counts ?? zeroCounts();
  return completeRun(tracker, {
    counts: total === undefined ? counts : { ...counts, total },
    error: outcome.error,
    errorSample: finished.errorSample,
    errorCount: finished.errorCount,
    warnings: [...(extra.warnings ?? []), ...(finished.warnings ?? outcome.checkpoint?.warnings ?? [])],
    outputs: extra.outputs,
    preview: extra.preview,
    approval: extra.approval,
    steps: extra.steps?.(outcome.checkpoint),
  });
}
