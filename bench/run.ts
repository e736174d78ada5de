/**
 * `npm run bench`: Batchflow against the plain-Postgres reference on the same data, same run.
 * It starts its own Temporal dev server, Postgres, MinIO and Mailpit on free ports. Its last line is one
 * JSON object: workload name → { oursSeconds, referenceSeconds, ratio, peakRssMb, ...its own figures }.
 */
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { bundleWorkflowCode } from '@temporalio/worker';
import { createRunService } from '../src/api/runs';
import { loadConfig } from '../src/config';
import { loadDatasets } from '../src/datasets';
import { migrate } from '../src/db/migrate';
import { createPool } from '../src/db/pool';
import { importParamsSchema } from '../src/jobs/import';
import type { RunResult } from '../src/jobs/run';
import { searchAttributeTypes } from '../src/jobs';
import { startMailpit } from '../src/stack/mailpit';
import { ensureBucket, startMinio } from '../src/stack/minio';
import { startPostgres } from '../src/stack/postgres';
import { startTemporal } from '../src/stack/temporal';
import { createObjectStore } from '../src/storage';
import { connectTemporal } from '../src/temporal';
import { benchBulkUpdate } from './bulk-update';
import { benchInvoicing } from './invoicing';
import { benchDedupe } from './dedupe';
import { benchExport } from './export';
import { benchCacheRefresh } from './cache-refresh';
import { log, type BenchContext, type WorkloadResult } from './context';

const ROWS = Number(process.env.BENCH_ROWS ?? 1_000_000);
const DEFAULT_BATCH_SIZE = 25_000;
const repoRoot = path.resolve(import.meta.dirname, '..');
const exec = promisify(execFile);

async function generateUsersCsv(file: string, rows: number): Promise<void> {
  const out = fs.createWriteStream(file);
  out.write('email,name,role,status,signup_date\n');
  const roles = ['user', 'user', 'user', 'admin', 'moderator'];
  const statuses = ['active', 'active', 'pending', 'inactive'];
  let chunk = '';
  for (let i = 1; i <= rows; i++) {
    chunk += `user${i}@example.com,"User ${i}, Bench",${roles[i % 5]},${statuses[i % 4]},2024-${String((i % 12) + 1).padStart(2, '0')}-${String((i % 28) + 1).padStart(2, '0')}\n`;
    if (chunk.length > 1 << 20) {
      if (!out.write(chunk)) await once(out, 'drain');
      chunk = '';
    }
  }
  out.end(chunk);
  await once(out, 'finish');
}

/** The node flags of package.json's `worker` script: the bench runs its workers as users do. */
const workerNodeArgs = (JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { scripts: { worker: string } }).scripts.worker
  .split(' ')
  .filter((arg) => arg.startsWith('--'));

/** Peak resident set of a process, from the kernel's high-water mark. */
function peakRssMb(pid: number): number {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return Math.round(kb / 1024);
}

