import {
  ApplicationFailure,
  CancellationScope,
  defineQuery,
  defineSignal,
  log,
  patched,
  proxyActivities,
  proxySinks,
  setHandler,
  upsertSearchAttributes,
  workflowInfo,
  type Sinks,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import { searchAttributes } from '../jobs';
import type { Checkpoint } from '../jobs/checkpoint';
import { NOTIFY_ATTEMPTS, type Notify } from '../jobs/notify';
import { withRates, type ApprovalRecord, type Counts, type ErrorSample, type Failure, type Preview, type Progress, type RunOutput, type RunResult, type StepState } from '../jobs/run';
import { currentRun } from './common';

/** Stops a run after its current batch; the result keeps the counts so far. */
export const cancelSignal = defineSignal<[{ reason?: string }?]>('cancel');
/** Counts, step, rate and ETA of a run, as it stands. */
export const progressQuery = defineQuery<Progress>('progress');

/** What a run carries across continue-as-new besides its own parameters. */
export interface CarriedState<P> {
  cursor?: Checkpoint<P>;
  startedAt: string;
  cancelRequested: boolean;
}

/** Where runs report outside their history: the worker's metrics. Sinks are not called on replay. */
export interface RunSinks extends Sinks {
  runs: {
    started(kind: string): void;
    finished(kind: string, status: string): void;
  };
}
const sinks = proxySinks<RunSinks>();

export type RunTracker = ReturnType<typeof trackRun>;

/**
 * Registers the progress query and the cancel signal, and keeps what they report. `notify`
 * (the run's params.notify) says who completeRun tells when the run ends.
 */
export function trackRun<P>(kind: string, carried?: CarriedState<P>, notify?: Notify) {
  const startedAt = carried?.startedAt ?? workflowInfo().startTime.toISOString();
  let cancelRequested = carried?.cancelRequested ?? false;
  let step = 'starting';
  let last: Checkpoint<P> | undefined = carried?.cursor;
  let steps: Record<string, StepState> | undefined;
  let total: number | undefined;
  let awaiting: { preview: Preview; approvalDeadline: string } | undefined;
  let progress: Progress = emptyProgress(startedAt, cancelRequested);
  if (!carried) {
    sinks.runs.started(kind);
    log.info('run started', { kind });
  }

  const refresh = () => {
    const counts = { ...(last?.counts ?? progress.counts), ...(total !== undefined && { total }) };
    progress = {
      ...withRates({ step, counts, bytesRead: last?.bytesRead, bytesTotal: last?.bytesTotal, startedAt, cancelRequested }, Date.now()),
      ...(steps && { steps }),
      ...awaiting,
    };
  };

  setHandler(progressQuery, () => progress);
  const onCancel = new Set<() => void>();
  const requestCancel = () => {
    cancelRequested = true;
    progress = { ...progress, cancelRequested };
    for (const listener of onCancel) listener();
  };
  setHandler(cancelSignal, requestCancel);

  return {
    kind,
    notify,
    startedAt,
    get cancelRequested() {
      return cancelRequested;
    },
    get checkpoint() {
      return last;
    },
    requestCancel,
    /** Calls `listener` when a cancel is requested, until the returned function is called. */
    whenCancelled(listener: () => void): () => void {
      onCancel.add(listener);
      return () => onCancel.delete(listener);
    },
    setStep(next: string) {
      step = next;
      refresh();
    },
    update(checkpoint: Checkpoint<P>) {
      last = checkpoint;
      refresh();
    },
    /** How many rows the run will go through, when known up front: progress gets an ETA. */
    setTotal(next: number) {
      total = next;
      refresh();
    },
    /** Per-step states for runs made of steps (pipeline steps, cleanup rules). */
    setSteps(next: Record<string, StepState>) {
      steps = next;
      refresh();
    },
    /** Shows what the run would change while it waits for approval; undefined when it stops waiting. */
    setAwaiting(next: { preview: Preview; approvalDeadline: string } | undefined) {
      awaiting = next;
      refresh();
    },
    carry(): CarriedState<P> {
      return { cursor: last, startedAt, cancelRequested };
    },
  };
}

function emptyProgress(startedAt: string, cancelRequested: boolean): Progress {
  return {
    step: 'starting',
    counts: { processed: 0, succeeded: 0, failed: 0, skipped: 0 },
    rowsPerSecond: 0,
    startedAt,
    updatedAt: startedAt,
    cancelRequested,
  };
}

// Bounded: a notification that keeps failing is recorded as failed and the run ends as it would have.
const { notifyRunEnd } = proxyActivities<Activities>({
  startToCloseTimeout: '5 minutes',
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumAttempts: NOTIFY_ATTEMPTS },
});

