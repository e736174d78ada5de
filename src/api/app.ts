import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { Client } from '@temporalio/client';
import Fastify, { type FastifyServerOptions } from 'fastify';
import { jsonSchemaTransform, serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Pool } from '../db/pool';
import { errorResponses, registerErrorHandler } from './errors';
import { requireScopes, type Scope } from './scopes';
import { createRunService } from './runs';
import { notificationRoutes } from './routes/notifications';
import { runRoutes } from './routes/runs';

export interface ApiDeps {
  client: Client;
  pool: Pool;
  taskQueue: string;
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
  registerErrorHandler(app);
  requireScopes(app);
  void app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Batchflow API', version: '0.1.0', description: 'Durable batch data jobs on Temporal and PostgreSQL.' },
    },
    transform: jsonSchemaTransform,
  });
  void app.register(swaggerUi, { routePrefix: '/docs' });

  app.after(() => {
    app.get('/openapi.json', { config: { scope: 'public' }, schema: { hide: true } }, () => app.swagger());
    const runs = createRunService(deps.client, deps.taskQueue, deps.pool);
    runRoutes(app, { runs, pool: deps.pool });
    notificationRoutes(app, { runs, pool: deps.pool });

    app.get(
      '/health',
      {
        config: { scope: 'public' },
        schema: { tags: ['health'], summary: 'Whether Temporal and Postgres answer', response: { 200: healthResponse, 503: healthResponse, ...errorResponses } },
      },
      async (_request, reply) => {
        const [temporal, database] = await Promise.all([
          deps.client.connection.workflowService.getSystemInfo({}).then(() => 'ok' as const, () => 'unavailable' as const),
          deps.pool.query('SELECT 1').then(() => 'ok' as const, () => 'unavailable' as const),
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
