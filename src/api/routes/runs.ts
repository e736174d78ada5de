import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { stringify } from 'csv-stringify/sync';
import { z } from 'zod';
import type { DatasetRegistry } from '../../datasets';
import { strictObject } from '../../jobs/strict';
import type { Pool } from '../../db/pool';
import { runState } from '../../db/queries';
import { rowQueries, sortedDistinct } from '../../db/row-queries';
import { INLINE_IDS_MAX } from '../../jobs/bulk-update';
import { jobKindNames, jobKinds, type JobKind, type JobKindName } from '../../jobs';
import type { PipelineStep } from '../../jobs/pipeline';
import { rowErrorSchema, runIdSchema, runListItemSchema } from '../../jobs/run';
import { runFilterSchema } from '../../visibility';
import type { App } from '../app';
import { ErrorCode } from '../../errors';
import { recordAudit } from '../audit';
import { actorOf } from '../auth';
import { ApiError, errorResponse, errorResponses, invalid } from '../errors';
import { keyNameSchema } from '../keys';
import { replaysOf } from '../quarantine';
import { runViewSchema, type RunService } from '../runs';

/** One body shape per kind, so a bad param is named as `params.<field>` and unknown keys are refused. */
const startBody = z
  .discriminatedUnion(
    'kind',
    jobKindNames.map((kind) =>
      strictObject({
        kind: z.literal(kind).describe(jobKinds[kind].description),
        params: jobKinds[kind].schema,
        runId: runIdSchema.optional().describe('Your id for the run: starting the same id again returns that run instead of a second one'),
      }),
    ) as unknown as [StartBody, ...StartBody[]],
  )
  .meta({
    examples: [{ kind: 'import', runId: 'users-2026-11-23', params: { source: '/srv/imports/users.csv', dataset: 'users', mode: 'upsert' } }],
  });
type StartBody = z.ZodObject<{ kind: z.ZodLiteral<JobKindName>; params: z.ZodType; runId: z.ZodOptional<typeof runIdSchema> }, z.core.$strict>;
export const runIdParams = strictObject({ id: runIdSchema.describe('The run id (its Temporal workflow id)') });
const errorsQuery = strictObject({
  after: z.coerce.number().int().min(0).optional().describe('The id of the last error seen: the page starts after it'),
  limit: z.coerce.number().int().min(1).max(1000).default(100).describe('Errors per page (JSON)'),
  format: z.enum(['json', 'csv', 'ndjson']).default('json').describe('json: a page; csv or ndjson: the whole report as a download'),
});
const listQuery = strictObject({
  ...runFilterSchema.shape,
  startedBy: keyNameSchema.optional().describe('Only runs started with the API key of this name'),
  limit: z.coerce.number().int().min(1).max(1000).default(50).describe('Runs per page'),
  pageToken: z
    .string()
    .max(4096)
    .regex(/^[A-Za-z0-9_-]+$/, 'must be a nextPageToken from a previous page')
    .optional()
    .describe('The nextPageToken of the previous page, with the same filters'),
});
// A POST without a body reaches the schema as null.
const cancelBody = strictObject({ reason: z.string().max(500).optional().describe('Why, for the record') })
  .nullish()
  .meta({ examples: [{ reason: 'wrong file' }] });
// Who decides comes from the key, never from the body.
const decisionBodies = {
  approve: strictObject({ comment: z.string().max(2000).optional().describe('A note for the record') })
    .nullish()
    .meta({ examples: [{ comment: 'checked the preview: 312 pending users' }] }),
  reject: strictObject({ reason: z.string().max(2000).optional().describe('Why') })
    .nullish()
    .meta({ examples: [{ reason: 'wrong prefix' }] }),
};

const startedResponse = z.object({ runId: z.string(), existing: z.boolean().describe('true when a run with this runId and the same params already existed') });
const listResponse = z
  .object({
    runs: z.array(runListItemSchema),
    nextPageToken: z.string().nullable().describe('Pass it as pageToken (with the same filters) for the next page; null on the last page'),
  })
  .describe('A page of runs')
  .meta({
    examples: [
      {
        runs: [{ runId: 'users-2026-11-23', kind: 'import', dataset: 'users', status: 'partial', startTime: '2026-11-23T08:00:00.000Z', closeTime: '2026-11-23T08:00:04.512Z' }],
        nextPageToken: 'CgwI0Ofq0gYQgMnvsAES',
      },
    ],
  });
const errorsPage = z
  .object({
    runId: z.string(),
    errors: z.array(rowErrorSchema.extend({ id: z.number().int().describe('Pass the last one as `after` for the next page') })),
    next: z.string().nullable().describe('The URL of the next page; null on the last one'),
  })
  .meta({
    examples: [
      {
        runId: 'users-2026-11-23',
        errors: [{ id: 41, row: 3, line: 4, field: 'email', code: 'VALIDATION_FAILED', message: 'must be a valid email address', raw: { email: 'not-an-email', name: 'Ann' } }],
        next: null,
      },
    ],
  });

