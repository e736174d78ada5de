import { loadConfig, requireDatabaseUrl, type Config } from '../config';
import { openDatasets } from '../datasets/check';
import { migrate } from '../db/migrate';
import { createPool } from '../db/pool';
import { connectTemporal } from '../temporal';
import { buildApp } from './app';

/** Starts the API on config.api; returns a close() that stops it and releases its connections. */
export async function startApi(config: Config, opts: { logger?: boolean } = {}) {
  const databaseUrl = requireDatabaseUrl(config);
  await migrate(databaseUrl);
  const pool = createPool(databaseUrl);
  const datasets = await openDatasets(config.datasetDirs, pool).catch(async (err: unknown) => {
    await pool.end();
    throw err;
  });
  const temporal = await connectTemporal(config);
  const app = buildApp({ client: temporal.client, pool, config, datasets }, { logger: opts.logger ?? true });
  const address = await app.listen({ port: config.api.port, host: config.api.host });
  return {
    address,
    async close() {
      await app.close();
      await temporal.close();
      await pool.end();
    },
  };
}

/** `batchflow api`: the API process against external services. */
export async function runApi(): Promise<void> {
  const api = await startApi(loadConfig());
  const stop = () => void api.close().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
