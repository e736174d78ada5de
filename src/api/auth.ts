import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { apiKeyQueries } from '../db/auth';
import type { Pool } from '../db/pool';
import type { Actor } from './audit';
import { ApiError } from './errors';
import { allows, verifyKey, type Caller } from './keys';

declare module 'fastify' {
  interface FastifyRequest {
    /** The key the request was made with; set on every route but the public ones. */
    caller?: Caller;
  }
}

// The same answer whatever was wrong (no header, a malformed, unknown, revoked or wrong key).
const unauthorized = () => new ApiError(401, 'UNAUTHORIZED', 'a valid API key is required: Authorization: Bearer bf_<id>_<secret>');
// last_used_at is a hint for `keys list`, not a log: written at most this often per key.
const TOUCH_EVERY_MS = 60_000;

/**
 * Every route but the public ones needs `Authorization: Bearer <key>` with the route's scope
 * (`config.scope`): one hook for all of them. Then a rate limit per key (per client address on
 * public routes), answered with 429 and Retry-After.
 */
export function registerAuth(app: FastifyInstance, opts: { pool: Pool; rateLimitPerMinute: number }): void {
  const touched = new Map<string, number>();
  app.decorateRequest('caller', undefined);
  app.addHook('onRequest', async (request, reply) => {
    // Unknown routes have no scope: they need a key too, so that they say nothing to strangers.
    const scope = request.routeOptions.config?.scope;
    if (scope === 'public') return;
    const header = request.headers.authorization;
    const caller = header?.startsWith('Bearer ') ? await verifyKey(opts.pool, header.slice('Bearer '.length).trim()) : undefined;
    if (!caller) {
      void reply.header('www-authenticate', 'Bearer');
      throw unauthorized();
    }
    request.caller = caller;
    if (scope && !allows(caller, scope)) throw new ApiError(403, 'FORBIDDEN', `key "${caller.name}" lacks the "${scope}" scope this needs (it has ${caller.scopes.join(', ')})`);
    if (Date.now() - (touched.get(caller.keyId) ?? 0) > TOUCH_EVERY_MS) {
      touched.set(caller.keyId, Date.now());
      apiKeyQueries.touch(opts.pool, caller.keyId).catch((err: Error) => request.log.warn({ err }, 'recording when a key was last used failed'));
    }
  });
  if (opts.rateLimitPerMinute > 0) {
    // Its hook is added to each route, so it runs after the key check above and counts per key.
    void app.register(rateLimit, {
      max: opts.rateLimitPerMinute,
      timeWindow: 60_000,
      keyGenerator: (request) => (request.caller ? `key:${request.caller.keyId}` : `ip:${request.ip}`),
      errorResponseBuilder: (_request, context) =>
        new ApiError(429, 'RATE_LIMITED', `more than ${context.max} requests a minute with this key; retry in ${context.after}`),
    });
  }
}

/** Who made a request, for the audit log. */
export function actorOf(request: FastifyRequest): Actor {
  if (!request.caller) throw new Error(`${request.method} ${request.url}: no caller on a route that needs a key`);
  return { name: request.caller.name, keyId: request.caller.keyId, ip: request.ip, userAgent: request.headers['user-agent'] };
}
