import { fileURLToPath } from 'node:url';
import { NativeConnection, Worker } from '@temporalio/worker';
import { createActivities, type Activities } from './activities';
import { FailurePolicy } from './activities/failure-policy';
import { createImportReaders } from './activities/import-readers';
import { loadConfig, requireDatabaseUrl, type Config } from './config';
import { migrate } from './db/migrate';
import { createPool, type Pool } from './db/pool';
import { runState } from './db/queries';
import { syncDeclaredSchedules, type SyncOutcome } from './schedules/sync';
import { createObjectAccess, createObjectStore } from './storage';
import { connectTemporal } from './temporal';

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

/**
 * Builds a worker for the configured task queue; the caller runs and shuts it down. Tests may wrap
 * the real activities (to hold a slice back, or to fail one).
 */
export async function createWorker(config: Config, opts: { log?: (msg: string) => void; wrapActivities?: (activities: Activities) => Partial<Activities> } = {}) {
  const log = opts.log ?? (() => undefined);
  const databaseUrl = requireDatabaseUrl(config);
  await migrate(databaseUrl, log);
  const temporal = await connectTemporal(config);
  let schedules: SyncOutcome | undefined;
  try {
    // A bad schedules file stops the worker here, naming the schedule and the field.
    if (config.schedulesFile) schedules = await syncDeclaredSchedules(temporal.client, { file: config.schedulesFile, taskQueue: config.temporal.taskQueue, log });
  } catch (err) {
    await temporal.close();
    throw err;
  }
  // Each slice loads up to parallelBatches batches, each on a connection of its own, and reads on
  // another now and then: 8 slices can want more connections than the pool's 10. They then wait,
  // in the order they asked, so the oldest batch of a slice (which the later ones wait for to
  // commit) always gets a connection first: slower, never stuck.
  const pool = createPool(databaseUrl, 10, { lockTimeoutMs: config.lockTimeoutMs });
  const readers = createImportReaders(config);
  const objects = createObjectAccess(config);
  const connection = await NativeConnection.connect({ address: config.temporal.address });
  const worker = await Worker.create({
    connection,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.taskQueue,
    ...(config.workflowBundlePath ? { workflowBundle: { codePath: config.workflowBundlePath } } : { workflowsPath }),
    activities: withWrapped(
      createActivities({
        pool,
        readers,
        sliceMs: config.sliceMs,
        parallelBatches: config.parallelBatches,
        store: createObjectStore(config, objects.s3?.client),
        objects,
        client: temporal.client,
        taskQueue: config.temporal.taskQueue,
      }),
      opts.wrapActivities,
    ),
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
        await readers.close();
        objects.s3?.client.destroy();
      }
    },
  };
}

const withWrapped = (activities: Activities, wrap?: (activities: Activities) => Partial<Activities>) => (wrap ? { ...activities, ...wrap(activities) } : activities);

/** `batchflow worker`: a worker process against external services. */
export async function runWorker(): Promise<void> {
  const config = loadConfig();
  const { run } = await createWorker(config, { log: (m) => console.log(`[worker] ${m}`) });
  console.log(`[worker] polling task queue "${config.temporal.taskQueue}" on ${config.temporal.address}`);
  // Worker.run() shuts down gracefully on SIGINT/SIGTERM: running slices end at a batch boundary.
  await run();
}
