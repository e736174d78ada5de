import { z } from 'zod';
import type { Pool } from '../../db/pool';
import { strictObject } from '../../jobs/strict';
import type { App } from '../app';
import { actorOf } from '../auth';
import { errorResponses, notFound } from '../errors';
import { apiKeyExample, createKey, keyInfoSchema, keyNameSchema, keyScopesSchema, listKeys, revokeKey } from '../keys';

const createBody = strictObject({ name: keyNameSchema.describe('Who or what uses the key: runs it starts name it'), scopes: keyScopesSchema.describe('What it may do: read, run, approve, admin') }).meta({
  examples: [{ name: 'etl-nightly', scopes: ['read', 'run'] }],
});
const listQuery = strictObject({ revoked: z.enum(['true', 'false']).default('false').describe('true: revoked keys too') });
const keyIdParams = strictObject({ id: z.string().regex(/^[0-9a-f]{16}$/, 'must be a key id (16 hex digits)').describe('The key id (16 hex digits)') });
const createdKey = keyInfoSchema
  .extend({ key: z.string().describe('The key itself: shown this once') })
  .describe('Created')
  .meta({ examples: [{ ...apiKeyExample, lastUsedAt: null, key: 'bf_3f9a1c2b7d4e5f60_2hYkq0Vb9sX3mNw7rT1uLpE4cZ8aD6fGjH5iK2oQ9vW' }] });

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
        response: { 201: createdKey, ...errorResponses },
      },
    },
    async (request, reply) => reply.status(201).send(await createKey(pool, actorOf(request), request.body)),
  );

  app.get(
    '/keys',
    { config: { scope: 'admin' }, schema: { tags: ['keys'], summary: 'List API keys (never their secrets)', querystring: listQuery, response: { 200: z.object({ keys: z.array(keyInfoSchema) }).describe('The keys').meta({ examples: [{ keys: [apiKeyExample] }] }), ...errorResponses } } },
    async (request) => ({ keys: await listKeys(pool, { includeRevoked: request.query.revoked === 'true' }) }),
  );

  app.delete(
    '/keys/:id',
    { config: { scope: 'admin' }, schema: { tags: ['keys'], summary: 'Revoke an API key: its next request is a 401', params: keyIdParams, response: { 200: keyInfoSchema.describe('Revoked'), ...errorResponses } } },
    async (request) => {
      const key = await revokeKey(pool, actorOf(request), request.params.id);
      if (!key) throw notFound(`key ${request.params.id}`);
      return key;
    },
  );
}
