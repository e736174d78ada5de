import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ScheduleView } from '../api/schedules';
import { startApi } from '../api/server';
import { loadConfig, requireDatabaseUrl } from '../config';
import { createPool } from '../db/pool';
import { searchAttributeTypes } from '../jobs';
import { freePort } from '../stack/ports';
import { startPostgres } from '../stack/postgres';
import { startTemporal } from '../stack/temporal';
import { createWorker } from '../worker';
import { follow } from './follow';
import { ApiClient } from './http';
import { ensureLocalAdminKey, readLocalKey } from './local-key';

const sampleFile = fileURLToPath(new URL('../../examples/users.csv', import.meta.url));
const log = (msg: string) => console.log(`[batchflow] ${msg}`);

/**
 * `npm start`: the whole local stack in one process. Services given by the environment
 * (TEMPORAL_ADDRESS, DATABASE_URL, S3_*) are used as they are; the others start here, with their
 * data under BATCHFLOW_DATA_DIR so that starting again reuses it.
 */
export async function startLocalStack(opts: { sample: boolean }): Promise<void> {
  const base = loadConfig();
  await fs.mkdir(base.dataDir, { recursive: true });
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch((err: Error) => console.error(`[batchflow] ${err.message}`));
  };

  try {
    const [temporal, postgres] = await Promise.all([
      process.env.TEMPORAL_ADDRESS
        ? { address: process.env.TEMPORAL_ADDRESS, uiUrl: undefined }
        : startTemporal({
            dbFile: path.join(base.dataDir, 'temporal.db'),
            port: await freePort(7233),
            uiPort: await freePort(8233),
            searchAttributes: searchAttributeTypes,
            logFile: path.join(base.dataDir, 'temporal.log'),
            log,
          }),
      process.env.DATABASE_URL
        ? { url: process.env.DATABASE_URL }
        : startPostgres({ dataDir: path.join(base.dataDir, 'postgres'), port: await freePort(5432), log }),
    ]);
    if ('stop' in temporal) stops.push(() => temporal.stop());
    if ('stop' in postgres) stops.push(() => postgres.stop());

    const config = loadConfig({ ...process.env, TEMPORAL_ADDRESS: temporal.address, DATABASE_URL: postgres.url, PORT: String(await freePort(base.api.port)) });
    const { worker, run } = await createWorker(config, { log });
    const workerDone = run();
    stops.push(async () => {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await workerDone;
    });
    const api = await startApi(config, { logger: false });
    stops.push(() => api.close());
    const apiUrl = `http://localhost:${new URL(api.address).port}`;
    const pool = createPool(requireDatabaseUrl(config), 1);
    const { created } = await ensureLocalAdminKey(pool, config.localKeyFile).finally(() => pool.end());
    const client = new ApiClient(apiUrl, readLocalKey(config.localKeyFile));

    log(`object store: ${config.s3 ? `s3://${config.s3.bucket}` : config.objectStoreDir}`);
    log(`API:          ${apiUrl}   (GET ${apiUrl}/health)`);
    log(`Temporal:     ${temporal.address}${temporal.uiUrl ? `   Web UI: ${temporal.uiUrl}` : ''}`);
    log(`Postgres:     ${postgres.url.replace(/\/\/[^@]*@/, '//***@')}`);
    log(`API key:      ${config.localKeyFile} (admin${created ? ', created now' : ''}; the CLI here uses it; curl -H "Authorization: Bearer $(cat ${path.relative(process.cwd(), config.localKeyFile) || config.localKeyFile})")`);
    await logSchedules(client);
    log(`try:          BATCHFLOW_API_URL=${apiUrl} npx batchflow import examples/users.csv --dataset users --mode upsert`);

    if (opts.sample) await runSample(client);
    log('running; Ctrl-C stops everything (data stays in ' + config.dataDir + ')');
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    log('stopping…');
  } finally {
    await stopAll();
  }
}

/** The schedules the worker synced, as Temporal now has them: one line each. */
async function logSchedules(api: ApiClient): Promise<void> {
  const { body } = await api.request<{ schedules: ScheduleView[] }>('GET', '/schedules');
  if (body.schedules.length === 0) log('schedules:    none (BATCHFLOW_SCHEDULES is off or declares none)');
  for (const [i, s] of body.schedules.entries()) {
    const when = s.paused ? `PAUSED: ${s.note}` : `next ${s.nextRunTimes[0] ?? '-'}`;
    log(`${i === 0 ? 'schedules:' : '          '}    ${s.id} (${s.kind}, ${s.spec.declared} ${s.spec.timeZone}, ${when})`);
  }
}

/** Runs the sample import once per data directory: its fixed runId makes a restart reuse it. */
async function runSample(api: ApiClient): Promise<void> {
  const runId = 'sample-users-import';
  const { body } = await api.request<{ existing: boolean }>('POST', '/runs', {
    kind: 'import',
    runId,
    params: { source: sampleFile, format: 'csv', dataset: 'users', mode: 'upsert' },
  });
  log(`sample import ${runId} ${body.existing ? '(already run: reusing it)' : 'started'}`);
  await follow(api, runId);
}