/**
 * Tells whoever the run's `notify` names how it ended (and delivers the events the run recorded,
 * such as invoice events). Runs even when the run was cancelled; never fails the run.
 */
async function notifyEnd(tracker: RunTracker, result: RunResult): Promise<void> {
  if (!tracker.notify) return;
  tracker.setStep('notifying');
  const { status, counts, errorCount, error, startedAt, endedAt } = result;
  const run = currentRun();
  try {
    await CancellationScope.nonCancellable(() =>
      notifyRunEnd({
        execution: run.execution,
        notify: tracker.notify!,
        end: { runId: run.id, kind: tracker.kind, status, counts, errorCount, ...(error && { error }), startedAt, endedAt },
      }),
    );
  } catch (err) {
    // Each attempt is in the delivery log (GET /runs/:id/notifications).
    log.warn('notifications were not all delivered', { error: err instanceof Error ? err.message : String(err) });
  }
}

const { recordRun } = proxyActivities<Activities>({
  startToCloseTimeout: '1 minute',
  // Bounded: the run's figures must not keep a finished run from ending.
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds', maximumAttempts: 10 },
});

/** Runs started before stats existed replay without recording their figures. */
const RUN_FACTS_PATCH = 'batchflow-run-facts';

/** Stores the run's figures for stats: counts and timings, never rows. */
async function recordFacts(result: RunResult): Promise<void> {
  if (!patched(RUN_FACTS_PATCH)) return;
  const run = currentRun();
  const facts = {
    runId: run.id,
    execution: run.execution,
    kind: result.kind,
    dataset: workflowInfo().typedSearchAttributes.get(searchAttributes.dataset),
    status: result.status,
    errorCode: result.error?.code,
    counts: result.counts,
    startedAt: result.startedAt,
    endedAt: result.endedAt,
    durationMs: result.durationMs,
  };
  // Recorded even when Temporal's own cancel ended the run.
  await CancellationScope.nonCancellable(() => recordRun(facts)).catch((err: unknown) => log.warn('the run\'s figures were not recorded; stats will miss it', { error: err }));
}

/**
 * Builds the run's result, sends the run's notifications and records its figures: every run ends
 * here. A failed run ends the workflow as Failed (so the Web UI shows it red) with the result as
 * the failure's details; other outcomes complete with the result.
 */
export async function completeRun(
  tracker: RunTracker,
  end: {
    counts: Counts;
    error?: Failure;
    /** Why a run that changed nothing ended as cancelled (rejected, approval timed out). */
    cancelled?: Failure;
    errorSample: ErrorSample[];
    errorCount: number;
    warnings: string[];
    outputs?: RunOutput[];
    preview?: Preview;
    approval?: ApprovalRecord;
    steps?: Record<string, StepState>;
  },
): Promise<RunResult> {
  const endedAt = new Date(Date.now());
  const status: RunResult['status'] =
    end.cancelled || (tracker.cancelRequested && !end.error) ? 'cancelled' : end.error ? 'failed' : end.counts.failed > 0 ? 'partial' : 'success';
  const error = end.error ?? end.cancelled;
  const result: RunResult = {
    status,
    kind: tracker.kind,
    counts: end.counts,
    ...(error && { error }),
    errorSample: end.errorSample,
    errorCount: end.errorCount,
    errorReport: `/runs/${encodeURIComponent(workflowInfo().workflowId)}/errors`,
    outputs: end.outputs ?? [],
    warnings: end.warnings,
    ...(end.preview && { preview: end.preview }),
    ...(end.approval && { approval: end.approval }),
    ...(end.steps && { steps: end.steps }),
    startedAt: tracker.startedAt,
    endedAt: endedAt.toISOString(),
    durationMs: endedAt.getTime() - Date.parse(tracker.startedAt),
  };
  await notifyEnd(tracker, result);
  tracker.setStep(status);
  upsertSearchAttributes([{ key: searchAttributes.status, value: status }]);
  sinks.runs.finished(tracker.kind, status);
  log.info('run finished', { kind: tracker.kind, status, processed: result.counts.processed, failed: result.counts.failed, durationMs: result.durationMs, ...(error && { code: error.code }) });
  await recordFacts(result);
  if (status === 'failed') {
    throw ApplicationFailure.create({ type: end.error!.code, message: end.error!.message, nonRetryable: true, details: [result] });
  }
  return result;
}
