import { WorkflowNotFoundError } from '@temporalio/client';
import type { FastifyError, FastifyInstance } from 'fastify';
import type { z } from 'zod';

/** An error the API answers with as it is: its status, code and message are for the caller. */
export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
  }
}

export const notFound = (what: string) => new ApiError(404, 'NOT_FOUND', `${what} not found`);

/** Parses part of a request with a zod schema; a failure is a 400 naming the field. */
export function parseRequest<S extends z.ZodType>(schema: S, value: unknown, prefix?: string): z.output<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const issues = parsed.error.issues.map((i) => ({ field: [prefix, ...i.path.map(String)].filter(Boolean).join('.'), message: i.message }));
  throw Object.assign(new ApiError(400, 'INVALID_REQUEST', issues.map((i) => `${i.field || 'body'}: ${i.message}`).join('; '), issues[0]?.field), { issues });
}

/** The one place errors become HTTP answers: 4xx say what is wrong, 5xx say nothing internal. */
export function registerErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError | Error, request, reply) => {
    if (err instanceof ApiError) {
      const issues = (err as ApiError & { issues?: unknown }).issues;
      return reply.status(err.statusCode).send({ error: err.code, message: err.message, ...(err.field !== undefined && { field: err.field }), ...(issues !== undefined && { issues }) });
    }
    if (err instanceof WorkflowNotFoundError) return reply.status(404).send({ error: 'NOT_FOUND', message: 'run not found' });
    const status = (err as FastifyError).statusCode;
    if (status !== undefined && status >= 400 && status < 500) {
      // Fastify's own request errors: malformed JSON, unsupported media type, body too large.
      return reply.status(status).send({ error: (err as FastifyError).code ?? 'BAD_REQUEST', message: err.message });
    }
    request.log.error({ err }, 'request failed');
    return reply.status(503 === status ? 503 : 500).send({ error: 'INTERNAL', message: 'internal error; see the server log' });
  });
  app.setNotFoundHandler((request, reply) => reply.status(404).send({ error: 'NOT_FOUND', message: `no route ${request.method} ${request.url}` }));
}
