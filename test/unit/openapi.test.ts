import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Validator } from '@seriousme/openapi-schema-validator';
import type { Client } from '@temporalio/client';
import { z } from 'zod';
import { buildApp } from '../../src/api/app';
import { loadConfig } from '../../src/config';
import { errorResponses } from '../../src/api/errors';
import { DOCS_PREFIX } from '../../src/api/scopes';
import type { Pool } from '../../src/db/pool';
import { checkResponses, openApiPath } from '../helpers/openapi';
import { loadDatasets } from '../../src/datasets';

interface Media {
  schema?: { $ref?: string; examples?: unknown[]; example?: unknown };
  example?: unknown;
  examples?: unknown;
}
interface Operation {
  summary?: string;
  parameters?: { name: string; in: string; description?: string }[];
  requestBody?: { content: Record<string, Media> };
  responses: Record<string, { description: string; content?: Record<string, Media> }>;
}
interface Spec {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, { example?: unknown; examples?: unknown[] }> };
}

/** The app (its routes need no services to be listed) and every route it registers, seen by an onRoute hook. */
async function appWithRoutes() {
  const app = buildApp({ client: {} as Client, pool: {} as Pool, config: loadConfig({}), datasets: loadDatasets(loadConfig({}).datasetDirs) });
  const routes: { method: string; url: string }[] = [];
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) routes.push({ method, url: route.url });
  });
  await app.ready();
  const spec = (await app.inject({ method: 'GET', url: '/openapi.json' })).json<Spec>();
  return { app, routes, spec };
}

/** An example a reader of the docs sees: on the media type, its schema, or the component it references. */
function hasExample(spec: Spec, media: Media): boolean {
  if (media.example !== undefined || media.examples !== undefined) return true;
  const schema = media.schema;
  if (!schema) return false;
  if (schema.example !== undefined || schema.examples !== undefined) return true;
  const component = schema.$ref?.replace('#/components/schemas/', '');
  return component !== undefined && (spec.components.schemas[component]?.example !== undefined || spec.components.schemas[component]?.examples !== undefined);
}

const operations = (spec: Spec) => Object.entries(spec.paths).flatMap(([path, ops]) => Object.entries(ops).map(([method, op]) => ({ where: `${method.toUpperCase()} ${path}`, op })));

describe('OpenAPI document', () => {
  it('documents every route the app registers (but the docs pages themselves)', async () => {
    const { app, routes, spec } = await appWithRoutes();
    try {
      const api = routes.filter((r) => !r.url.startsWith(DOCS_PREFIX));
      assert.ok(api.length >= 10, `routes were seen (${api.length})`);
      for (const { method, url } of api) {
        // Fastify answers HEAD for every GET; the document lists the GET.
        const documented = method === 'HEAD' ? 'get' : method.toLowerCase();
        assert.ok(spec.paths[openApiPath(url)]?.[documented], `${method} ${url} is not in /openapi.json`);
      }
    } finally {
      await app.close();
    }
  });

  it('is a valid OpenAPI 3.1 document', async () => {
    const { app, spec } = await appWithRoutes();
    await app.close();
    assert.equal(spec.openapi, '3.1.0');
    const validator = new Validator();
    const result = await validator.validate(spec as unknown as Parameters<Validator['validate']>[0]);
    assert.equal(validator.version, '3.1');
    assert.deepEqual(result.errors ?? [], [], JSON.stringify(result.errors, null, 2));
    assert.equal(result.valid, true);
  });

  it('describes every operation, its parameters and responses, with examples of its bodies', async () => {
    const { app, spec } = await appWithRoutes();
    await app.close();
    for (const { where, op } of operations(spec)) {
      assert.ok(op.summary, `${where} has a summary`);
      for (const p of op.parameters ?? []) assert.ok(p.description, `${where}: ${p.in} parameter ${p.name} has a description`);
      for (const [type, media] of Object.entries(op.requestBody?.content ?? {})) assert.ok(hasExample(spec, media), `${where}: the ${type} request body has an example`);
      for (const [status, response] of Object.entries(op.responses)) {
        assert.notEqual(response.description, 'Default Response', `${where} ${status} says what it means`);
        if (!status.startsWith('2')) continue;
        for (const [type, media] of Object.entries(response.content ?? {})) assert.ok(hasExample(spec, media), `${where} ${status}: the ${type} body has an example`);
      }
    }
  });

  it('gives every error answer the one Error shape', async () => {
    const { app, spec } = await appWithRoutes();
    await app.close();
    assert.ok(hasExample(spec, { schema: { $ref: '#/components/schemas/Error' } }), 'the Error shape has an example');
    for (const { where, op } of operations(spec)) {
      for (const [status, response] of Object.entries(op.responses)) {
        // 503 from /health is the health report itself, which says what is down.
        if (!/^(4|500)/.test(status)) continue;
        assert.deepEqual(Object.keys(response.content ?? {}), ['application/json'], `${where} ${status}`);
        assert.equal(response.content!['application/json']!.schema?.$ref, '#/components/schemas/Error', `${where} ${status} is an Error`);
      }
    }
  });
});

describe('responses held to the document (the test stack does this for every answer)', () => {
  it('a body that breaks its schema and an undocumented status are caught; documented answers pass', async () => {
    const app = buildApp({ client: {} as Client, pool: {} as Pool, config: loadConfig({}), datasets: loadDatasets(loadConfig({}).datasetDirs) });
    const contract = checkResponses(app);
    app.after(() => {
      const schema = { summary: 'test', response: { 200: z.object({ count: z.number() }).describe('a count').meta({ examples: [{ count: 1 }] }), ...errorResponses } };
      app.get('/broken/serialised', { config: { scope: 'public' }, schema }, () => ({ count: 'many' }) as unknown as { count: number });
      app.get('/broken/status', { config: { scope: 'public' }, schema }, (_request, reply) => void reply.status(418 as 200).send({ count: 1 }));
    });
    await app.ready();
    try {
      assert.equal((await app.inject({ method: 'GET', url: '/broken/serialised' })).statusCode, 500);
      assert.equal(contract.problems.length, 1, contract.problems.join('\n'));
      assert.match(contract.problems[0]!, /GET \/broken\/serialised: the response does not match its schema/);

      await app.inject({ method: 'GET', url: '/broken/status' });
      assert.match(contract.problems[1]!, /status 418 is not documented for GET \/broken\/status/);

      // The right shapes pass: the Error of an unknown route (without a key: 401), the document itself.
      assert.equal((await app.inject({ method: 'GET', url: '/no/such/route' })).statusCode, 401);
      assert.equal((await app.inject({ method: 'GET', url: '/openapi.json' })).statusCode, 200);
      assert.equal(contract.problems.length, 2, contract.problems.join('\n'));
    } finally {
      await app.close();
    }
  });
});
