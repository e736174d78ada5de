import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ScheduleView } from '../api/schedules';
import { startApi } from '../api/server';
import { loadConfig, requireDatabaseUrl } from '../config';
import { createPool } from '../db/pool';
import { searchAttributeTypes } from '../jobs';
import { createLogger } from '../log';
import { newWebhookSecret } from '../notifications/signing';
import { startMailpit } from '../stack/mailpit';
import { freePort } from '../stack/ports';
import { startPostgres } from '../stack/postgres';
import { startTemporal } from '../stack/temporal';
import { createWorker, installWorkerRuntime, serveWorkerMetrics } from '../worker';
import { follow } from './follow';
import { ApiClient } from './http';
import { ensureLocalAdminKey, readLocalKey } from './local-key';

const examplesDir = fileURLToPath(new URL('../../examples/', import.meta.url));

/** The data directory's webhook secret (made on first start), unless WEBHOOK_SECRET is set. */
async function localWebhookSecret(dataDir: string): Promise<string> {
  const file = path.join(dataDir, 'webhook-secret');
  try {
    return (await fs.readFile(file, 'utf8')).trim();
  } catch {
    const secret = newWebhookSecret();
    await fs.writeFile(file, `${secret}\n`, { mode: 0o600 });
    return secret;
  }
}

/** A configured port, or a free one when it is taken; 0 (none) stays 0. */
const portNear = async (port: number) => String(port === 0 ? 0 : await freePort(port));

/**
 * `npm start`: the whole local stack in one process. Services given by the environment
 * (TEMPORAL_ADDRESS, DATABASE_URL, S3_*, SMTP_URL) are used as they are; the others start here,
 * with their data under BATCHFLOW_DATA_DIR so that starting again reuses it.
 */
