import { z } from 'zod';
import { formats, type Format } from '../../formats';
import { runIdSchema } from '../../jobs/run';
import type { ObjectStore } from '../../storage';
import type { App } from '../app';
import { ApiError, errorResponses } from '../errors';
import { contentTypes } from '../quarantine';
import type { RunService } from '../runs';

const outputParams = z.strictObject({ id: runIdSchema, index: z.coerce.number().int().min(0).max(100) });

/** GET /runs/:id/outputs/:index: a file a run wrote to the object store (a dedupe's report), streamed. */
export function outputRoutes(app: App, deps: { runs: RunService; store: ObjectStore }): void {
  app.get(
    '/runs/:id/outputs/:index',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['runs'],
        summary: "A file a run wrote (result.outputs[index]), such as a dedupe's report",
        params: outputParams,
        response: { 200: { description: 'The file as stored', content: { 'application/octet-stream': { schema: z.string() } } }, ...errorResponses },
      },
    },
    async (request, reply) => {
      const { id, index } = request.params;
      const uri = (await deps.runs.get(id)).result?.outputs[index];
      if (!uri?.startsWith('store://')) throw new ApiError(404, 'NOT_FOUND', `run "${id}" has no output ${index}`);
      const key = uri.slice('store://'.length);
      const opened = await deps.store.open(key);
      const name = key.split('/').at(-1)!;
      const ext = name.split('.').at(-1) as Format;
      reply.header('content-type', formats.includes(ext) ? contentTypes[ext] : 'application/octet-stream');
      reply.header('content-disposition', `attachment; filename="${id}-${name}"`);
      reply.header('content-length', opened.size);
      return reply.send(opened.stream as unknown as string);
    },
  );
}
