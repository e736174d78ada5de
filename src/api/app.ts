import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { Client } from '@temporalio/client';
import Fastify, { type FastifyServerOptions } from 'fastify';
import { jsonSchemaTransform, serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Config } from '../config';
import type { DatasetRegistry } from '../datasets';
import type { Pool } from '../db/pool';
import { createObjectAccess, createStorage } from '../storage';
import { registerAuth } from './auth';
import { errorResponses, registerErrorHandler } from './errors';
import { requireScopes, type Scope } from './scopes';
import { createRunService } from './runs';
import { auditRoutes } from './routes/audit';
import { downloadRoutes } from './routes/downloads';
import { inspectRoutes } from './routes/inspect';
import { keyRoutes } from './routes/keys';
import { quarantineRoutes } from './routes/quarantine';
import { runRoutes } from './routes/runs';
import { uploadRoutes } from './routes/uploads';
import { scheduleRoutes } from './routes/schedules';
import { createScheduleService } from './schedules';

export interface ApiDeps {
  client: Client;
  pool: Pool;
  config: Pick<Config, 'api' | 'temporal' | 's3' | 'objectStoreDir' | 'localSourceDirs'>;
  /** The declared datasets: runs' params are held against them before a run starts. */
  datasets: DatasetRegistry;
}

const healthResponse = z.object({
  status: z.enum(['ok', 'degraded']),
  temporal: z.enum(['ok', 'unavailable']),
  database: z.enum(['ok', 'unavailable']),
});

/** The HTTP API as a Fastify instance, not listening: tests drive it with app.inject. */
export function buildApp(deps: ApiDeps, options: FastifyServerOptions = {}) {
  const app = Fastify({ bodyLimit: 10 * 1024 * 1024, ...options }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  const { config, pool } = deps;
  registerErrorHandler(app);
  requireScopes(app);
  registerAuth(app, { pool, rateLimitPerMinute: config.api.rateLimitPerMinute });
  void app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Batchflow API', version: '0.1.0', description: 'Durable batch data jobs on Temporal and PostgreSQL.' },
      components: { securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'An API key, bf_<id>_<secret> (batchflow keys create)' } } },
      security: [{ apiKey: [] }],
    },
    transform: jsonSchemaTransform,
  });
  void app.register(swaggerUi, { routePrefix: '/docs' });
  // One S3 client for uploads, downloads and the sources inspect and replay read.
  const objects = createObjectAccess(config);
  // Import sources the API reads itself (inspect), with the worker's rules.
  const { store, sources } = createStorage(config, objects.s3?.client);
  app.addHook('onClose', () => objects.s3?.client.destroy());

  app.after(() => {
    // The docs and the spec describe the API, which is no secret; a browser can open them without a key.
    app.get('/openapi.json', { config: { scope: 'public' }, schema: { hide: true } }, () => app.swagger());
    const runs = createRunService(deps.client, config.temporal.taskQueue, pool, { allowSelfApproval: config.api.allowSelfApproval });
    runRoutes(app, { runs, pool, datasets: deps.datasets });
    scheduleRoutes(app, { schedules: createScheduleService(deps.client, config.temporal.taskQueue, runs) });
    keyRoutes(app, { pool });
    auditRoutes(app, { pool });
    uploadRoutes(app, { pool, store, maxBytes: config.api.uploadMaxBytes });
    downloadRoutes(app, { runs, objects });
    inspectRoutes(app, { sources, datasets: deps.datasets });
    quarantineRoutes(app, { runs, pool });

    app.get(
      '/health',
      {
        config: { scope: 'public' },
        schema: { tags: ['health'], summary: 'Whether Temporal and Postgres answer', security: [], response: { 200: healthResponse, 503: healthResponse, ...errorResponses } },
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
