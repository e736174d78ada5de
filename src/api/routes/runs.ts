import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { stringify } from 'csv-stringify/sync';
import { z } from 'zod';
import type { Pool } from '../../db/pool';
import { runState } from '../../db/queries';
import { rowQueries, sortedDistinct } from '../../db/rows';
import { INLINE_IDS_MAX } from '../../jobs/bulk-update';
import { AWAITING_APPROVAL } from '../../workflows/approval';
import { jobKindNames, jobKinds, type JobKindName } from '../../jobs';
import type { PipelineStep } from '../../jobs/pipeline';
import { runIdSchema, runStatusSchema } from '../../jobs/run';
import { parseRequest } from '../errors';
import type { RunService } from '../runs';

const startBody = z.object({
  kind: z.enum(jobKindNames),
  params: z.record(z.string(), z.unknown()),
  runId: runIdSchema.optional(),
});
const runIdParams = z.object({ id: runIdSchema });
const errorsQuery = z.object({
  after: z.coerce.number().int().min(0).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  format: z.enum(['json', 'csv', 'ndjson']).default('json'),
});
const listQuery = z.object({
  kind: z.enum(jobKindNames).optional(),
  dataset: z.string().max(100).optional(),
  status: z.union([runStatusSchema, z.literal(AWAITING_APPROVAL)]).optional(),
  limit: z.coerce.number().int().min(1).max(500).default(50),
});
const cancelBody = z.object({ reason: z.string().max(500).optional() }).optional();
const decisionBody = z
  .object({ by: z.string().max(200).optional(), comment: z.string().max(2000).optional(), reason: z.string().max(2000).optional() })
  .optional();

const EXPORT_PAGE = 5_000;

export function runRoutes(app: FastifyInstance, deps: { runs: RunService; pool: Pool }): void {
  const { runs, pool } = deps;

  app.post('/runs', async (request, reply) => {
    const body = parseRequest(startBody, request.body);
    const params = parseRequest(jobKinds[body.kind].schema, body.params, 'params');
    const started = await runs.start(body.kind, await storeLongIdLists(pool, body.kind, params), body.runId);
    return reply.status(started.existing ? 200 : 202).send(started);
  });

  app.get('/runs', async (request) => ({ runs: await runs.list(parseRequest(listQuery, request.query)) }));

  app.get('/runs/:id', async (request) => runs.get(parseRequest(runIdParams, request.params).id));

  app.post('/runs/:id/cancel', async (request, reply) => {
    const { id } = parseRequest(runIdParams, request.params);
    await runs.cancel(id, parseRequest(cancelBody, request.body)?.reason);
    return reply.status(202).send({ runId: id, cancelRequested: true });
  });

  for (const decision of ['approve', 'reject'] as const) {
    app.post(`/runs/:id/${decision}`, async (request, reply) => {
      const { id } = parseRequest(runIdParams, request.params);
      await runs.decide(id, decision, parseRequest(decisionBody, request.body) ?? {});
      return reply.status(202).send({ runId: id, decision });
    });
  }

  // Row errors: a page as JSON (`after` is the last id seen), or the whole report as CSV or NDJSON.
  app.get('/runs/:id/errors', async (request, reply) => {
    const { id } = parseRequest(runIdParams, request.params);
    const query = parseRequest(errorsQuery, request.query);
    await runs.assertExists(id);
    if (query.format === 'json') {
      const errors = await runState.listErrors(pool, id, query);
      const last = errors.at(-1);
      return { runId: id, errors, next: errors.length === query.limit && last ? `/runs/${encodeURIComponent(id)}/errors?after=${last.id}&limit=${query.limit}` : null };
    }
    reply.header('content-type', query.format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson');
    reply.header('content-disposition', `attachment; filename="${id}-errors.${query.format}"`);
    return reply.send(Readable.from(exportErrors(pool, id, query.format)));
  });
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
