/**
 * `npm test` (after typecheck and lint): starts a throwaway stack (Temporal dev server, Postgres,
 * MinIO, Mailpit) on free ports in a temporary directory, runs the unit and integration tests
 * against it with node's test runner, and stops it. `--unit` runs the unit tests alone, without
 * services. The invoice tests read PDFs with poppler's `pdftotext`: when it is missing, it is
 * installed with apt-get (as root), or the run stops at once naming the package (poppler-utils).
 *
 * KEEP_TEST_STACK=1 keeps the temporary directory (service logs, data, workflow bundle).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { bundleWorkflowCode } from '@temporalio/worker';
import { createKey } from '../src/api/keys';
import { migrate } from '../src/db/migrate';
import { createPool } from '../src/db/pool';
import { searchAttributeTypes } from '../src/jobs';
import { newWebhookSecret } from '../src/notifications/signing';
import { startMailpit } from '../src/stack/mailpit';
import { ensureBucket, startMinio } from '../src/stack/minio';
import { startPostgres } from '../src/stack/postgres';
import { startTemporal } from '../src/stack/temporal';
import { ensureSystemTool, pdftotext } from '../src/stack/tools';

const root = path.resolve(import.meta.dirname, '..');
const log = (m: string) => console.log(`[test] ${m}`);
const bucket = 'batchflow-test';
/** The test mail server refuses recipients outside these domains (550), so tests can see a refusal. */
const deliverableRecipients = '^[^@]+@[^@]+[.](?:com|org|net|test)$';

/** test/<dir>/*.test.ts, sorted (node 20's --test neither expands globs nor finds .ts files). */
const testFiles = (dir: string): string[] => {
  const abs = path.join(root, 'test', dir);
  if (!fs.existsSync(abs)) return [];
  return fs
    .readdirSync(abs)
    .filter((f) => f.endsWith('.test.ts'))
    .sort()
    .map((f) => path.join('test', dir, f));
};

let testProcess: ChildProcess | undefined;
/** Set when SIGINT/SIGTERM/SIGHUP stopped the run: the exit code is then 128 + its number. */
let signalled: NodeJS.Signals | undefined;
const signalExitCode = (signal: NodeJS.Signals) => 128 + os.constants.signals[signal];
process.once('exit', () => {
  if (testProcess && testProcess.exitCode === null && testProcess.signalCode === null) testProcess.kill('SIGKILL');
});

function runNodeTests(files: string[], env: NodeJS.ProcessEnv): Promise<number> {
  if (files.length === 0) {
    log('no test files');
    return Promise.resolve(1);
  }
  const child = spawn(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-timeout=600000', ...files], { cwd: root, env, stdio: 'inherit' });
  testProcess = child;
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => resolve(code ?? (signal === 'SIGINT' ? 130 : 1)));
  });
}

const seconds = (since: number) => `${((Date.now() - since) / 1000).toFixed(1)}s`;

/** Runs `start`, logging how long it took; on failure, says which service failed. */
async function timed<T>(name: string, start: () => Promise<T>): Promise<T> {
  const t0 = Date.now();
  try {
    const result = await start();
    log(`${name} up in ${seconds(t0)}`);
    return result;
  } catch (err) {
    throw new Error(`starting ${name} failed: ${(err as Error).message}`, { cause: err });
  }
}

