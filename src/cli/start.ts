import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startApi } from '../api/server';
import { loadConfig } from '../config';
import { searchAttributeTypes } from '../jobs';
import { newWebhookSecret } from '../notifications/signing';
import { startMailpit } from '../stack/mailpit';
import { freePort } from '../stack/ports';
import { startPostgres } from '../stack/postgres';
import { startTemporal } from '../stack/temporal';
import { createWorker } from '../worker';
import { follow } from './follow';
import { ApiClient } from './http';

const example = (name: string) => fileURLToPath(new URL(`../../examples/${name}`, import.meta.url));
const log = (msg: string) => console.log(`[batchflow] ${msg}`);

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

/**
 * `npm start`: the whole local stack in one process. Services given by the environment
 * (TEMPORAL_ADDRESS, DATABASE_URL, S3_*, SMTP_URL) are used as they are; the others start here,
 * with their data under BATCHFLOW_DATA_DIR so that starting again reuses it.
 */
export async function startLocalStack(opts: { sample: boolean }): Promise<void> {
  const base = loadConfig();
  await fs.mkdir(base.dataDir, { recursive: true });
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch((err: Error) => console.error(`[batchflow] ${err.message}`));
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
      ...process.env,
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
    const api = await startApi(config, { logger: false });
    stops.push(() => api.close());
    const apiUrl = `http://localhost:${new URL(api.address).port}`;

    log(`object store: ${config.s3 ? `s3://${config.s3.bucket}` : config.objectStoreDir}`);
    log(`API:          ${apiUrl}   (GET ${apiUrl}/health)`);
    log(`Temporal:     ${temporal.address}${temporal.uiUrl ? `   Web UI: ${temporal.uiUrl}` : ''}`);
    log(`Postgres:     ${postgres.url.replace(/\/\/[^@]*@/, '//***@')}`);
    log(`email:        ${mailpit ? `Mailpit inbox ${mailpit.httpUrl}   (SMTP ${mailpit.smtpUrl})` : 'SMTP_URL'}`);
    log(`webhooks:     signed with ${process.env.WEBHOOK_SECRET ? 'WEBHOOK_SECRET' : `the secret in ${path.join(config.dataDir, 'webhook-secret')}`}`);
    log(`try:          BATCHFLOW_API_URL=${apiUrl} npx batchflow import examples/users.csv --dataset users --mode upsert`);
    log(`invoicing:    see "Invoicing" in README.md (examples/customers.csv, examples/usage-2026-10.csv)`);

    if (opts.sample) await runSample(new ApiClient(apiUrl));
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

/**
 * Loads the samples once per data directory (their fixed run ids make a restart reuse them): the
 * users, and the customers and October 2026 usage that `batchflow run invoicing --params
 * examples/invoicing-2026-10.yaml` bills.
 */
async function runSample(api: ApiClient): Promise<void> {
  const samples = [
    { runId: 'sample-users-import', file: 'users.csv', dataset: 'users' },
    { runId: 'sample-customers-import', file: 'customers.csv', dataset: 'customers' },
    { runId: 'sample-usage-import', file: 'usage-2026-10.csv', dataset: 'usage_events' },
  ];
  for (const { runId, file, dataset } of samples) {
    const { body } = await api.request<{ existing: boolean }>('POST', '/runs', {
      kind: 'import',
      runId,
      params: { source: example(file), format: 'csv', dataset, mode: 'upsert' },
    });
    log(`sample import ${runId} ${body.existing ? '(already run: reusing it)' : 'started'}`);
    await follow(api, runId);
  }
}
