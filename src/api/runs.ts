import { randomUUID } from 'node:crypto';
import { WorkflowExecutionAlreadyStartedError, type Client, type WorkflowExecutionDescription } from '@temporalio/client';
import { defaultPayloadConverter, TypedSearchAttributes, WorkflowIdReusePolicy, type Timestamp } from '@temporalio/common';
import { runFailure } from '../temporal';
import { scheduledBy, type JobKindName } from '../jobs';
import { runStartOptions } from '../jobs/start';
import { z } from 'zod';
import { failureSchema, progressSchema, runResultSchema, runStatusSchema, withRates, zeroCounts, type Preview, type PreviewSamples, type Progress, type RunResult } from '../jobs/run';
import type { Checkpoint } from '../jobs/checkpoint';
import type { Pool } from '../db/pool';
import { runState } from '../db/queries';
import { AWAITING_APPROVAL, approveSignal, rejectSignal } from '../workflows/approval';
import { cancelSignal, progressQuery } from '../workflows/run-tracker';
import { ErrorCode } from '../errors';
import { BadPageTokenError, listRuns, listRunsPage, visibilityQuery, type RunFilter } from '../visibility';
import { ApiError } from './errors';

/** How long the API waits for a worker to answer a run's progress query. */
const QUERY_DEADLINE_MS = 5_000;

/** An activity of the run that failed and waits for (or runs) its next attempt. */
const retryingSchema = z.object({
  activity: z.string(),
  /** The attempt running or scheduled next (2 after one failure). */
  attempt: z.number().int(),
  lastFailure: z.object({ type: z.string().optional(), message: z.string() }),
  nextAttemptAt: z.string().optional(),
});

export const runViewSchema = z
  .object({
    runId: z.string(),
    kind: z.string().optional(),
    scheduleId: z.string().optional().describe('The schedule that started the run, if one did'),
    startedBy: z.string().optional().describe('The name of the API key that started it'),
    status: runStatusSchema,
    progress: progressSchema.nullable().describe('Counts, rate, ETA and step: live while it runs, final once it ended'),
    result: runResultSchema.nullable().describe('Set once the run ended'),
    error: failureSchema.optional().describe('Why a failed run failed'),
    /** Set while one of the run's activities retries after a failure: "running" never hides a retry loop. */
    retrying: retryingSchema.optional().describe("Set while one of the run's activities retries after a failure"),
    replays: z
      .object({
        rejectedRows: z.number().int(),
        acceptedLater: z.number().int(),
        runs: z.array(z.string()),
        replayOf: z.string().optional(),
      })
      .optional()
      .describe('Imports: the replays of its rejected rows and how many of them were accepted later; a replay names the run it fixes'),
  })
  .meta({
    id: 'Run',
    examples: [
      {
        runId: 'users-2026-11-23',
        kind: 'import',
        status: 'partial',
        progress: {
          step: 'partial',
          counts: { processed: 1205, succeeded: 1200, failed: 5, skipped: 0, inserted: 1180, updated: 20 },
          rowsPerSecond: 268,
          etaSeconds: 0,
          startedAt: '2026-11-23T08:00:00.000Z',
          updatedAt: '2026-11-23T08:00:04.512Z',
          cancelRequested: false,
        },
        result: {
          status: 'partial',
          kind: 'import',
          counts: { processed: 1205, succeeded: 1200, failed: 5, skipped: 0, inserted: 1180, updated: 20 },
          errorSample: [{ row: 3, line: 4, field: 'email', code: 'VALIDATION_FAILED', message: 'must be a valid email address', raw: { email: 'not-an-email', name: 'Ann' } }],
          errorCount: 6,
          errorReport: '/runs/users-2026-11-23/errors',
          outputs: [],
          warnings: [],
          startedAt: '2026-11-23T08:00:00.000Z',
          endedAt: '2026-11-23T08:00:04.512Z',
          durationMs: 4512,
        },
      },
    ],
  });
export type RunView = z.infer<typeof runViewSchema>;

const memoString = (memo: Record<string, unknown> | undefined, key: string) => (typeof memo?.[key] === 'string' ? memo[key] : undefined);

