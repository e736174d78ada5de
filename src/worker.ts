import { fileURLToPath } from 'node:url';
import { NativeConnection, Runtime, Worker, type InjectedSinks } from '@temporalio/worker';
import { createActivities, type Activities } from './activities';
import { FailurePolicy } from './activities/failure-policy';
import { createImportReaders } from './activities/import-readers';
import { loadConfig, requireDatabaseUrl, type Config } from './config';
import type { DatasetRegistry } from './datasets';
import { openDatasets } from './datasets/check';
import { migrate } from './db/migrate';
import { createPool, type Pool } from './db/pool';
import { runState } from './db/queries';
import { createLogger, temporalLogger, type Logger } from './log';
import { serveMetrics } from './metrics/server';
import { startDatasetSeries, workerMetrics, workerRegistry } from './metrics/worker';
import { createMailer } from './notifications/mailer';
import { assertRollupsMatchDatasets } from './rollups';
import { syncDeclaredSchedules, type SyncOutcome } from './schedules/sync';
import { createObjectAccess, createObjectStore } from './storage';
import { connectTemporal } from './temporal';
import type { RunSinks } from './workflows/run-tracker';

const workflowsPath = fileURLToPath(new URL('./workflows/index.ts', import.meta.url));

// Slices running at once on one worker.
const MAX_SLICES = 8;
// How often a worker purges run state older than the retention period (and once at start).
const PURGE_EVERY_MS = 60 * 60 * 1000;

/**
 * Purges expired run state now and then, until the returned function is called. Workers purging
 * at the same time only delete the same rows.
 */
function purgeExpiredRuns(pool: Pool, retentionMs: number, log: (msg: string) => void): () => void {
  const purge = () =>
    runState.purge(pool, new Date(Date.now() - retentionMs)).then(
      (n) => n > 0 && log(`purged the state of ${n} run(s) older than the retention period`),
      (err: Error) => log(`purging old run state failed (next try in an hour): ${err.message}`),
    );
  void purge();
  const timer = setInterval(() => void purge(), PURGE_EVERY_MS);
  timer.unref();
  return () => clearInterval(timer);
}

/** Where workflows report runs starting and ending: the worker's metrics. */
const sinks: InjectedSinks<RunSinks> = {
  runs: {
    started: { fn: (_info, kind) => workerMetrics.runStarted(kind) },
    finished: { fn: (_info, kind, status) => workerMetrics.runFinished(kind, status) },
  },
};

/**
 * Builds a worker for the configured task queue; the caller runs and shuts it down. Tests may wrap
 * the real activities (to hold a slice back, or to fail one).
 */
