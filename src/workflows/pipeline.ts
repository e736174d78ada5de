import {
  ApplicationFailure,
  CancellationScope,
  ChildWorkflowFailure,
  condition,
  isCancellation,
  startChild,
  workflowInfo,
  type ChildWorkflowHandle,
} from '@temporalio/workflow';
import type { z } from 'zod';
import { asErrorCode, ErrorCode } from '../errors';
import { jobKinds, runSearchAttributes } from '../jobs';
import type { PipelineStep } from '../jobs/pipeline';
import { zeroCounts, type Counts, type RunResult, type StepState } from '../jobs/run';
import { parseInput } from './common';
import { cancelSignal, completeRun, trackRun } from './run-tracker';

export { cancelSignal, progressQuery } from './run-tracker';

export interface PipelineWorkflowInput {
  params: z.input<typeof jobKinds.pipeline.schema>;
}

type StepWorkflow = (arg: { params: unknown }) => Promise<RunResult>;

const sumCounts = (all: (Counts | undefined)[]): Counts =>
  all.reduce<Counts>(
    (sum, c) => ({
      processed: sum.processed + (c?.processed ?? 0),
      succeeded: sum.succeeded + (c?.succeeded ?? 0),
      failed: sum.failed + (c?.failed ?? 0),
      skipped: sum.skipped + (c?.skipped ?? 0),
    }),
    zeroCounts(),
  );

/** A step's outcome from its child run: its result, or the failure it ended with. */
function stepOutcome(runId: string, err: unknown, result?: RunResult): StepState {
  if (result) return { status: result.status, runId, counts: result.counts, ...(result.error && { error: result.error }) };
  const cause = err instanceof ChildWorkflowFailure ? err.cause : err;
  if (isCancellation(cause)) return { status: 'cancelled', runId };
  const details = cause instanceof ApplicationFailure ? (cause.details?.[0] as RunResult | undefined) : undefined;
  const error = { code: asErrorCode(cause instanceof ApplicationFailure ? cause.type : undefined), message: cause instanceof Error ? cause.message : String(cause) };
  return { status: 'failed', runId, error, ...(details?.counts && { counts: details.counts }) };
}

/**
 * Runs named steps as child runs of their own kinds: a step starts once all it depends on
 * succeeded, up to maxParallel at a time; a failed, cancelled or skipped step skips its
 * dependants. Cancel stops the running steps after their current batch and starts no more.
 */
export async function pipelineWorkflow(input: PipelineWorkflowInput): Promise<RunResult> {
  const params = parseInput(jobKinds.pipeline.schema, input.params);
  const { workflowId: runId, memo } = workflowInfo();
  // Steps run on behalf of whoever started the pipeline: the Web UI filter and four eyes see them so.
  const startedBy = typeof memo?.startedBy === 'string' ? memo.startedBy : undefined;
  const tracker = trackRun('pipeline', undefined, params.notify);
  const childId = (step: PipelineStep) => `${runId}.${step.name}`;
  const states: Record<string, StepState> = Object.fromEntries(params.steps.map((s) => [s.name, { status: 'pending', runId: childId(s) }]));
  const publish = () => tracker.setSteps({ ...states });
  const running = new Map<string, Promise<void>>();
  // Resolves once the child run exists: a cancel signal sent before that would find no run.
  const started = new Map<string, Promise<ChildWorkflowHandle<StepWorkflow> | undefined>>();
  let finished = 0;

  const start = (step: PipelineStep) => {
    const id = childId(step);
    states[step.name] = { status: 'running', runId: id };
    const handle = startChild<StepWorkflow>(jobKinds[step.kind].workflowType, {
      workflowId: id,
      args: [{ params: step.params }],
      typedSearchAttributes: runSearchAttributes(step.kind, step.params, startedBy),
      memo: { kind: step.kind, pipeline: runId, ...(startedBy && { startedBy }) },
    });
    started.set(step.name, handle.catch(() => undefined));
    const run = handle
      .then((child) => child.result())
      .then(
        (result) => stepOutcome(id, undefined, result),
        (err: unknown) => stepOutcome(id, err),
      );
    running.set(
      step.name,
      run.then((state) => {
        states[step.name] = state;
        running.delete(step.name);
        finished += 1;
        publish();
      }),
    );
  };

  const settle = () => {
    for (const step of params.steps) {
      if (states[step.name]!.status !== 'pending') continue;
      const blocked = step.dependsOn.find((d) => ['failed', 'cancelled', 'skipped'].includes(states[d]!.status));
      if (blocked || tracker.cancelRequested) {
        const reason = blocked ? `depends on ${blocked}, which ${states[blocked]!.status === 'failed' ? 'failed' : `was ${states[blocked]!.status}`}` : 'the pipeline was cancelled';
        states[step.name] = { status: 'skipped', reason };
        continue;
      }
      const ready = step.dependsOn.every((d) => ['success', 'partial'].includes(states[d]!.status));
      if (ready && running.size < params.maxParallel) start(step);
    }
    publish();
  };

  tracker.setStep('running');
  let stopping = false;
  try {
    for (settle(); running.size > 0; settle()) {
      const seen = finished;
      await condition(() => finished !== seen || (tracker.cancelRequested && !stopping));
      if (tracker.cancelRequested && !stopping) {
        stopping = true;
        // Each running step stops after its current batch, like a run cancelled on its own. A
        // step that ended meanwhile can no longer be signalled, and needs no cancel.
        const signalStop = async (name: string) => (await started.get(name))?.signal(cancelSignal, { reason: 'pipeline cancelled' }).catch(() => undefined);
        await Promise.all([...running.keys()].map(signalStop));
      }
    }
  } catch (err) {
    if (!isCancellation(err)) throw err;
    // Temporal's own cancel reaches the children too; wait for them to stop, then report.
    tracker.requestCancel();
    await CancellationScope.nonCancellable(() => Promise.all(running.values()));
    settle();
  }

  const failed = params.steps.find((s) => states[s.name]!.status === 'failed');
  return completeRun(tracker, {
    counts: sumCounts(Object.values(states).map((s) => s.counts)),
    ...(failed && { error: { code: ErrorCode.StepFailed, message: `step ${failed.name} failed: ${states[failed.name]!.error?.message ?? 'see its run'}` } }),
    errorSample: [],
    errorCount: 0,
    warnings: [],
    steps: states,
  });
}
