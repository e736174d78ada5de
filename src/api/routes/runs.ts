import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { stringify } from 'csv-stringify/sync';
import { z } from 'zod';
import type { DatasetRegistry } from '../../datasets';
import { strictObject } from '../../jobs/strict';
import type { Pool } from '../../db/pool';
import { runState } from '../../db/queries';
import { rowQueries, sortedDistinct } from '../../db/rows';
import { INLINE_IDS_MAX } from '../../jobs/bulk-update';
import { AWAITING_APPROVAL } from '../../workflows/approval';
import { jobKindNames, jobKinds, type JobKind, type JobKindName } from '../../jobs';
import type { PipelineStep } from '../../jobs/pipeline';
import { rowErrorSchema, runIdSchema, runListItemSchema, runStatusSchema } from '../../jobs/run';
import type { App } from '../app';
import { recordAudit } from '../audit';
import { actorOf } from '../auth';
import { ApiError, errorResponses, errorSchema, invalid } from '../errors';
import { keyNameSchema } from '../keys';
import { replaysOf } from '../quarantine';
import { runViewSchema, type RunService } from '../runs';

/** One body shape per kind, so a bad param is named as `params.<field>` and unknown keys are refused. */
const startBody = z.discriminatedUnion(
  'kind',
  jobKindNames.map((kind) => strictObject({ kind: z.literal(kind), params: jobKinds[kind].schema, runId: runIdSchema.optional() })) as unknown as [StartBody, ...StartBody[]],
);
type StartBody = z.ZodObject<{ kind: z.ZodLiteral<JobKindName>; params: z.ZodType; runId: z.ZodOptional<typeof runIdSchema> }, z.core.$strict>;
export const runIdParams = strictObject({ id: runIdSchema });
const errorsQuery = strictObject({
  after: z.coerce.number().int().min(0).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  format: z.enum(['json', 'csv', 'ndjson']).default('json'),
});
const listQuery = strictObject({
  kind: z.enum(jobKindNames).optional(),
  dataset: z.string().regex(/^[a-z][a-z0-9_]{0,62}$/, 'must be a dataset name').optional(),
  status: z.union([runStatusSchema, z.literal(AWAITING_APPROVAL)]).optional(),
  /** Runs a schedule started. */
  scheduleId: z.string().max(200).optional(),
  /** The name of the key that started the runs. */
  startedBy: keyNameSchema.optional(),
  limit: z.coerce.number().int().min(1).max(500).default(50),
});
// A POST without a body reaches the schema as null.
const cancelBody = strictObject({ reason: z.string().max(500).optional() }).nullish();
// Who decides comes from the key, never from the body.
const decisionBodies = {
  approve: strictObject({ comment: z.string().max(2000).optional() }).nullish(),
  reject: strictObject({ reason: z.string().max(2000).optional() }).nullish(),
};

const startedResponse = z.object({ runId: z.string(), existing: z.boolean() });
const listResponse = z.object({ runs: z.array(runListItemSchema) });
const errorsPage = z.object({ runId: z.string(), errors: z.array(rowErrorSchema.extend({ id: z.number().int() })), next: z.string().nullable() });

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
        response: { 200: startedResponse, 202: startedResponse, 409: errorSchema, ...errorResponses },
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
      const started = await runs.start(kind, await storeLongIdLists(pool, kind, params), { runId, startedBy: actor.name });
      if (!started.existing) await recordAudit(pool, actor, 'start', { runId: started.runId, details: { kind } });
      return reply.status(started.existing ? 200 : 202).send(started);
    },
  );

  app.get(
    '/runs',
    { config: { scope: 'read' }, schema: { tags: ['runs'], summary: 'List runs (Temporal visibility)', querystring: listQuery, response: { 200: listResponse, ...errorResponses } } },
    async (request) => ({ runs: await runs.list(request.query) }),
  );

  app.get(
    '/runs/:id',
    { config: { scope: 'read' }, schema: { tags: ['runs'], summary: 'A run: status, progress and result', params: runIdParams, response: { 200: runViewSchema, ...errorResponses } } },
    async (request) => {
      const view = await runs.get(request.params.id);
      const replays = await replaysOf(pool, view);
      return replays ? { ...view, replays } : view;
    },
  );

  app.post(
    '/runs/:id/cancel',
    {
      config: { scope: 'run' },
      schema: { tags: ['runs'], summary: 'Stop a run after its current batch', params: runIdParams, body: cancelBody, response: { 202: z.object({ runId: z.string(), cancelRequested: z.literal(true) }), 409: errorSchema, ...errorResponses } },
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
          response: { 202: z.object({ runId: z.string(), decision: z.enum(['approve', 'reject']) }), 409: errorSchema, 503: errorSchema, ...errorResponses },
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
            content: { 'application/json': { schema: errorsPage }, 'text/csv': { schema: z.string() }, 'application/x-ndjson': { schema: z.string() } },
          },
          ...errorResponses,
        },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const query = request.query;
      await runs.assertExists(id);
      if (query.format === 'json') {
        const errors = await runState.listErrors(pool, id, query);
        const last = errors.at(-1);
        return { runId: id, errors, next: errors.length === query.limit && last ? `/runs/${encodeURIComponent(id)}/errors?after=${last.id}&limit=${query.limit}` : null };
      }
      reply.header('content-type', query.format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson');
      reply.header('content-disposition', `attachment; filename="${id}-errors.${query.format}"`);
      // Streamed: the spec documents the body as the text it is.
      return reply.send(Readable.from(exportErrors(pool, id, query.format)) as unknown as string);
    },
  );
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

async function* exportErrors(pool: Pool, runId: string, format: 'csv' | 'ndjson'): AsyncGenerator<string> {
  if (format === 'csv') yield stringify([['row', 'line', 'field', 'code', 'message', 'raw']]);
  for (let after = 0; ; ) {
    const page = await runState.listErrors(pool, runId, { after, limit: EXPORT_PAGE });
    if (page.length === 0) return;
    yield format === 'csv'
      ? stringify(page.map((e) => [e.row, e.line, e.field, e.code, e.message, JSON.stringify(e.raw)]), { cast: { number: String } })
      : page.map(({ id: _id, ...e }) => JSON.stringify(e)).join('\n') + '\n';
    after = page.at(-1)!.id;
  }
}
