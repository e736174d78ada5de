import type { FastifyInstance } from 'fastify';

/**
 * One log line per request, as it is answered, carrying the run id of routes about one run, so
 * that the API's lines and the worker's read as one story. Successful reads (the CLI polls a
 * run twice a second) log at debug; changes and failures at info.
 */
export function logRequests(app: FastifyInstance): void {
  app.addHook('onRequest', (request, _reply, done) => {
    const runId = (request.params as { id?: unknown } | undefined)?.id;
    if (typeof runId === 'string' && request.routeOptions.url?.startsWith('/runs/')) request.log = request.log.child({ runId });
    done();
  });
  app.addHook('onResponse', (request, reply, done) => {
    const read = request.method === 'GET' || request.method === 'HEAD';
    const level = reply.statusCode >= 400 || !read ? 'info' : 'debug';
    request.log[level]({ method: request.method, url: request.url, status: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'request');
    done();
  });
}