/** Runs as the API sees them: started, read and stopped through Temporal. */
export function createRunService(client: Client, taskQueue: string, pool: Pool, opts: { allowSelfApproval?: boolean } = {}) {
  /** The run's execution, keying its state: reported by Temporal, else the newest one registered under its id. */
  const executionOf = async (description: WorkflowExecutionDescription): Promise<string> =>
    description.raw.workflowExecutionInfo?.firstRunId || (await runState.latestExecution(pool, description.workflowId)) || description.runId;

  /** Counts from the run's last committed checkpoint, for when no worker answers its query; null if it has none (or Postgres is away). */
  const staleProgress = async (description: WorkflowExecutionDescription): Promise<Progress | null> => {
    const stored = await runState.readCheckpoint<Checkpoint<unknown>>(pool, await executionOf(description)).catch(() => undefined);
    if (!stored) return null;
    const { counts, bytesRead, bytesTotal } = stored.checkpoint;
    const startedAt = description.startTime.toISOString();
    return { ...withRates({ step: 'unknown', counts: counts ?? zeroCounts(), bytesRead, bytesTotal, startedAt, cancelRequested: false }, Date.now()), stale: true };
  };

  return {
    /**
     * Starts a run on behalf of `startedBy` (a key's name); the same runId again returns that run,
     * whoever asks, and refuses different params.
     */
    async start(kind: JobKindName, params: unknown, run: { runId?: string; startedBy: string }): Promise<{ runId: string; existing: boolean }> {
      const { workflowType, typedSearchAttributes, ...options } = runStartOptions(kind, params, run.startedBy);
      const workflowId = run.runId ?? `${kind}-${randomUUID()}`;
      try {
        await client.workflow.start(workflowType, {
          ...options,
          taskQueue,
          workflowId,
          workflowIdReusePolicy: WorkflowIdReusePolicy.REJECT_DUPLICATE,
          typedSearchAttributes: new TypedSearchAttributes(typedSearchAttributes),
        });
        return { runId: workflowId, existing: false };
      } catch (err) {
        if (!(err instanceof WorkflowExecutionAlreadyStartedError)) throw err;
        const existing = await client.workflow.getHandle(workflowId).describe();
        if (existing.memo?.paramsDigest !== options.memo.paramsDigest) {
          throw new ApiError(409, 'RUN_ID_CONFLICT', `runId "${workflowId}" is already used by a run with other kind or params`, 'runId');
        }
        return { runId: workflowId, existing: true };
      }
    },

    async get(runId: string): Promise<RunView> {
      const handle = client.workflow.getHandle(runId);
      const description = await handle.describe();
      const kind = memoString(description.memo, 'kind');
      const scheduleId = description.typedSearchAttributes.get(scheduledBy.id);
      const startedBy = memoString(description.memo, 'startedBy');
      const view = async (state: Omit<RunView, 'runId' | 'kind' | 'scheduleId' | 'startedBy'>): Promise<RunView> => {
        // Preview sample rows are kept out of workflow history: join them back in for display.
        const previews = [state.progress?.preview, state.result?.preview].filter((p): p is Preview => p !== undefined);
        if (previews.length > 0) {
          const samples = await runState.readPreviewSamples(pool, await executionOf(description));
          for (const preview of previews) withSamples(preview, samples);
        }
        return { runId, kind, ...(scheduleId && { scheduleId }), ...(startedBy && { startedBy }), ...state };
      };
      switch (description.status.name) {
        case 'RUNNING': {
          const retrying = retryingActivity(description);
          // A query needs a worker. Without an answer, the counts of the last committed batch, marked stale.
          const answered = await client.withDeadline(Date.now() + QUERY_DEADLINE_MS, () => handle.query(progressQuery)).catch(() => null);
          const progress = answered ? await withLiveCounts(pool, await executionOf(description), answered) : await staleProgress(description);
          return view({ status: 'running', progress, result: null, ...(retrying && { retrying }) });
        }
        case 'COMPLETED': {
          const result = (await handle.result()) as RunResult;
          return view({ status: result.status, progress: finalProgress(result), result });
        }
        case 'FAILED': {
          const { error, result } = await runFailure(handle);
          return view({ status: 'failed', progress: result ? finalProgress(result) : null, result: result ?? null, error });
        }
        case 'CANCELLED':
          return view({ status: 'cancelled', progress: null, result: null });
        default:
          return view({ status: 'failed', progress: null, result: null, error: { code: ErrorCode.RunFailed, message: `the run was ${description.status.name.toLowerCase().replace(/_/g, ' ')}` } });
      }
    },

    /** The run's execution, whose state GET /runs/:id/errors (rejected, notifications, …) reads; a 404 (WorkflowNotFoundError) unless the run exists. */
    async execution(runId: string): Promise<string> {
      return executionOf(await client.workflow.getHandle(runId).describe());
    },

    async cancel(runId: string, reason?: string): Promise<void> {
      const handle = client.workflow.getHandle(runId);
      const description = await handle.describe();
      if (description.status.name !== 'RUNNING') throw new ApiError(409, 'RUN_FINISHED', `run "${runId}" has already finished (${description.status.name.toLowerCase()})`);
      await handle.signal(cancelSignal, { reason });
    },

    /**
     * Approves or rejects, on behalf of `by` (a key's name), a run that waits for confirmation; 409
     * unless it is waiting. Four eyes: whoever started a run may reject it but not approve it,
     * unless self-approval is allowed.
     */
    async decide(runId: string, decision: 'approve' | 'reject', details: { by: string; comment?: string; reason?: string }): Promise<void> {
      const handle = client.workflow.getHandle(runId);
      const description = await handle.describe();
      const step =
        description.status.name === 'RUNNING'
          ? (
              await client.withDeadline(Date.now() + QUERY_DEADLINE_MS, () => handle.query(progressQuery)).catch(() => {
                throw new ApiError(503, 'WORKER_UNAVAILABLE', `run "${runId}" did not answer; is a worker running?`);
              })
            ).step
          : undefined;
      if (step !== AWAITING_APPROVAL) {
        throw new ApiError(409, 'NOT_AWAITING_APPROVAL', `run "${runId}" is not awaiting approval (${step ?? description.status.name.toLowerCase()})`);
      }
      if (decision === 'approve' && !opts.allowSelfApproval && memoString(description.memo, 'startedBy') === details.by) {
        throw new ApiError(
          403,
          'SELF_APPROVAL',
          `run "${runId}" was started by "${details.by}", who may not approve it too: another key with the approve scope must (four eyes; BATCHFLOW_ALLOW_SELF_APPROVAL=true allows it)`,
        );
      }
      await handle.signal(decision === 'approve' ? approveSignal : rejectSignal, details);
    },

    /** The kind a run was started as and its params, from the first event of its (latest) history. */
    async startedAs(runId: string): Promise<{ kind?: string; params: unknown; running: boolean }> {
      const handle = client.workflow.getHandle(runId);
      const description = await handle.describe();
      const history = await handle.fetchHistory();
      const payload = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
      const input = payload ? defaultPayloadConverter.fromPayload<{ params?: unknown }>(payload) : undefined;
      return { kind: description.memo?.kind as string | undefined, params: input?.params, running: description.status.name === 'RUNNING' };
    },

    /** A page of runs from Temporal's visibility; a page token that is not one is a 400. */
    async list(filter: RunFilter, page: { pageSize: number; pageToken?: string }) {
      return listRunsPage(client, filter, page).catch((err: unknown) => {
        if (err instanceof BadPageTokenError) throw new ApiError(400, 'INVALID_REQUEST', 'pageToken: not a page token for this filter; start again without one', 'pageToken');
        throw err;
      });
    },

    /** Every run a filter matches, up to `limit`. */
    listWhere: (filter: RunFilter, limit: number) => listRuns(client, visibilityQuery(filter), limit),
  };
}
export type RunService = ReturnType<typeof createRunService>;

