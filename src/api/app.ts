import type { Client } from '@temporalio/client';
import Fastify, { type FastifyServerOptions } from 'fastify';
import type { Pool } from '../db/pool';
import { registerErrorHandler } from './errors';
import { createRunService } from './runs';
import { runRoutes } from './routes/runs';

export interface ApiDeps {
  client: Client;
  pool: Pool;
  taskQueue: string;
}

/** The HTTP API as a Fastify instance, not listening: tests drive it with app.inject. */
export function buildApp(deps: ApiDeps, options: FastifyServerOptions = {}) {
  const app = Fastify({ bodyLimit: 10 * 1024 * 1024, ...options });
  registerErrorHandler(app);
  runRoutes(app, { runs: createRunService(deps.client, deps.taskQueue, deps.pool), pool: deps.pool });

  app.get('/health', async (_request, reply) => {
    const [temporal, database] = await Promise.all([
      deps.client.connection.workflowService.getSystemInfo({}).then(() => 'ok', () => 'unavailable'),
      deps.pool.query('SELECT 1').then(() => 'ok', () => 'unavailable'),
    ]);
    const ok = temporal === 'ok' && database === 'ok';
    return reply.status(ok ? 200 : 503).send({ status: ok ? 'ok' : 'degraded', temporal, database });
  });
  return app;
}
