import { Readable } from 'node:stream';
import { z } from 'zod';
import type { Pool } from '../../db/pool';
import { replayQueries } from '../../db/replays';
import { ErrorCode } from '../../errors';
import { detectFormat, formats, mediaTypes } from '../../formats';
import { importParamsSchema, type ImportParams } from '../../jobs/import';
import { runIdSchema } from '../../jobs/run';
import { strictObject } from '../../jobs/strict';
import type { App } from '../app';
import { recordAudit } from '../audit';
import { actorOf } from '../auth';
import { ApiError, errorResponse, errorResponses } from '../errors';
import { formatOf, rejectedFile } from '../quarantine';
import type { RunService } from '../runs';
import { runIdParams } from './runs';

const replayBody = strictObject({
  /** The fixed file: an absolute path (or file://), s3://bucket/key, or store://key. */
  source: importParamsSchema.shape.source,
  /** From the file's extension, else the first run's format. */
  format: z.enum(formats).optional(),
  runId: runIdSchema.optional(),
}).meta({ examples: [{ source: 'store://uploads/2026-11-23/7c1d…/users-fixed.csv' }] });
const replayResponse = z.object({ runId: z.string(), replayOf: z.string(), existing: z.boolean() });
const replayExample = { runId: 'import-users-fixed', replayOf: 'import-users', existing: false };
const replayStarted = replayResponse.meta({ examples: [replayExample] }).describe('The replay started');
const replayExisting = replayResponse.meta({ examples: [{ ...replayExample, existing: true }] }).describe('A run with this runId and these params already exists: it is returned');

/** The import a route is about: its params, or a 409 when the run is not an import. */
async function importOf(runs: RunService, runId: string): Promise<{ params: ImportParams; running: boolean }> {
  const started = await runs.startedAs(runId);
  if (started.kind !== 'import') throw new ApiError(409, 'NOT_AN_IMPORT', `run "${runId}" is a ${started.kind ?? 'run of another kind'}: only imports have input rows`);
  return { params: importParamsSchema.parse(started.params), running: started.running };
}

export function quarantineRoutes(app: App, deps: { runs: RunService; pool: Pool }): void {
  const { runs, pool } = deps;

  app.get(
    '/runs/:id/rejected',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['runs'],
        summary: "An import's rejected rows as a file in the input's format and columns, with their row as _row: fix it, then replay it",
        params: runIdParams,
        response: {
          200: {
            description: 'The rejected rows: CSV (the input delimiter), NDJSON or a JSON array, as the input was',
            content: {
              'text/csv': { schema: z.string().meta({ examples: ['email,name,_row\nnot-an-email,Ann,3\n'] }) },
              'application/x-ndjson': { schema: z.string().meta({ examples: ['{"email":"not-an-email","name":"Ann","_row":3}\n'] }) },
              'application/json': { schema: z.string().meta({ examples: ['[{"email":"not-an-email","name":"Ann","_row":3}]'] }) },
            },
          },
          409: errorResponse('The run is not an import'),
          ...errorResponses,
        },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const { params } = await importOf(runs, id);
      const format = formatOf(params);
      reply.header('content-type', mediaTypes[format]);
      reply.header('content-disposition', `attachment; filename="${id}-rejected.${format}"`);
      // Streamed: the spec documents the body as the text it is.
      // The rejected rows of the run's current (or last) execution, not those of an earlier run of the same id.
      const execution = await runs.execution(id);
      return reply.send(Readable.from(rejectedFile(pool, execution, params)) as unknown as string);
    },
  );

  app.post(
    '/runs/:id/replay',
    {
      config: { scope: 'run' },
      schema: {
        tags: ['runs'],
        summary: "Import a fixed file of an import's rejected rows as a new run linked to it",
        description: "The new run has the first run's params (dataset, mode, mapping, …) with the fixed file as source. Each accepted row's _row names the row it fixes; the first run's view counts them (replays.acceptedLater).",
        params: runIdParams,
        body: replayBody,
        response: { 200: replayExisting, 202: replayStarted, 409: errorResponse('The run is not an import, or is still running'), ...errorResponses },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const { params, running } = await importOf(runs, id);
      if (running) throw new ApiError(409, ErrorCode.InvalidParams, `run "${id}" is still running: replay its rejected rows once it has finished`);
      // A replay of a replay fixes rows of the first run: its _row numbers are that run's.
      const replayOf = params.replayOf ?? id;
      const { source, format, runId } = request.body;
      // Without a format or a telling extension (a store:// upload), the file is read as the first run's was.
      const replay: ImportParams = { ...params, source, format: format ?? (detectFormat(source) ? undefined : formatOf(params)), replayOf };
      const actor = actorOf(request);
      const started = await runs.start('import', replay, { runId, startedBy: actor.name });
      // Linked by execution: the rows fixed are those of the run this id names now, credited to this replay's execution.
      await replayQueries.recordReplay(pool, { id, execution: await runs.execution(id) }, { id: started.runId, execution: await runs.execution(started.runId) });
      if (!started.existing) await recordAudit(pool, actor, 'start', { runId: started.runId, details: { kind: 'import', replayOf } });
      return reply.status(started.existing ? 200 : 202).send({ ...started, replayOf });
    },
  );
}