/**
 * The workflow learns its counts once per slice (several seconds); the checkpoint row commits with
 * every batch. While batches run, the row's counts are the fresher ones (when Postgres answers).
 */
async function withLiveCounts(pool: Pool, execution: string, progress: Progress): Promise<Progress> {
  if (progress.preview || progress.steps) return progress;
  const stored = await runState.readCheckpoint<Checkpoint<unknown>>(pool, execution).catch(() => undefined);
  const live = stored?.checkpoint;
  if (!live?.counts || live.counts.processed <= progress.counts.processed) return progress;
  const counts = { ...live.counts, ...(progress.counts.total !== undefined && { total: progress.counts.total }) };
  return { ...progress, ...withRates({ ...progress, counts, bytesRead: live.bytesRead, bytesTotal: live.bytesTotal ?? progress.bytesTotal }, Date.now()) };
}

/** The run's activity that has failed at least once and is retrying, from Temporal's pending activities. */
function retryingActivity(description: WorkflowExecutionDescription): z.infer<typeof retryingSchema> | undefined {
  const failing = (description.raw.pendingActivities ?? []).filter((a) => (a.attempt ?? 1) > 1 && a.lastFailure);
  const activity = failing.sort((a, b) => (b.attempt ?? 0) - (a.attempt ?? 0))[0];
  if (!activity) return undefined;
  const next = timestampMs(activity.nextAttemptScheduleTime);
  const type = activity.lastFailure?.applicationFailureInfo?.type;
  return {
    activity: activity.activityType?.name ?? 'unknown',
    attempt: activity.attempt!,
    lastFailure: { ...(type && { type }), message: activity.lastFailure?.message ?? '' },
    ...(next !== undefined && { nextAttemptAt: new Date(next).toISOString() }),
  };
}

/** A protobuf timestamp (seconds a number or a Long) in milliseconds. */
const timestampMs = (ts: Timestamp | null | undefined) => (ts?.seconds == null ? undefined : Number(ts.seconds.toString()) * 1000 + Math.floor((ts.nanos ?? 0) / 1e6));

/** Puts a preview's stored sample rows back into it. */
function withSamples(preview: Preview, samples: PreviewSamples | undefined): void {
  preview.sample = samples?.sample ?? [];
  for (const [name, step] of Object.entries(preview.steps ?? {})) step.sample = samples?.steps?.[name] ?? [];
}

const finalProgress = (result: RunResult): Progress => ({
  step: result.status,
  counts: result.counts,
  rowsPerSecond: result.durationMs > 0 ? Math.round(result.counts.processed / (result.durationMs / 1000)) : 0,
  etaSeconds: 0,
  startedAt: result.startedAt,
  updatedAt: result.endedAt,
  cancelRequested: result.status === 'cancelled',
});
