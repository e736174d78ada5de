import { WorkflowNotFoundError } from '@temporalio/client';
import type { FastifyError, FastifyInstance } from 'fastify';
import { hasZodFastifySchemaValidationErrors } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { issuePath } from '../jobs/strict';

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

const issueSchema = z.object({ field: z.string(), message: z.string() });
type Issue = z.infer<typeof issueSchema>;

/** The one shape of every error answer. */
export const errorSchema = z
  .object({
    error: z.string().describe('A stable code: INVALID_REQUEST, NOT_FOUND, RUN_ID_CONFLICT, INTERNAL, …'),
    message: z.string(),
    field: z.string().optional().describe('The first bad field of a 400, such as params.dataset'),
    issues: z.array(issueSchema).optional().describe('Every bad field of a 400'),
  })
  .meta({ id: 'Error', example: { error: 'INVALID_REQUEST', message: 'params.dataset: Invalid option: expected one of "users"|"products"', field: 'params.dataset' } });

/** An error answer in a route's OpenAPI responses: the one error shape, with what this status means there. */
export const errorResponse = (description: string) => ({ description, content: { 'application/json': { schema: errorSchema } } });

/** Error answers every route may give, for its OpenAPI responses. */
export const errorResponses = {
  400: errorResponse('The request is invalid: `field` names the first bad field, `issues` lists them all'),
  401: errorResponse('No API key, or one that is not valid'),
  403: errorResponse("The API key's scopes do not allow this route"),
  404: errorResponse('No such run, dataset or route'),
  413: errorResponse('The request body is larger than the API takes'),
  415: errorResponse('A request body of a type the route does not take (JSON, but for uploads)'),
  429: errorResponse('Too many requests: wait and try again (Retry-After)'),
  500: errorResponse('A fault on the server: the answer says nothing more, the server log does'),
};

/** A 400 listing every bad field; the first one is `field`. */
export const invalid = (issues: Issue[]) =>
  Object.assign(new ApiError(400, 'INVALID_REQUEST', issues.map((i) => `${i.field || 'body'}: ${i.message}`).join('; '), issues[0]?.field), { issues });

/**
 * A zod issue as the caller should read it: the field by its dotted path, for an unknown key the
 * key itself (refused, so that a misspelt safety flag never goes unnoticed; its message suggests
 * the key that was meant).
 */
const describeIssue = (path: readonly PropertyKey[], code: string, message: string, keys?: readonly string[]): Issue => ({
  field: issuePath({ path, code, keys }).map(String).join('.'),
  message,
});

/** Parses part of a request with a zod schema; a failure is a 400 naming the field. */
export function parseRequest<S extends z.ZodType>(schema: S, value: unknown, prefix?: string): z.output<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  throw invalid(parsed.error.issues.map((i) => describeIssue([...(prefix ? [prefix] : []), ...i.path], i.code, i.message, i.code === 'unrecognized_keys' ? i.keys : undefined)));
}

/** The one place errors become HTTP answers: 4xx say what is wrong, 5xx say nothing internal. */
export function registerErrorHandler(app: FastifyInstance): void {
  app.setErrorHandler((err: FastifyError | Error, request, reply) => {
    if (hasZodFastifySchemaValidationErrors(err)) {
      // A route's zod schema refused the body, query or path: name the field as the caller wrote it.
      err = invalid(err.validation.map((v) => describeIssue(v.instancePath.split('/').filter(Boolean), v.keyword, v.message ?? 'invalid', (v.params as { keys?: string[] }).keys)));
    }
    if (err instanceof ApiError) {
      const issues = (err as ApiError & { issues?: unknown }).issues;
      return reply.status(err.statusCode).send({ error: err.code, message: err.message, ...(err.field !== undefined && { field: err.field }), ...(issues !== undefined && { issues }) });
    }
    if (err instanceof WorkflowNotFoundError) return reply.status(404).send({ error: 'NOT_FOUND', message: 'run not found' });
    const status = (err as FastifyError).statusCode;
    if ((err as FastifyError).code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') {
      return reply.status(415).send({ error: 'UNSUPPORTED_MEDIA_TYPE', message: `content-type "${request.headers['content-type'] ?? ''}" is not accepted here: send application/json` });
    }
    if (status !== undefined && status >= 400 && status < 500) {
      // Fastify's own request errors: malformed JSON, body too large.
      return reply.status(status).send({ error: (err as FastifyError).code ?? 'BAD_REQUEST', message: err.message });
    }
    request.log.error({ err }, 'request failed');
    return reply.status(503 === status ? 503 : 500).send({ error: 'INTERNAL', message: 'internal error; see the server log' });
  });
  app.setNotFoundHandler((request, reply) => reply.status(404).send({ error: 'NOT_FOUND', message: `no route ${request.method} ${request.url}` }));
}
