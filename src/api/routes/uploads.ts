import { createHash, randomUUID } from 'node:crypto';
import { Transform, type Readable } from 'node:stream';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Pool } from '../../db/pool';
import { strictObject } from '../../jobs/strict';
import type { ObjectStore } from '../../storage';
import type { App } from '../app';
import { recordAudit } from '../audit';
import { actorOf } from '../auth';
import { ApiError, errorResponse, errorResponses } from '../errors';

const uploadQuery = strictObject({
  filename: z.string().min(1).max(255).optional().describe("The file's name: kept (made safe) at the end of the object key, so the import can infer the format from its extension"),
});
const uploadResponse = z
  .object({
    source: z.string().describe('store://… : give it as an import source'),
    bytes: z.number().int(),
    sha256: z.string(),
  })
  .describe('Stored')
  .meta({ examples: [{ source: 'store://uploads/2026-11-23/5b0e…/users.csv', bytes: 65536, sha256: '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08' }] });

/** A name safe as the last part of an object key: letters, digits, ".", "_" and "-", no leading dot. */
export function safeFileName(name: string): string {
  const base = name.split(/[\\/]/).pop() ?? '';
  return base.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '').slice(-100) || 'upload';
}

const tooLarge = (max: number) => new ApiError(413, 'UPLOAD_TOO_LARGE', `the file is larger than the upload limit of ${max} bytes (BATCHFLOW_UPLOAD_MAX_BYTES)`);

/**
 * POST /uploads: the request body is the file itself, any content type, streamed into the object
 * store (never held in memory) while its bytes are counted and hashed. Past the size limit the
 * upload stops with a 413 and nothing is kept.
 */
export function uploadRoutes(app: App, deps: { pool: Pool; store: ObjectStore; maxBytes: number }): void {
  const { pool, store, maxBytes } = deps;
  void app.register((scope, _opts, done) => {
    // In this scope only: every body is a stream, not parsed (curl --data-binary sends form encoding).
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (_request, payload, parsed) => parsed(null, payload));
    scope.withTypeProvider<ZodTypeProvider>().post(
      '/uploads',
      {
        config: { scope: 'run' },
        schema: {
          tags: ['uploads'],
          summary: 'Upload a file to import: the body is the file',
          description: 'Streams the request body into the object store and answers its store:// source, byte count and SHA-256. Larger than BATCHFLOW_UPLOAD_MAX_BYTES: 413.',
          querystring: uploadQuery,
          response: { 201: uploadResponse, ...errorResponses, 413: errorResponse('Larger than BATCHFLOW_UPLOAD_MAX_BYTES') },
        },
      },
      async (request, reply) => {
        if (Number(request.headers['content-length']) > maxBytes) throw tooLarge(maxBytes);
        const body = request.body as Readable | undefined;
        if (!body) throw new ApiError(400, 'INVALID_REQUEST', 'send the file as the request body, e.g. curl --data-binary @users.csv');
        const fileName = safeFileName(request.query.filename ?? 'upload');
        const key = `uploads/${new Date().toISOString().slice(0, 10)}/${randomUUID()}/${fileName}`;
        const hash = createHash('sha256');
        let bytes = 0;
        const meter = new Transform({
          transform(chunk: Buffer, _encoding, next) {
            bytes += chunk.length;
            if (bytes > maxBytes) return next(tooLarge(maxBytes));
            hash.update(chunk);
            next(null, chunk);
          },
        });
        // The store reads the meter and gets its errors (over the limit, a dropped client). The
        // request is not destroyed with them: the caller is still to get the 413.
        body.once('error', (err) => meter.destroy(err));
        meter.once('error', () => body.unpipe(meter));
        const stored = await store.put(key, body.pipe(meter));
        const sha256 = hash.digest('hex');
        await recordAudit(pool, actorOf(request), 'upload', { details: { source: stored.uri, bytes, sha256, ...(request.query.filename && { filename: request.query.filename }) } });
        return reply.status(201).send({ source: stored.uri, bytes, sha256 });
      },
    );
    done();
  });
}
