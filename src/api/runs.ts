import { randomUUID } from 'node:crypto';
import { WorkflowExecutionAlreadyStartedError, type Client } from '@temporalio/client';
import { defaultPayloadConverter, TypedSearchAttributes, WorkflowIdReusePolicy } from '@temporalio/common';
import { runFailure } from '../temporal';
import { scheduledBy, type JobKindName } from '../jobs';
import { runStartOptions } from '../jobs/start';
import { z } from 'zod';
import { progressSchema, runResultSchema, runStatusSchema, withRates, type Progress, type RunResult } from '../jobs/run';
import type { Checkpoint } from '../jobs/checkpoint';
import type { Pool } from '../db/pool';
import { runState } from '../db/queries';
import { AWAITING_APPROVAL, approveSignal, rejectSignal } from '../workflows/approval';
import { cancelSignal, progressQuery } from '../workflows/run-tracker';
import { BadPageTokenError, listRuns, listRunsPage, visibilityQuery, type RunFilter } from '../visibility';
import { ApiError } from './errors';

export const runViewSchema = z
  .object({
    runId: z.string(),
    kind: z.string().optional(),
    scheduleId: z.string().optional().describe('The schedule that started the run, if one did'),
    startedBy: z.string().optional().describe('The name of the API key that started it'),
    status: runStatusSchema,
    progress: progressSchema.nullable().describe('Counts, rate, ETA and step: live while it runs, final once it ended'),
    result: runResultSchema.nullable().describe('Set once the run ended'),
    error: z.object({ code: z.string(), message: z.string() }).optional().describe('Why a failed run failed'),
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


/** How long a progress query may take: it needs a worker, and without one the API answers without it. */
const QUERY_DEADLINE_MS = 5_000;

const memoString = (memo: Record<string, unknown> | undefined, key: string) => (typeof memo?.[key] === 'string' ? memo[key] : undefined);

/** Runs as the API sees them: started, read and stopped through Temporal. */
export function createRunService(client: Client, taskQueue: string, pool: Pool, opts: { allowSelfApproval?: boolean } = {}) {
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
      const view = (state: Omit<RunView, 'runId' | 'kind' | 'scheduleId' | 'startedBy'>): RunView => ({
        runId,
        kind,
        ...(scheduleId && { scheduleId }),
        ...(startedBy && { startedBy }),
        ...state,
      });
      switch (description.status.name) {
        case 'RUNNING': {
          // A query needs a worker; without one answer the state without progress rather than hang.
          const progress = await client.withDeadline(Date.now() + QUERY_DEADLINE_MS, () => handle.query(progressQuery)).catch(() => null);
          return view({ status: 'running', progress: progress && (await withLiveCounts(pool, runId, progress)), result: null });
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
          return view({ status: 'failed', progress: null, result: null, error: { code: description.status.name, message: `the run was ${description.status.name.toLowerCase().replace(/_/g, ' ')}` } });
      }
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

    /** Throws WorkflowNotFoundError (a 404) unless the run exists. */
    async assertExists(runId: string): Promise<void> {
      await client.workflow.getHandle(runId).describe();
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
 * every batch. While batches run, the row's counts are the fresher ones.
 */
async function withLiveCounts(pool: Pool, runId: string, progress: Progress): Promise<Progress> {
  if (progress.preview || progress.steps) return progress;
  const stored = await runState.readCheckpoint<Checkpoint<unknown>>(pool, runId);
  const live = stored?.checkpoint;
  if (!live?.counts || live.counts.processed <= progress.counts.processed) return progress;
  const counts = { ...live.counts, ...(progress.counts.total !== undefined && { total: progress.counts.total }) };
  return { ...progress, ...withRates({ ...progress, counts, bytesRead: live.bytesRead, bytesTotal: live.bytesTotal ?? progress.bytesTotal }, Date.now()) };
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