export async function createWorker(config: Config, opts: { log?: (msg: string) => void; wrapActivities?: (activities: Activities) => Partial<Activities> } = {}) {
  const log = opts.log ?? (() => undefined);
  const databaseUrl = requireDatabaseUrl(config);
  await migrate(databaseUrl, log);
  // Each slice loads up to parallelBatches batches, each on a connection of its own, and reads on
  // another now and then: 8 slices can want more connections than the pool's 10. They then wait,
  // in the order they asked, so the oldest batch of a slice (which the later ones wait for to
  // commit) always gets a connection first: slower, never stuck.
  const pool = createPool(databaseUrl, 10, { lockTimeoutMs: config.lockTimeoutMs });
  let datasets: DatasetRegistry;
  try {
    datasets = await openDatasets(config.datasetDirs, pool, log);
    // Roll-ups count declared datasets: a measure naming a column they do not declare stops the worker here.
    assertRollupsMatchDatasets(datasets);
    startDatasetSeries(datasets.names);
  } catch (err) {
    await pool.end();
    throw err;
  }
  const temporal = await connectTemporal(config);
  let schedules: SyncOutcome | undefined;
  try {
    // A bad schedules file stops the worker here, naming the schedule and the field.
    if (config.schedulesFile) schedules = await syncDeclaredSchedules(temporal.client, { file: config.schedulesFile, taskQueue: config.temporal.taskQueue, datasets, log });
  } catch (err) {
    await temporal.close();
    await pool.end();
    throw err;
  }
  const autocommitPool = createPool(databaseUrl, 4);
  const readers = createImportReaders(config);
  const objects = createObjectAccess(config);
  const mailer = createMailer(config.email);
  const connection = await NativeConnection.connect({ address: config.temporal.address });
  const worker = await Worker.create({
    connection,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.taskQueue,
    ...(config.workflowBundlePath ? { workflowBundle: { codePath: config.workflowBundlePath } } : { workflowsPath }),
    activities: withWrapped(
      createActivities({
        pool,
        autocommitPool,
        datasets,
        readers,
        sliceMs: config.sliceMs,
        parallelBatches: config.parallelBatches,
        store: createObjectStore(config, objects.s3?.client),
        objects,
        client: temporal.client,
        taskQueue: config.temporal.taskQueue,
        upstream: config.upstream,
        mailer,
        emailFrom: config.email.from,
        webhookSecret: config.webhookSecret,
        seller: config.seller,
      }),
      opts.wrapActivities,
    ),
    sinks,
    // Permanent database errors fail at once; other failures retry up to config.maxAttempts.
    interceptors: { activity: [(ctx) => ({ inbound: new FailurePolicy(ctx, config.maxAttempts) })] },
    maxConcurrentActivityTaskExecutions: MAX_SLICES,
    shutdownGraceTime: '20 seconds',
    // Heartbeats (one per batch) carry cancellations back: send them promptly so a cancelled
    // slice stops at its next batch boundary rather than at the end of its slice.
    maxHeartbeatThrottleInterval: '1 second',
  });
  return {
    worker,
    /** What the start-up sync did, when the worker syncs schedules. */
    schedules,
    /** Runs until shutdown() (or a signal), then releases the connection, the pool and the reader threads. */
    run: async () => {
      const stopPurging = purgeExpiredRuns(pool, config.runRetentionMs, log);
      try {
        await worker.run();
      } finally {
        stopPurging();
        await connection.close();
        await temporal.close();
        await pool.end();
        await autocommitPool.end();
        await readers.close();
        mailer.close();
        objects.s3?.client.destroy();
      }
    },
  };
}

const withWrapped = (activities: Activities, wrap?: (activities: Activities) => Partial<Activities>) => (wrap ? { ...activities, ...wrap(activities) } : activities);

/**
 * The Temporal runtime of a worker process: the SDK's logs (worker, workflows, activities) through
 * the process's logger, and its metrics on BATCHFLOW_TEMPORAL_METRICS_PORT. Once per process,
 * before any worker connection exists.
 */
export function installWorkerRuntime(config: Config, logger: Logger): void {
  const { host, temporalPort } = config.metrics;
  Runtime.install({
    logger: temporalLogger(logger),
    ...(temporalPort > 0 && {
      telemetryOptions: { metrics: { prometheus: { bindAddress: `${host}:${temporalPort}`, countersTotalSuffix: true, unitSuffix: true, useSecondsForDurations: true } } },
    }),
  });
}

/** Batchflow's worker metrics on BATCHFLOW_WORKER_METRICS_PORT (0: none). */
export async function serveWorkerMetrics(config: Config): Promise<{ url: string; close(): Promise<void> } | undefined> {
  const { host, workerPort } = config.metrics;
  return workerPort === 0 ? undefined : serveMetrics(workerRegistry, host, workerPort, 'BATCHFLOW_WORKER_METRICS_PORT');
}

/** `batchflow worker`: a worker process against external services. */
export async function runWorker(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(config.log, { component: 'worker' });
  installWorkerRuntime(config, logger);
  const metrics = await serveWorkerMetrics(config);
  const { run } = await createWorker(config, { log: (m) => logger.info(m) });
  const { host, temporalPort } = config.metrics;
  logger.info(
    { taskQueue: config.temporal.taskQueue, temporal: config.temporal.address, metrics: metrics?.url, temporalMetrics: temporalPort > 0 ? `http://${host}:${temporalPort}/metrics` : undefined },
    'polling task queue',
  );
  // Worker.run() shuts down gracefully on SIGINT/SIGTERM: running slices end at a batch boundary.
  try {
    await run();
  } finally {
    await metrics?.close();
  }
}
