/**
 * `npm run record-histories`: records one small run of each workflow type (import; bulk update
 * with approval; cleanup; pipeline; custom; export; aggregate; report; cache refresh against a fake
 * upstream; dedupe with an approved merge; invoicing of two sample customers, emailed to Mailpit,
 * with a notification) on a throwaway stack and writes their histories to
 * test/replay/histories/, which test/unit/replay.test.ts replays against the current workflow code.
 *
 * Re-record only when a change to workflow code is meant to break replay of running workflows
 * (and the runs in flight will be drained or reset first); otherwise guard the change with
 * patched() (README: Changing workflow code) and keep the recorded histories.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import protos from '@temporalio/proto';
import { buildApp } from '../src/api/app';
import { createKey } from '../src/api/keys';
import type { RunView } from '../src/api/runs';
import { loadConfig } from '../src/config';
import { codeDatasets, loadDatasets } from '../src/datasets';
import { migrate } from '../src/db/migrate';
import { createPool } from '../src/db/pool';
import { searchAttributeTypes } from '../src/jobs';
import { startMailpit } from '../src/stack/mailpit';
import { startPostgres } from '../src/stack/postgres';
import { startTemporal } from '../src/stack/temporal';
import { connectTemporal } from '../src/temporal';
import { createWorker } from '../src/worker';
import { startFakeUpstream, upstreamMapping } from '../test/helpers/fake-upstream';

const root = path.resolve(import.meta.dirname, '..');
const out = path.join(root, 'test/replay/histories');
const log = (m: string) => console.log(`[record] ${m}`);

const { History } = protos.temporal.api.history.v1;

/**
 * A history as JSON, in protobufjs's object form (read back with History.fromObject): the SDK's
 * own historyToJSON fails with the two protobufjs versions this dependency tree holds.
 */
const historyObject = (history: protos.temporal.api.history.v1.IHistory) => History.toObject(History.fromObject(history), { longs: String, enums: String, bytes: String });