async function main(): Promise<number> {
  try {
    await ensureSystemTool(pdftotext, log);
  } catch (err) {
    console.error(`[test] ${(err as Error).message}`);
    return 1;
  }
  if (process.argv.includes('--unit')) return runNodeTests(testFiles('unit'), process.env);

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'batchflow-test-'));
  // Postgres runs as the `postgres` user when we are root: it must be able to enter this directory.
  fs.chmodSync(tmp, 0o755);
  const stops: (() => Promise<void>)[] = [];
  let cleaning: Promise<void> | undefined;
  const cleanup = () =>
    (cleaning ??= (async () => {
      await Promise.all(stops.splice(0).map((stop) => stop().catch((err: Error) => log(`stopping: ${err.message}`))));
      if (process.env.KEEP_TEST_STACK === '1') log(`kept ${tmp}`);
      else fs.rmSync(tmp, { recursive: true, force: true });
    })());
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      if (signalled) return;
      signalled = signal;
      log(`${signal}: stopping the test stack`);
      testProcess?.kill(signal);
      void cleanup().finally(() => process.exit(signalExitCode(signal)));
    });
  }

  try {
    const t0 = Date.now();
    log(`starting Temporal, Postgres, MinIO and Mailpit in ${tmp}`);
    const services = await Promise.allSettled([
      timed('Temporal', () => startTemporal({ uiPort: false, searchAttributes: searchAttributeTypes, logFile: path.join(tmp, 'temporal.log'), log })),
      timed('Postgres', () => startPostgres({ dataDir: path.join(tmp, 'postgres'), ephemeral: true, logFile: path.join(tmp, 'postgres.log'), log })),
      timed('MinIO', () => startMinio({ dataDir: path.join(tmp, 'minio'), logFile: path.join(tmp, 'minio.log'), log })),
      timed('Mailpit', () => startMailpit({ allowedRecipients: deliverableRecipients, logFile: path.join(tmp, 'mailpit.log'), log })),
    ]);
    for (const s of services) if (s.status === 'fulfilled') stops.push(() => s.value.stop());
    const failed = services.filter((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed.length) {
      for (const f of failed) console.error(`[test] ${(f.reason as Error).message}`);
      return 1;
    }
    const [temporal, postgres, minio, mailpit] = services.map((s) => (s as PromiseFulfilledResult<unknown>).value) as [
      Awaited<ReturnType<typeof startTemporal>>,
      Awaited<ReturnType<typeof startPostgres>>,
      Awaited<ReturnType<typeof startMinio>>,
      Awaited<ReturnType<typeof startMailpit>>,
    ];

    await migrate(postgres.url);
    await ensureBucket(minio, bucket);
    // The admin key tests call the API with (the stack helper's inject, a CLI a test runs).
    const pool = createPool(postgres.url, 1);
    const { key: apiKey } = await createKey(pool, { name: 'scripts/test.ts' }, { name: 'test-admin', scopes: ['admin'] }).finally(() => pool.end());
    const t1 = Date.now();
    const bundle = await bundleWorkflowCode({ workflowsPath: path.join(root, 'src/workflows/index.ts'), logger: quietBundlerLogger });
    const bundlePath = path.join(tmp, 'workflow-bundle.js');
    fs.writeFileSync(bundlePath, bundle.code);
    log(`workflow bundle in ${seconds(t1)}`);

    log(`stack ready in ${seconds(t0)}: Temporal ${temporal.address} · Postgres ${postgres.url} · MinIO ${minio.endpoint} (bucket ${bucket}) · Mailpit ${mailpit.httpUrl} · ${tmp}`);
    // `npm test -- bulk cleanup` runs only the files whose path contains one of the words.
    const only = process.argv.slice(2).filter((a) => !a.startsWith('--'));
    const files = [...testFiles('unit'), ...testFiles('integration')].filter((f) => only.length === 0 || only.some((w) => f.includes(w)));
    const code = await runNodeTests(files, {
      ...process.env,
      TEMPORAL_ADDRESS: temporal.address,
      TEMPORAL_NAMESPACE: 'default',
      DATABASE_URL: postgres.url,
      S3_ENDPOINT: minio.endpoint,
      S3_REGION: minio.region,
      S3_ACCESS_KEY_ID: minio.accessKey,
      S3_SECRET_ACCESS_KEY: minio.secretKey,
      S3_BUCKET: bucket,
      S3_FORCE_PATH_STYLE: 'true',
      SMTP_URL: mailpit.smtpUrl,
      // Read by the tests (test/helpers/mailpit.ts), not by Batchflow.
      MAILPIT_API_URL: mailpit.httpUrl,
      WEBHOOK_SECRET: newWebhookSecret(),
      BATCHFLOW_WORKFLOW_BUNDLE: bundlePath,
      // Workers import local files from $BATCHFLOW_DATA_DIR/imports only: test fixtures go there.
      BATCHFLOW_DATA_DIR: path.join(tmp, 'data'),
      BATCHFLOW_TEST_TMP: tmp,
      BATCHFLOW_API_KEY: apiKey,
      // Workers started by tests leave schedules alone: the shipped hourly cleanup would delete
      // other tests' rows. Schedule tests sync files of their own.
      BATCHFLOW_SCHEDULES: 'off',
    });
    if (code !== 0 && !signalled) log(`tests failed (exit ${code}); service logs: ${tmp}${process.env.KEEP_TEST_STACK === '1' ? '' : ' (removed; KEEP_TEST_STACK=1 keeps them)'}`);
    return code;
  } finally {
    await cleanup();
  }
}

/** The bundler logs every step at info level: keep warnings and errors only. */
const quietBundlerLogger = {
  log: () => undefined,
  trace: () => undefined,
  debug: () => undefined,
  info: () => undefined,
  warn: (message: string, meta?: Record<string, unknown>) => console.warn(`[bundler] ${message}`, meta ?? ''),
  error: (message: string, meta?: Record<string, unknown>) => console.error(`[bundler] ${message}`, meta ?? ''),
};

main().then(
  (code) => process.exit(signalled ? signalExitCode(signalled) : code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