const EXPORT_PAGE = 5_000;

export function runRoutes(app: App, deps: { runs: RunService; pool: Pool; datasets: DatasetRegistry }): void {
  const { runs, pool, datasets } = deps;

  app.post(
    '/runs',
    {
      config: { scope: 'run' },
      schema: {
        tags: ['runs'],
        summary: 'Start a run',
        description: 'Starts a run of a job kind. The same runId again returns that run (200); with other params it is a 409.',
        body: startBody,
        response: {
          200: startedResponse.describe('A run with this runId and the same params exists: this is it').meta({ examples: [{ runId: 'users-2026-11-23', existing: true }] }),
          202: startedResponse.describe('Started').meta({ examples: [{ runId: 'users-2026-11-23', existing: false }] }),
          409: errorResponse('The runId is taken by a run with another kind or other params'),
          ...errorResponses,
        },
      },
    },
    async (request, reply) => {
      const { kind, params, runId } = request.body;
      const actor = actorOf(request);
      const kindOf = jobKinds[kind] as JobKind;
      const issues = kindOf.check(params, datasets);
      if (issues.length > 0) throw invalid(issues.map((i) => ({ field: ['params', ...i.path].join('.'), message: i.message })));
      const adminOnly = kindOf.adminOnly?.(params);
      if (adminOnly && !request.caller?.scopes.includes('admin')) throw new ApiError(403, 'FORBIDDEN', `params.${adminOnly} needs a caller with the admin scope`, `params.${adminOnly}`);
      const stored = await storeLongIdLists(pool, kind, params);
      refuseLargeParams(stored);
      const started = await runs.start(kind, stored, { runId, startedBy: actor.name });
      request.log.info({ runId: started.runId, kind, existing: started.existing }, started.existing ? 'run exists' : 'run started');
      if (!started.existing) await recordAudit(pool, actor, 'start', { runId: started.runId, details: { kind } });
      return reply.status(started.existing ? 200 : 202).send(started);
    },
  );

  app.get(
    '/runs',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['runs'],
        summary: 'List runs, a page at a time',
        description:
          "Runs from Temporal's visibility, filtered by kind, dataset, status, who started them and when they started. Follow nextPageToken for the next page. Visibility is eventually consistent: a run appears, and its status changes, a moment after it happens.",
        querystring: listQuery,
        response: { 200: listResponse, ...errorResponses },
      },
    },
    async (request) => {
      const { limit, pageToken, ...filter } = request.query;
      return runs.list(filter, { pageSize: limit, pageToken });
    },
  );

  app.get(
    '/runs/:id',
    {
      config: { scope: 'read' },
      schema: { tags: ['runs'], summary: 'A run: status, progress and result', params: runIdParams, response: { 200: runViewSchema.describe('The run as it stands'), ...errorResponses } },
    },
    async (request) => {
      const view = await runs.get(request.params.id);
      const replays = await replaysOf(pool, runs, view);
      return replays ? { ...view, replays } : view;
    },
  );

  app.post(
    '/runs/:id/cancel',
    {
      config: { scope: 'run' },
      schema: {
        tags: ['runs'],
        summary: 'Stop a run after its current batch',
        params: runIdParams,
        body: cancelBody,
        response: {
          202: z
            .object({ runId: z.string(), cancelRequested: z.literal(true) })
            .describe('Asked: the run stops after its current batch and ends cancelled, with its counts so far')
            .meta({ examples: [{ runId: 'users-2026-11-23', cancelRequested: true }] }),
          409: errorResponse('The run has already finished'),
          ...errorResponses,
        },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const reason = request.body?.reason;
      await runs.cancel(id, reason);
      await recordAudit(pool, actorOf(request), 'cancel', { runId: id, ...(reason && { details: { reason } }) });
      return reply.status(202).send({ runId: id, cancelRequested: true as const });
    },
  );

  for (const decision of ['approve', 'reject'] as const) {
    app.post(
      `/runs/:id/${decision}`,
      {
        config: { scope: 'approve' },
        schema: {
          tags: ['runs'],
          summary: decision === 'approve' ? 'Let a run that awaits approval go ahead' : 'End a run that awaits approval, changing nothing',
          params: runIdParams,
          description: 'The decision is made by the key; a run may not be approved by the key name that started it, unless BATCHFLOW_ALLOW_SELF_APPROVAL=true.',
          body: decisionBodies[decision],
          response: {
            202: z
              .object({ runId: z.string(), decision: z.enum(['approve', 'reject']) })
              .describe('The decision reached the run')
              .meta({ examples: [{ runId: 'deactivate-pending-2026-11-22', decision }] }),
            409: errorResponse('The run is not awaiting approval'),
            503: errorResponse('The run did not answer: no worker is running'),
            ...errorResponses,
          },
        },
      },
      async (request, reply) => {
        const { id } = request.params;
        const actor = actorOf(request);
        const note = request.body ?? {};
        await runs.decide(id, decision, { ...note, by: actor.name });
        await recordAudit(pool, actor, decision, { runId: id, ...(Object.keys(note).length > 0 && { details: note }) });
        return reply.status(202).send({ runId: id, decision });
      },
    );
  }

  // Row errors: a page as JSON (`after` is the last id seen), or the whole report as CSV or NDJSON.
  app.get(
    '/runs/:id/errors',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['runs'],
        summary: "A page of a run's row errors, or the whole report as CSV or NDJSON",
        params: runIdParams,
        querystring: errorsQuery,
        response: {
          200: {
            description: 'A page (JSON) or the whole report (format=csv|ndjson)',
            content: {
              'application/json': { schema: errorsPage },
              'text/csv': { schema: z.string().meta({ examples: ['row,line,field,code,message,raw\n3,4,email,VALIDATION_FAILED,must be a valid email address,"{""email"":""not-an-email""}"\n'] }) },
              'application/x-ndjson': {
                schema: z.string().meta({ examples: ['{"row":3,"line":4,"field":"email","code":"VALIDATION_FAILED","message":"must be a valid email address","raw":{"email":"not-an-email"}}\n'] }),
              },
            },
          },
          ...errorResponses,
        },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const query = request.query;
      // The errors of the run's current (or last) execution, not those of an earlier run of the same id.
      const execution = await runs.execution(id);
      if (query.format === 'json') {
        const errors = await runState.listErrors(pool, execution, query);
        const last = errors.at(-1);
        return { runId: id, errors, next: errors.length === query.limit && last ? `/runs/${encodeURIComponent(id)}/errors?after=${last.id}&limit=${query.limit}` : null };
      }
      reply.header('content-type', query.format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson');
      reply.header('content-disposition', `attachment; filename="${id}-errors.${query.format}"`);
      // Streamed: the spec documents the body as the text it is.
      return reply.send(Readable.from(exportErrors(pool, execution, query.format)) as unknown as string);
    },
  );
}