async function main(): Promise<void> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'batchflow-record-'));
  // Postgres runs as the `postgres` user when we are root: it must be able to enter this directory.
  fs.chmodSync(tmp, 0o755);
  const stops: (() => Promise<void>)[] = [];
  try {
    const [temporalServer, postgres] = await Promise.all([
      startTemporal({ uiPort: false, searchAttributes: searchAttributeTypes, logFile: path.join(tmp, 'temporal.log'), log }),
      startPostgres({ dataDir: path.join(tmp, 'postgres'), ephemeral: true, logFile: path.join(tmp, 'postgres.log'), log }),
    ]);
    stops.push(() => temporalServer.stop(), () => postgres.stop());
    await migrate(postgres.url);
    const upstream = await startFakeUpstream();
    stops.push(() => upstream.close());
    const mailpit = await startMailpit({ logFile: path.join(tmp, 'mailpit.log'), log });
    stops.push(() => mailpit.stop());
    const config = loadConfig({
      ...process.env,
      TEMPORAL_ADDRESS: temporalServer.address,
      DATABASE_URL: postgres.url,
      TASK_QUEUE: 'record-histories',
      BATCHFLOW_DATA_DIR: path.join(tmp, 'data'),
      BATCHFLOW_SCHEDULES: 'off',
      BATCHFLOW_UPSTREAM_ORIGINS: 'http://127.0.0.1:*',
      BATCHFLOW_ALLOW_SELF_APPROVAL: 'true',
      BATCHFLOW_RATE_LIMIT: '0',
      SMTP_URL: mailpit.smtpUrl,
    });
    const { worker, run } = await createWorker(config, { log });
    const running = run();
    stops.push(async () => {
      worker.shutdown();
      await running;
    });
    const pool = createPool(postgres.url, 2);
    const connection = await connectTemporal(config);
    const app = buildApp({ client: connection.client, pool, config, datasets: loadDatasets(config.datasetDirs, codeDatasets) });
    const { key } = await createKey(pool, { name: 'record-histories' }, { name: 'record-histories', scopes: ['admin'] });
    stops.push(async () => {
      await app.close();
      await connection.close();
      await pool.end();
    });

    const request = async <T>(method: 'GET' | 'POST', url: string, payload?: object): Promise<T> => {
      const res = await app.inject({ method, url, headers: { authorization: `Bearer ${key}` }, ...(payload && { payload }) });
      if (res.statusCode >= 300) throw new Error(`${method} ${url}: ${res.statusCode} ${res.body}`);
      return res.json<T>();
    };
    const until = async (runId: string, done: (run: RunView) => boolean): Promise<RunView> => {
      for (;;) {
        const view = await request<RunView>('GET', `/runs/${runId}`);
        if (done(view)) return view;
        await new Promise((r) => setTimeout(r, 200));
      }
    };
    const finished = (runId: string) => until(runId, (r) => r.status !== 'running');
    const start = (kind: string, runId: string, params: object) => request('POST', '/runs', { kind, runId, params });

    // Rows to work on: 30 users, a third of them pending, a few soft-deleted long ago.
    await pool.query(
      `INSERT INTO users (email, name, status, deleted_at)
       SELECT 'replay.' || g || '@example.com', 'User ' || g, (ARRAY['active', 'pending', 'inactive'])[1 + g % 3], CASE WHEN g % 10 = 0 THEN now() - interval '40 days' END
       FROM generate_series(1, 30) g`,
    );
    const mine = { field: 'email', op: 'starts_with', value: 'replay.' };
    const importsDir = config.localSourceDirs[0]!;
    fs.mkdirSync(importsDir, { recursive: true });
    const csv = path.join(importsDir, 'replay.csv');
    fs.writeFileSync(csv, ['email,name', ...Array.from({ length: 12 }, (_, i) => `imported.${i}@example.com,Imported ${i}`), 'not-an-email,Bad'].join('\n'));

    // Each file is named after its run's id, which replay needs (a pipeline's child ids derive from it).
    const runs: Record<string, () => Promise<unknown>> = {
      'replay-import': async () => {
        await start('import', 'replay-import', { source: csv, dataset: 'users', batchSize: 5 });
        return finished('replay-import');
      },
      'replay-bulk-update': async () => {
        await start('bulk-update', 'replay-bulk-update', { dataset: 'users', where: { and: [mine, { field: 'status', op: 'eq', value: 'pending' }] }, set: { status: 'inactive' }, requiresConfirmation: true, batchSize: 4 });
        await until('replay-bulk-update', (r) => r.progress?.step === 'awaiting_approval');
        await request('POST', '/runs/replay-bulk-update/approve', { comment: 'recorded' });
        return finished('replay-bulk-update');
      },
      'replay-cleanup': async () => {
        await start('cleanup', 'replay-cleanup', { rules: ['expired_sessions', { name: 'replay_soft_deleted', dataset: 'users', where: { and: [mine, { field: 'deleted_at', op: 'lt', value: 'now - 30 days' }] }, batchSize: 2 }] });
        return finished('replay-cleanup');
      },
      'replay-pipeline': async () => {
        await start('pipeline', 'replay-pipeline', {
          steps: [
            { name: 'validate', kind: 'custom', params: { step: 'validate_data', dataset: 'users', where: mine } },
            { name: 'update', kind: 'bulk-update', params: { dataset: 'users', where: mine, set: { status: 'active' } }, dependsOn: ['validate'] },
            { name: 'cleanup', kind: 'cleanup', params: { rules: [{ name: 'replay_inactive', dataset: 'users', where: { and: [mine, { field: 'status', op: 'eq', value: 'inactive' }] } }] }, dependsOn: ['update'] },
          ],
        });
        return finished('replay-pipeline');
      },
      'replay-custom': async () => {
        await start('custom', 'replay-custom', { step: 'validate_data', dataset: 'users', where: mine, batchSize: 10 });
        return finished('replay-custom');
      },
      'replay-export': async () => {
        await start('export', 'replay-export', { dataset: 'users', where: mine, columns: ['email', 'status'] });
        return finished('replay-export');
      },
      'replay-aggregate': async () => {
        await start('aggregate', 'replay-aggregate', { from: '2026-01-01', to: '2026-01-03' });
        return finished('replay-aggregate');
      },
      'replay-report': async () => {
        await start('report', 'replay-report', { from: '2026-01-01', to: '2026-01-07' });
        return finished('replay-report');
      },
      'replay-cache-refresh': async () => {
        await pool.query(`INSERT INTO product_cache (product_id) SELECT 'replay-' || g FROM generate_series(1, 10) g`);
        await start('cache-refresh', 'replay-cache-refresh', {
          dataset: 'product_cache',
          where: { field: 'product_id', op: 'starts_with', value: 'replay-' },
          upstream: { url: `${upstream.url}/products/{product_id}`, mapping: upstreamMapping },
          batchSize: 4,
        });
        return finished('replay-cache-refresh');
      },
      'replay-dedupe': async () => {
        // Three users again under other emails: three groups of exact duplicates by name.
        await pool.query(`INSERT INTO users (email, name, status) SELECT 'replay.again' || g || '@example.com', 'User ' || g, 'active' FROM generate_series(1, 3) g`);
        await start('dedupe', 'replay-dedupe', { dataset: 'users', where: mine, exact: ['name'], merge: { keep: { by: 'id' } }, requiresConfirmation: true, batchSize: 10 });
        await until('replay-dedupe', (r) => r.progress?.step === 'awaiting_approval');
        await request('POST', '/runs/replay-dedupe/approve', { comment: 'recorded' });
        return finished('replay-dedupe');
      },
      'replay-invoicing': async () => {
        for (const [file, dataset] of [['customers.csv', 'customers'], ['usage-2026-10.csv', 'usage_events']] as const) {
          fs.copyFileSync(path.join(root, 'examples', file), path.join(importsDir, file));
          await start('import', `replay-load-${dataset}`, { source: path.join(importsDir, file), dataset });
          await finished(`replay-load-${dataset}`);
        }
        await start('invoicing', 'replay-invoicing', {
          period: '2026-10',
          where: { field: 'external_id', op: 'in', value: ['acme', 'globex'] },
          taxRate: '0.2',
          notify: { on: ['success'], email: ['ops@example.com'] },
        });
        return finished('replay-invoicing');
      },
    };

    fs.mkdirSync(out, { recursive: true });
    for (const [name, record] of Object.entries(runs)) {
      const view = (await record()) as RunView;
      const history = await connection.client.workflow.getHandle(name).fetchHistory();
      fs.writeFileSync(path.join(out, `${name}.json`), JSON.stringify(historyObject(history), null, 1) + '\n');
      log(`${name}: ended ${view.status}, ${history.events?.length} events`);
    }
  } finally {
    for (const stop of stops.reverse()) await stop().catch((err: Error) => log(`stopping: ${err.message}`));
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
