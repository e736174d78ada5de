import { ActivityFailure, ApplicationFailure, CancellationScope, workflowInfo } from '@temporalio/workflow';
import { ErrorCode } from '../errors';
import type { Checkpoint } from '../jobs/checkpoint';
import type { CarriedState, RunTracker } from './run-tracker';

export interface LoopOutcome<P> {
  checkpoint?: Checkpoint<P>;
  /** Set when the loop ended on an error rather than at the end of its input. */
  error?: { code: string; message: string };
}

/**
 * Calls a slice activity from checkpoint to checkpoint until the input is done, the run is
 * stopped by its error policy, a cancel arrives (a signal or Temporal's own cancel), or a slice
 * fails permanently. A running slice is never interrupted: it ends on a batch boundary. Long
 * runs continue-as-new when Temporal suggests it, carrying only the checkpoint.
 */
export async function runCheckpointedLoop<P>(opts: {
  tracker: RunTracker;
  slice: (cursor: Checkpoint<P> | undefined) => Promise<Checkpoint<P>>;
  continueAsNew: (carried: CarriedState<P>) => Promise<never>;
}): Promise<LoopOutcome<P>> {
  const { tracker } = opts;
  const stopRequested = () => tracker.cancelRequested || CancellationScope.current().consideredCancelled;
  let checkpoint = tracker.checkpoint as Checkpoint<P> | undefined;
  while (!checkpoint?.done && !checkpoint?.stop && !stopRequested()) {
    if (workflowInfo().continueAsNewSuggested) await opts.continueAsNew(tracker.carry() as CarriedState<P>);
    try {
      checkpoint = await CancellationScope.nonCancellable(() => opts.slice(checkpoint));
    } catch (err) {
      if (err instanceof ActivityFailure && err.cause instanceof ApplicationFailure) {
        return { checkpoint, error: { code: err.cause.type ?? ErrorCode.RunFailed, message: err.cause.message } };
      }
      throw err;
    }
    tracker.update(checkpoint);
  }
  if (CancellationScope.current().consideredCancelled && !tracker.cancelRequested) {
    // Temporal's own cancel: record it like the signal so the result says cancelled.
    tracker.requestCancel();
  }
  return { checkpoint, error: checkpoint?.stop };
}