export async function startLocalStack(opts: { sample: boolean }): Promise<void> {
  // Readable lines here; LOG_FORMAT=json gives what `batchflow worker` and `batchflow api` write.
  const env = { LOG_FORMAT: 'pretty', ...process.env };
  const base = loadConfig(env);
  const logger = createLogger(base.log);
  const startLogger = logger.child({ component: 'start' });
  const log = (msg: string) => startLogger.info(msg);
  const metricsPorts = {
    BATCHFLOW_API_METRICS_PORT: await portNear(base.metrics.apiPort),
    BATCHFLOW_WORKER_METRICS_PORT: await portNear(base.metrics.workerPort),
    BATCHFLOW_TEMPORAL_METRICS_PORT: await portNear(base.metrics.temporalPort),
  };
  // Before anything else touches the Temporal runtime (the SDK's download of the dev server does).
  installWorkerRuntime(loadConfig({ ...env, ...metricsPorts }), logger.child({ component: 'worker' }));
  await fs.mkdir(base.dataDir, { recursive: true });
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch((err: Error) => startLogger.error(err.message));
  };

  try {
    const [temporal, postgres, mailpit] = await Promise.all([
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
      process.env.SMTP_URL
        ? undefined
        : startMailpit({ dbFile: path.join(base.dataDir, 'mailpit.db'), smtpPort: 1025, httpPort: 8025, logFile: path.join(base.dataDir, 'mailpit.log'), log }),
    ]);
    if ('stop' in temporal) stops.push(() => temporal.stop());
    if ('stop' in postgres) stops.push(() => postgres.stop());
    if (mailpit) stops.push(() => mailpit.stop());

    const config = loadConfig({
      ...env,
      ...metricsPorts,
      TEMPORAL_ADDRESS: temporal.address,
      DATABASE_URL: postgres.url,
      PORT: String(await freePort(base.api.port)),
      SMTP_URL: process.env.SMTP_URL ?? mailpit!.smtpUrl,
      WEBHOOK_SECRET: process.env.WEBHOOK_SECRET ?? (await localWebhookSecret(base.dataDir)),
    });
    const { worker, run } = await createWorker(config, { log });
    const workerDone = run();
    stops.push(async () => {
      if (worker.getState() === 'RUNNING') worker.shutdown();
      await workerDone;
    });
    const workerMetrics = await serveWorkerMetrics(config);
    if (workerMetrics) stops.push(() => workerMetrics.close());
    const api = await startApi(config, { logger: logger.child({ component: 'api' }) });
    stops.push(() => api.close());
    const apiUrl = `http://localhost:${new URL(api.address).port}`;
    const pool = createPool(requireDatabaseUrl(config), 1);
    const { created } = await ensureLocalAdminKey(pool, config.localKeyFile).finally(() => pool.end());
    const client = new ApiClient(apiUrl, readLocalKey(config.localKeyFile));
    const { host, temporalPort } = config.metrics;

    log(`object store: ${config.s3 ? `s3://${config.s3.bucket}` : config.objectStoreDir}`);
    log(`API:          ${apiUrl}   (GET ${apiUrl}/health)   docs: ${apiUrl}/docs`);
    log(`metrics:      API ${api.metricsUrl ?? 'off'}   worker ${workerMetrics?.url ?? 'off'}   Temporal SDK ${temporalPort > 0 ? `http://${host}:${temporalPort}/metrics` : 'off'}`);
    log(`Temporal:     ${temporal.address}${temporal.uiUrl ? `   Web UI: ${temporal.uiUrl}` : ''}`);
    log(`Postgres:     ${postgres.url.replace(/\/\/[^@]*@/, '//***@')}`);
    log(`email:        ${mailpit ? `Mailpit inbox ${mailpit.httpUrl}   (SMTP ${mailpit.smtpUrl})` : 'SMTP_URL'}`);
    log(`webhooks:     signed with ${process.env.WEBHOOK_SECRET ? 'WEBHOOK_SECRET' : `the secret in ${path.join(config.dataDir, 'webhook-secret')}`}`);
    log(`API key:      ${config.localKeyFile} (admin${created ? ', created now' : ''}; the CLI here uses it; curl -H "Authorization: Bearer $(cat ${path.relative(process.cwd(), config.localKeyFile) || config.localKeyFile})")`);
    await logSchedules(client, log);
    // Workers import local files only from BATCHFLOW_LOCAL_SOURCE_DIRS ($BATCHFLOW_DATA_DIR/imports
    // by default): the example files go to the first, for the sample run and for trying the CLI by hand.
    const importsDir = config.localSourceDirs.find((dir) => dir !== '*') ?? path.join(config.dataDir, 'imports');
    await copyExamples(importsDir);
    log(`imports:      ${importsDir} (the examples are copied there)`);
    const example = path.join(importsDir, 'users.csv');
    const shown = path.relative(process.cwd(), example).startsWith('..') ? example : path.relative(process.cwd(), example);
    log(`try:          BATCHFLOW_API_URL=${apiUrl} npx batchflow import ${shown} --dataset users --mode upsert`);
    log(`invoicing:    see "Invoicing" in README.md (examples/customers.csv, examples/usage-2026-10.csv)`);

    if (opts.sample) await runSample(client, importsDir, log);
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

/** Copies the example CSV files into the imports directory (again on each start, so they stay as shipped). */
async function copyExamples(importsDir: string): Promise<void> {
  await fs.mkdir(importsDir, { recursive: true });
  const files = (await fs.readdir(examplesDir)).filter((f) => f.endsWith('.csv'));
  await Promise.all(files.map((f) => fs.copyFile(path.join(examplesDir, f), path.join(importsDir, f))));
}

/** The schedules the worker synced, as Temporal now has them: one line each. */
async function logSchedules(api: ApiClient, log: (msg: string) => void): Promise<void> {
  const { body } = await api.request<{ schedules: ScheduleView[] }>('GET', '/schedules');
  if (body.schedules.length === 0) log('schedules:    none (BATCHFLOW_SCHEDULES is off or declares none)');
  for (const [i, s] of body.schedules.entries()) {
    const when = s.paused ? `PAUSED: ${s.note}` : `next ${s.nextRunTimes[0] ?? '-'}`;
    log(`${i === 0 ? 'schedules:' : '          '}    ${s.id} (${s.kind}, ${s.spec.declared} ${s.spec.timeZone}, ${when})`);
  }
}

/**
 * Loads the samples once per data directory (their fixed run ids make a restart reuse them): the
 * users, and the customers and October 2026 usage that `batchflow run invoicing --params
 * examples/invoicing-2026-10.yaml` bills. They are read from the imports directory.
 */
async function runSample(api: ApiClient, importsDir: string, log: (msg: string) => void): Promise<void> {
  const samples = [
    { runId: 'sample-users-import', file: 'users.csv', dataset: 'users' },
    { runId: 'sample-customers-import', file: 'customers.csv', dataset: 'customers' },
    { runId: 'sample-usage-import', file: 'usage-2026-10.csv', dataset: 'usage_events' },
  ];
  for (const { runId, file, dataset } of samples) {
    const { body } = await api.request<{ existing: boolean }>('POST', '/runs', {
      kind: 'import',
      runId,
      params: { source: path.join(importsDir, file), format: 'csv', dataset, mode: 'upsert' },
    });
    log(`sample import ${runId} ${body.existing ? '(already run: reusing it)' : 'started'}`);
    await follow(api, runId);
  }
}
