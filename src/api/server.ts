import { loadConfig, requireDatabaseUrl, type Config } from '../config';
import { openDatasets } from '../datasets/check';
import { migrate } from '../db/migrate';
import { createPool } from '../db/pool';
import { createLogger, type Logger } from '../log';
import { createApiRegistry } from '../metrics/api';
import { serveMetrics } from '../metrics/server';
import { connectTemporal } from '../temporal';
import { buildApp } from './app';

/**
 * Starts the API on config.api, and its metrics on BATCHFLOW_API_METRICS_PORT (0: none); returns a
 * close() that stops both and releases the API's connections.
 */
export async function startApi(config: Config, opts: { logger?: Logger } = {}) {
  const databaseUrl = requireDatabaseUrl(config);
  await migrate(databaseUrl);
  const pool = createPool(databaseUrl);
  const datasets = await openDatasets(config.datasetDirs, pool).catch(async (err: unknown) => {
    await pool.end();
    throw err;
  });
  const temporal = await connectTemporal(config);
  const metrics = createApiRegistry();
  const logger = opts.logger ?? createLogger(config.log, { component: 'api' });
  const app = buildApp({ client: temporal.client, pool, config, datasets, metrics }, { loggerInstance: logger });
  const address = await app.listen({ port: config.api.port, host: config.api.host });
  const { host, apiPort } = config.metrics;
  const metricsServer = apiPort > 0 ? await serveMetrics(metrics, host, apiPort, 'BATCHFLOW_API_METRICS_PORT') : undefined;
  return {
    address,
    metricsUrl: metricsServer?.url,
    async close() {
      await metricsServer?.close();
      await app.close();
      await temporal.close();
      await pool.end();
    },
  };
}

/** `batchflow api`: the API process against external services. */
export async function runApi(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(config.log, { component: 'api' });
  const api = await startApi(config, { logger });
  logger.info({ address: api.address, docs: `${api.address}/docs`, metrics: api.metricsUrl }, 'API listening');
  const stop = () => void api.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