/**
 * Params travel in workflow history (the run's input, its continue-as-new and child runs): past
 * this size, once long id lists are stored apart, they are refused before the run starts.
 */
const MAX_PARAMS_BYTES = 1024 * 1024;

function refuseLargeParams(params: unknown): void {
  const bytes = Buffer.byteLength(JSON.stringify(params));
  if (bytes > MAX_PARAMS_BYTES) {
    throw new ApiError(400, ErrorCode.ParamsTooLarge, `params are ${bytes} bytes as JSON, more than ${MAX_PARAMS_BYTES} (1 MiB); pass long inputs as a file or a stored id list`, 'params');
  }
}

/** Keeps long id lists out of workflow history, a pipeline's bulk-update steps' included. */
async function storeLongIdLists<P>(pool: Pool, kind: JobKindName, params: P): Promise<P> {
  if (kind !== 'pipeline') return storeLongIdList(pool, params);
  const { steps } = params as { steps: PipelineStep[] };
  return { ...params, steps: await Promise.all(steps.map(async (step) => (step.kind === 'bulk-update' ? { ...step, params: await storeLongIdList(pool, step.params) } : step))) };
}

/** A long id list, stored in Postgres and passed by the digest of the ids. */
async function storeLongIdList<P>(pool: Pool, params: P): Promise<P> {
  const ids = (params as { ids?: number[] }).ids;
  if (!ids || ids.length <= INLINE_IDS_MAX) return params;
  const distinct = sortedDistinct(ids);
  const listId = createHash('sha256').update(distinct.join(',')).digest('hex');
  await rowQueries.storeIdList(pool, listId, distinct);
  return { ...params, ids: undefined, idList: listId };
}

async function* exportErrors(pool: Pool, execution: string, format: 'csv' | 'ndjson'): AsyncGenerator<string> {
  if (format === 'csv') yield stringify([['row', 'line', 'field', 'code', 'message', 'raw']]);
  for (let after = 0; ; ) {
    const page = await runState.listErrors(pool, execution, { after, limit: EXPORT_PAGE });
    if (page.length === 0) return;
    yield format === 'csv'
      ? stringify(page.map((e) => [e.row, e.line, e.field, e.code, e.message, JSON.stringify(e.raw)]), { cast: { number: String } })
      : page.map(({ id: _id, ...e }) => JSON.stringify(e)).join('\n') + '\n';
    after = page.at(-1)!.id;
  }
}