/** Workload `import-1m`: a generated users CSV, through psql \copy and through the import workflow. */
async function benchImport(ctx: BenchContext): Promise<WorkloadResult> {
  const { pool, rows } = ctx;
  const csv = path.join(ctx.tmp, 'users-1m.csv');
  log(`generating ${rows.toLocaleString()} users`);
  await generateUsersCsv(csv, rows);
  log(`file: ${(fs.statSync(csv).size / 2 ** 20).toFixed(1)} MiB`);
  const countUsers = async () => (await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM users')).rows[0]!.n;
  const truncate = () => pool.query('TRUNCATE users RESTART IDENTITY CASCADE; TRUNCATE run_errors, run_checkpoints, import_keys, import_batches; CHECKPOINT');

  // Reference: what a careful engineer would script by hand.
  await truncate();
  const script = path.join(ctx.tmp, 'reference.sql');
  fs.writeFileSync(
    script,
    `CREATE TEMP TABLE stage (email text, name text, role text, status text, signup_date date);
\\copy stage FROM '${csv}' WITH (FORMAT csv, HEADER true)
INSERT INTO users (email, name, role, status, signup_date) SELECT email, name, role, status, signup_date FROM stage
ON CONFLICT (email) DO UPDATE SET name = EXCLUDED.name, role = EXCLUDED.role, status = EXCLUDED.status,
  signup_date = EXCLUDED.signup_date, updated_at = now();
`,
  );
  log('reference: psql \\copy into a staging table + INSERT ... ON CONFLICT');
  let t0 = performance.now();
  await exec('psql', [ctx.databaseUrl, '-v', 'ON_ERROR_STOP=1', '-q', '-f', script]);
  const referenceSeconds = (performance.now() - t0) / 1000;
  const refRows = await countUsers();
  log(`reference: ${referenceSeconds.toFixed(2)} s, ${Math.round(rows / referenceSeconds).toLocaleString()} rows/s (${refRows} rows)`);

  // Ours: the import workflow on the worker process.
  await truncate();
  const params = importParamsSchema.parse({ source: csv, dataset: 'users', mode: 'upsert', batchSize: ctx.batchSize });
  log(`ours: import workflow, batch size ${params.batchSize}`);
  t0 = performance.now();
  const { runId } = await ctx.runs.start('import', params, { runId: `bench-import-${process.pid}`, startedBy: 'bench' });
  const result = (await ctx.client.workflow.getHandle(runId).result()) as RunResult;
  const oursSeconds = (performance.now() - t0) / 1000;
  const ourRows = await countUsers();
  log(`ours: ${oursSeconds.toFixed(2)} s, ${Math.round(rows / oursSeconds).toLocaleString()} rows/s (${ourRows} rows, status ${result.status})`);
  if (ourRows !== rows || refRows !== rows) throw new Error(`row counts differ: ours ${ourRows}, reference ${refRows}, expected ${rows}`);
  return { oursSeconds, referenceSeconds };
}

/** The workloads, in order (a later one may use the rows an earlier one left). */
const workloads: [name: string, run: (ctx: BenchContext) => Promise<WorkloadResult>, targetRatio: number, targetRssMb?: number][] = [
  ['import-1m', benchImport, 1.5],
  ['bulk-update-1m', benchBulkUpdate, 2],
  ['export-1m', benchExport, 1.5],
  ['dedupe-1m', benchDedupe, 2],
  // Against a plain client of the same fake upstream; the issue's own target is ideal ÷ ours >= 0.8.
  ['cache-refresh-10k', benchCacheRefresh, 1.25],
  ['invoicing-10k', benchInvoicing, 1.5, 400],
];

async function main(): Promise<void> {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'batchflow-bench-'));
  // Postgres runs as its own user when we are root: it must be able to enter this directory.
  fs.chmodSync(tmp, 0o755);
  const stops: (() => Promise<void>)[] = [];
  try {
    log(`starting Temporal, Postgres, MinIO and Mailpit in ${tmp}`);
    const [temporal, postgres, minio, mailpit] = await Promise.all([
      startTemporal({ uiPort: false, searchAttributes: searchAttributeTypes, logFile: path.join(tmp, 'temporal.log'), log }),
      startPostgres({ dataDir: path.join(tmp, 'pg'), ephemeral: true, log }),
      startMinio({ dataDir: path.join(tmp, 'minio'), logFile: path.join(tmp, 'minio.log'), log }),
      startMailpit({ dbFile: path.join(tmp, 'mailpit.db'), logFile: path.join(tmp, 'mailpit.log'), log }),
    ]);
    stops.push(() => temporal.stop(), () => postgres.stop(), () => minio.stop(), () => mailpit.stop());
    await migrate(postgres.url);
    const bucket = 'batchflow-bench';
    await ensureBucket(minio, bucket);
    // The worker's object store: exports and invoice PDFs go to MinIO.
    const s3Env = { S3_ENDPOINT: minio.endpoint, S3_REGION: minio.region, S3_ACCESS_KEY_ID: minio.accessKey, S3_SECRET_ACCESS_KEY: minio.secretKey, S3_BUCKET: bucket, S3_FORCE_PATH_STYLE: 'true' };

    const bundle = await bundleWorkflowCode({ workflowsPath: path.join(repoRoot, 'src/workflows/index.ts'), logger: undefined });
    const bundlePath = path.join(tmp, 'workflows.js');
    fs.writeFileSync(bundlePath, bundle.code);

    // Ours: the workflows on a worker process of its own, through Temporal: a fresh one per
    // workload, so that each reports its own peak RSS, not what an earlier workload left behind.
    const taskQueue = `bench-${process.pid}`;
    const startBenchWorker = async () => {
      // Node's flags as `npm run worker` gives them (the old generation's bound); BENCH_WORKER_NODE_ARGS
      // adds more (--cpu-prof profiles the worker).
      const worker = spawn(process.execPath, [...workerNodeArgs, ...(process.env.BENCH_WORKER_NODE_ARGS?.split(' ').filter(Boolean) ?? []), path.join(repoRoot, 'bin/batchflow.js'), 'worker'], {
        cwd: repoRoot,
        // No metrics endpoints: their default ports may be taken on a shared machine.
        env: {
          ...process.env,
          ...s3Env,
          TEMPORAL_ADDRESS: temporal.address,
          DATABASE_URL: postgres.url,
          TASK_QUEUE: taskQueue,
          BATCHFLOW_WORKFLOW_BUNDLE: bundlePath,
          BATCHFLOW_LOCAL_SOURCE_DIRS: tmp,
          BATCHFLOW_SCHEDULES: 'off',
          BATCHFLOW_WORKER_METRICS_PORT: '0',
          BATCHFLOW_TEMPORAL_METRICS_PORT: '0',
          // The cache workload's fake upstream listens on a free local port.
          BATCHFLOW_UPSTREAM_ORIGINS: 'http://127.0.0.1:*',
          // Invoices are emailed to the bench's Mailpit.
          SMTP_URL: mailpit.smtpUrl,
        },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const stop = async () => {
        if (worker.exitCode === null) {
          worker.kill('SIGTERM');
          await once(worker, 'exit');
        }
      };
      stops.unshift(stop);
      await new Promise<void>((resolve, reject) => {
        worker.stdout.on('data', (d: Buffer) => d.toString().includes('polling task queue') && resolve());
        worker.once('exit', (code) => reject(new Error(`worker exited with ${code}`)));
      });
      return { pid: worker.pid!, stop };
    };
    const config = loadConfig({ ...process.env, ...s3Env, TEMPORAL_ADDRESS: temporal.address, TASK_QUEUE: taskQueue });
    const connection = await connectTemporal(config);
    stops.unshift(() => connection.close());
    const pool = createPool(postgres.url, 2);
    stops.unshift(() => pool.end());
    const ctx: BenchContext = {
      pool,
      databaseUrl: postgres.url,
      runs: createRunService(connection.client, taskQueue, pool),
      client: connection.client,
      datasets: loadDatasets(config.datasetDirs),
      tmp,
      rows: ROWS,
      batchSize: Number(process.env.BENCH_BATCH_SIZE ?? DEFAULT_BATCH_SIZE),
      store: createObjectStore(config),
      smtpUrl: mailpit.smtpUrl,
      mailpitUrl: mailpit.httpUrl,
    };

    const results: Record<string, Omit<WorkloadResult, 'extra'> & NonNullable<WorkloadResult['extra']>> = {};
    // BENCH_ONLY=import-1m runs only the named workloads (comma-separated).
    const only = process.env.BENCH_ONLY?.split(',');
    for (const [name, run, targetRatio, targetRssMb = 300] of workloads.filter(([name]) => !only || only.includes(name))) {
      const worker = await startBenchWorker();
      const { oursSeconds, referenceSeconds, extra } = await run(ctx);
      const rss = peakRssMb(worker.pid);
      await worker.stop();
      const ratio = oursSeconds / referenceSeconds;
      log(`${name}: ratio ${ratio.toFixed(2)} (target <= ${targetRatio}), worker peak RSS ${rss} MB (target < ${targetRssMb})`);
      results[name] = { oursSeconds: round(oursSeconds), referenceSeconds: round(referenceSeconds), ratio: round(ratio), peakRssMb: rss, ...extra };
    }
    console.log(JSON.stringify(results));
  } finally {
    for (const stop of stops) await stop().catch(() => undefined);
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

const round = (n: number) => Math.round(n * 100) / 100;

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
