import path from 'node:path';
import { z } from 'zod';
import { ApplicationFailure } from '@temporalio/common';
import { locateObject, type ObjectAccess } from '../../storage';
import { attachment, DOWNLOAD_URL_SECONDS, openDownload } from '../../storage/downloads';
import type { App } from '../app';
import { ApiError, errorResponse, errorResponses } from '../errors';
import type { RunService } from '../runs';
import { runIdParams } from './runs';

const downloadQuery = z.strictObject({
  redirect: z.enum(['true', 'false']).default('true').describe('On S3: false streams the file through the API instead of redirecting to S3 (for clients that cannot reach it)'),
  output: z.coerce.number().int().min(0).max(100).default(0).describe("Which of the run's files, for runs that wrote several (a report's CSV and HTML): its index in result.outputs"),
});

export function downloadRoutes(app: App, deps: { runs: RunService; objects: ObjectAccess }): void {
  app.get(
    '/runs/:id/download',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['runs'],
        summary: "Download a file a run wrote (an export's file, a report's CSV or HTML)",
        description: `The file an export wrote. From the local object store the API streams it; on S3 it answers 302 with a presigned URL valid for ${DOWNLOAD_URL_SECONDS} s, or streams it with redirect=false.`,
        params: runIdParams,
        querystring: downloadQuery,
        response: {
          200: { description: 'The file, with its own content type (text/csv, application/x-ndjson, application/gzip, text/html…)', content: { '*/*': { schema: z.string().meta({ examples: ['email,name\nann@example.com,Ann\n'] }) } } },
          302: z.null().describe('Redirect: a presigned S3 URL in the Location header'),
          409: errorResponse('The run is still running'),
          ...errorResponses,
        },
      },
    },
    async (request, reply) => {
      const { id } = request.params;
      const run = await deps.runs.get(id);
      if (run.status === 'running') throw new ApiError(409, 'RUN_NOT_FINISHED', `run "${id}" is still running; its file appears when it ends`);
      const output = run.result?.outputs[request.query.output];
      if (!output) throw new ApiError(404, 'NOT_FOUND', `run "${id}" has no file to download${run.status === 'success' ? '' : ` (it ended ${run.status})`}`);
      let ref;
      try {
        ref = locateObject(deps.objects, output.location);
      } catch (err) {
        // A location this API may not read (S3 no longer configured, a bucket no longer allowed).
        if (err instanceof ApplicationFailure) throw new ApiError(404, 'NOT_FOUND', `${output.location}: ${err.message}`);
        throw err;
      }
      const filename = path.posix.basename(ref.key);
      const download = await openDownload(ref, { filename, contentType: output.contentType, redirect: request.query.redirect === 'true' });
      if (!download) throw new ApiError(404, 'NOT_FOUND', `${output.location} is no longer there`);
      if ('url' in download) return reply.redirect(download.url, 302);
      return reply
        .header('content-type', output.contentType)
        .header('content-length', download.size)
        .header('content-disposition', attachment(filename))
        .send(download.stream as unknown as string);
    },
  );
}
