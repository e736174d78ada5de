import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { Client } from '@temporalio/client';
import Fastify, { LogController, type FastifyServerOptions } from 'fastify';
import { jsonSchemaTransform, jsonSchemaTransformObject, serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Registry } from 'prom-client';
import { z } from 'zod';
import type { Config } from '../config';
import type { DatasetRegistry } from '../datasets';
import type { Pool } from '../db/pool';
import { countRequests } from '../metrics/api';
import { createObjectAccess, createStorage } from '../storage';
import { registerAuth } from './auth';
import { errorResponses, registerErrorHandler } from './errors';
import { logRequests } from './request-log';
import { auditRoutes } from './routes/audit';
import { datasetRoutes } from './routes/datasets';
import { downloadRoutes } from './routes/downloads';
import { inspectRoutes } from './routes/inspect';
import { keyRoutes } from './routes/keys';
import { notificationRoutes } from './routes/notifications';
import { quarantineRoutes } from './routes/quarantine';
import { runRoutes } from './routes/runs';
import { scheduleRoutes } from './routes/schedules';
import { statsRoutes } from './routes/stats';
import { uploadRoutes } from './routes/uploads';
import { createRunService } from './runs';
import { createScheduleService } from './schedules';
import { DOCS_PREFIX, requireScopes, type Scope } from './scopes';

export interface ApiDeps {
  client: Client;
  pool: Pool;
  config: Pick<Config, 'api' | 'temporal' | 's3' | 'objectStoreDir' | 'localSourceDirs' | 's3SourceBuckets'>;
  /** The declared datasets: runs' params are held against them before a run starts. */
  datasets: DatasetRegistry;
  /** Where request counts and durations go (served on the API's metrics port); none in tests that do not need them. */
  metrics?: Registry;
}

const healthResponse = z
  .object({
    status: z.enum(['ok', 'degraded']),
    temporal: z.enum(['ok', 'unavailable']),
    database: z.enum(['ok', 'unavailable']),
  })
  .meta({ examples: [{ status: 'ok', temporal: 'ok', database: 'ok' }] });

const refsIn = (value: unknown) => [...JSON.stringify(value ?? null).matchAll(/"#\/components\/schemas\/([^"]+)"/g)].map((m) => m[1]!);

/**
 * Components from the schemas with a meta id (Error, Run, Dataset, …), keeping only those the
 * document references: the type provider emits an input and an output variant of each.
 */
const referencedComponents: typeof jsonSchemaTransformObject = (input) => {
  const document = jsonSchemaTransformObject(input) as { paths?: unknown; components?: { schemas?: Record<string, unknown> } };
  const schemas = document.components?.schemas ?? {};
  const used = new Set<string>();
  for (const pending = refsIn(document.paths); pending.length > 0; ) {
    const name = pending.pop()!;
    if (used.has(name)) continue;
    used.add(name);
    pending.push(...refsIn(schemas[name]));
  }
  const components = { ...document.components, schemas: Object.fromEntries(Object.entries(schemas).filter(([name]) => used.has(name))) };
  return { ...document, components } as ReturnType<typeof jsonSchemaTransformObject>;
};

