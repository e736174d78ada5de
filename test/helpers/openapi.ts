import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import type { FastifyInstance } from 'fastify';
import { isResponseSerializationError } from 'fastify-type-provider-zod';
import { DOCS_PREFIX } from '../../src/api/scopes';

interface MediaType {
  schema?: object;
}
interface OpenApiDocument {
  paths: Record<string, Record<string, { responses: Record<string, { content?: Record<string, MediaType> }> }>>;
  components?: { schemas?: Record<string, object> };
}

/** A Fastify route pattern as an OpenAPI path: /runs/:id → /runs/{id}. */
export const openApiPath = (url: string) => url.replace(/:([A-Za-z0-9_]+)/g, '{$1}');

/**
 * Holds an app to the OpenAPI document it serves. Every response must have a status documented
 * for its route (a request no route matched: the Error shape), a content type documented for that
 * status (or a range such as text/* or *\/*), and a JSON body that matches the documented schema; a response the type provider could
 * not serialise (the handler returned something its schema refuses) counts too. Problems are
 * collected in `problems`: the test stack's close() fails the suite with them.
 */
export function checkResponses(app: FastifyInstance): { problems: string[] } {
  const problems: string[] = [];
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  const validators = new Map<string, ValidateFunction>();
  let document: OpenApiDocument | undefined;
  // Each schema is compiled with the document's components beside it, so that its $refs resolve.
  const validatorFor = (key: string, schema: object) => {
    let validate = validators.get(key);
    if (!validate) {
      validate = ajv.compile({ $id: `response:${key}`, components: document!.components, ...schema });
      validators.set(key, validate);
    }
    return validate;
  };

  app.addHook('onError', (request, _reply, error, done) => {
    if (isResponseSerializationError(error)) problems.push(`${request.method} ${request.url}: the response does not match its schema: ${String(error.cause)}`);
    done();
  });

  app.addHook('onSend', (request, reply, payload, done) => {
    const route = request.routeOptions.url;
    if (request.method === 'HEAD' || route?.startsWith(DOCS_PREFIX)) return done(null, payload);
    document ??= app.swagger() as unknown as OpenApiDocument;
    const where = `${request.method} ${request.url} → ${reply.statusCode}`;
    const status = String(reply.statusCode);
    const contentType = String(reply.getHeader('content-type') ?? '').split(';')[0]!.trim();
    let media: MediaType | undefined;
    let key: string;
    if (route === undefined) {
      media = { schema: { $ref: '#/components/schemas/Error' } };
      key = 'unmatched';
    } else {
      const path = openApiPath(route);
      const responses = document.paths[path]?.[request.method.toLowerCase()]?.responses;
      const response = responses?.[status] ?? responses?.[`${status[0]}XX`] ?? responses?.default;
      if (!response) {
        problems.push(`${where}: status ${status} is not documented for ${request.method} ${path}`);
        return done(null, payload);
      }
      // A response without content (a redirect) has no body to check.
      if (!response.content) return done(null, payload);
      media = response.content[contentType] ?? response.content[`${contentType.split('/')[0]}/*`] ?? response.content['*/*'];
      if (!media) {
        problems.push(`${where}: content type "${contentType}" is not documented (${Object.keys(response.content ?? {}).join(', ') || 'none'})`);
        return done(null, payload);
      }
      key = `${request.method} ${path} ${status} ${contentType}`;
    }
    if (contentType === 'application/json' && media.schema && typeof payload === 'string') {
      const validate = validatorFor(key, media.schema);
      if (!validate(JSON.parse(payload))) problems.push(`${where}: the body does not match the documented schema: ${ajv.errorsText(validate.errors)}`);
    }
    done(null, payload);
  });
  return { problems };
}
