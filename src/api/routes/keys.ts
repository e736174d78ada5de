import { z } from 'zod';
import type { Pool } from '../../db/pool';
import { strictObject } from '../../jobs/strict';
import type { App } from '../app';
import { actorOf } from '../auth';
import { errorResponses, notFound } from '../errors';
import { createKey, keyInfoSchema, keyNameSchema, keyScopesSchema, listKeys, revokeKey } from '../keys';

const createBody = strictObject({ name: keyNameSchema, scopes: keyScopesSchema });
const listQuery = strictObject({ revoked: z.enum(['true', 'false']).default('false') });
const keyIdParams = strictObject({ id: z.string().regex(/^[0-9a-f]{16}$/, 'must be a key id (16 hex digits)') });

/** API keys, for admins: create (the key is shown once), list, revoke. */
export function keyRoutes(app: App, deps: { pool: Pool }): void {
  const { pool } = deps;

  app.post(
    '/keys',
    {
      config: { scope: 'admin' },
      schema: {
        tags: ['keys'],
        summary: 'Create an API key',
        description: 'Answers the key once, as `key`; only its hash is stored.',
        body: createBody,
        response: { 201: keyInfoSchema.extend({ key: z.string() }), ...errorResponses },
      },
    },
    async (request, reply) => reply.status(201).send(await createKey(pool, actorOf(request), request.body)),
  );

  app.get(
    '/keys',
    { config: { scope: 'admin' }, schema: { tags: ['keys'], summary: 'List API keys (never their secrets)', querystring: listQuery, response: { 200: z.object({ keys: z.array(keyInfoSchema) }), ...errorResponses } } },
    async (request) => ({ keys: await listKeys(pool, { includeRevoked: request.query.revoked === 'true' }) }),
  );

  app.delete(
    '/keys/:id',
    { config: { scope: 'admin' }, schema: { tags: ['keys'], summary: 'Revoke an API key: its next request is a 401', params: keyIdParams, response: { 200: keyInfoSchema, ...errorResponses } } },
    async (request) => {
      const key = await revokeKey(pool, actorOf(request), request.params.id);
      if (!key) throw notFound(`key ${request.params.id}`);
      return key;
    },
  );
}