/** The HTTP API as a Fastify instance, not listening: tests drive it with app.inject. */
export function buildApp(deps: ApiDeps, options: FastifyServerOptions = {}) {
  // Requests are logged once, as they are answered (request-log.ts), with their run id.
  const app = Fastify({ bodyLimit: 10 * 1024 * 1024, logController: new LogController({ disableRequestLogging: true }), ...options }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  const { config, pool } = deps;
  registerErrorHandler(app);
  requireScopes(app);
  logRequests(app);
  if (deps.metrics) countRequests(app, deps.metrics);
  registerAuth(app, { pool, rateLimitPerMinute: config.api.rateLimitPerMinute });
  void app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Batchflow API',
        version: '0.1.0',
        description:
          'Durable batch data jobs (imports, bulk updates, cleanups, exports, roll-ups, pipelines) on Temporal and PostgreSQL: start runs, follow their progress, page through their row errors, approve or cancel them, download their files; manage schedules; discover the datasets they use; read stats. Every call but /health and the docs needs an API key. Every error answer has the one `Error` shape.',
      },
      components: { securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'An API key, bf_<id>_<secret> (batchflow keys create)' } } },
      security: [{ apiKey: [] }],
      tags: [
        { name: 'runs', description: 'Start, list, follow, approve and stop runs; download their files' },
        { name: 'schedules', description: 'Declared schedules: list, pause, trigger, backfill' },
        { name: 'datasets', description: 'What runs can import into and change' },
        { name: 'stats', description: 'Figures over the runs of a time window' },
        { name: 'uploads', description: 'Files to import' },
        { name: 'keys', description: 'API keys (admin)' },
        { name: 'audit', description: 'Who did what (admin)' },
        { name: 'health', description: 'Whether the API and its dependencies answer' },
        { name: 'docs', description: 'This document' },
      ],
    },
    transform: jsonSchemaTransform,
    transformObject: referencedComponents,
  });
  void app.register(swaggerUi, { routePrefix: DOCS_PREFIX });
  // One S3 client for uploads, downloads and the sources inspect and replay read.
  const objects = createObjectAccess(config);
  // Import sources the API reads itself (inspect), with the worker's rules.
  const { store, sources } = createStorage(config, objects.s3?.client);
  app.addHook('onClose', () => objects.s3?.client.destroy());

  app.after(() => {
    // The docs and the spec describe the API, which is no secret; a browser can open them without a key.
    app.get(
      '/openapi.json',
      {
        config: { scope: 'public' },
        schema: {
          tags: ['docs'],
          summary: 'This API as an OpenAPI 3.1 document (interactive at /docs)',
          security: [],
          response: {
            200: z
              .record(z.string(), z.unknown())
              .describe('The OpenAPI 3.1 document')
              .meta({ examples: [{ openapi: '3.1.0', info: { title: 'Batchflow API', version: '0.1.0' }, paths: { '/runs': {} } }] }),
            ...errorResponses,
          },
        },
      },
      () => app.swagger() as unknown as Record<string, unknown>,
    );
    const runs = createRunService(deps.client, config.temporal.taskQueue, pool, { allowSelfApproval: config.api.allowSelfApproval });
    runRoutes(app, { runs, pool, datasets: deps.datasets });
    scheduleRoutes(app, { schedules: createScheduleService(deps.client, config.temporal.taskQueue, runs) });
    keyRoutes(app, { pool });
    auditRoutes(app, { pool });
    uploadRoutes(app, { pool, store, maxBytes: config.api.uploadMaxBytes });
    downloadRoutes(app, { runs, objects });
    datasetRoutes(app, { pool, datasets: deps.datasets });
    statsRoutes(app, { pool, client: deps.client });
    inspectRoutes(app, { sources, datasets: deps.datasets });
    quarantineRoutes(app, { runs, pool });
    notificationRoutes(app, { runs, pool });

    app.get(
      '/health',
      {
        config: { scope: 'public' },
        schema: {
          tags: ['health'],
          summary: 'Whether Temporal and Postgres answer',
          security: [],
          response: { 200: healthResponse.describe('Both answer'), 503: healthResponse.describe('One of them does not: the body says which'), ...errorResponses },
        },
      },
      async (_request, reply) => {
        const [temporal, database] = await Promise.all([
          deps.client.connection.workflowService.getSystemInfo({}).then(() => 'ok' as const, () => 'unavailable' as const),
          pool.query('SELECT 1').then(() => 'ok' as const, () => 'unavailable' as const),
        ]);
        const ok = temporal === 'ok' && database === 'ok';
        return reply.status(ok ? 200 : 503).send({ status: ok ? 'ok' : 'degraded', temporal, database });
      },
    );
  });
  return app;
}
export type App = ReturnType<typeof buildApp>;
export type { Scope };
