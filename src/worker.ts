import { fileURLToPath } from 'node:url';
import { NativeConnection, Worker } from '@temporalio/worker';
import { createActivities } from './activities';
import { createImportReaders } from './activities/import-readers';
import { loadConfig, requireDatabaseUrl, type Config } from './config';
import { migrate } from './db/migrate';
import { createPool } from './db/pool';
import { createMailer } from './notifications/mailer';
import { createObjectStore } from './storage';

const workflowsPath = fileURLToPath(new URL('./workflows/index.ts', import.meta.url));

/** Builds a worker for the configured task queue; the caller runs and shuts it down. */
export async function createWorker(config: Config, opts: { log?: (msg: string) => void } = {}) {
  const databaseUrl = requireDatabaseUrl(config);
  await migrate(databaseUrl, opts.log);
  const pool = createPool(databaseUrl);
  const autocommitPool = createPool(databaseUrl, 4);
  const readers = createImportReaders(config);
  const mailer = createMailer(config.email);
  const connection = await NativeConnection.connect({ address: config.temporal.address });
  const worker = await Worker.create({
    connection,
    namespace: config.temporal.namespace,
    taskQueue: config.temporal.taskQueue,
    ...(config.workflowBundlePath ? { workflowBundle: { codePath: config.workflowBundlePath } } : { workflowsPath }),
    activities: createActivities({
      pool,
      autocommitPool,
      readers,
      sliceMs: config.sliceMs,
      parallelBatches: config.parallelBatches,
      store: createObjectStore(config),
      mailer,
      emailFrom: config.email.from,
      webhookSecret: config.webhookSecret,
      seller: config.seller,
    }),
    // Slices are I/O bound and take a connection each: keep their number under the pool size.
    maxConcurrentActivityTaskExecutions: 8,
    shutdownGraceTime: '20 seconds',
    // Heartbeats (one per batch) carry cancellations back: send them promptly so a cancelled
    // slice stops at its next batch boundary rather than at the end of its slice.
    maxHeartbeatThrottleInterval: '1 second',
  });
  return {
    worker,
    /** Runs until shutdown() (or a signal), then releases the connection, the pool and the reader threads. */
    run: async () => {
      try {
        await worker.run();
      } finally {
        await connection.close();
        await pool.end();
        await autocommitPool.end();
        await readers.close();
        mailer.close();
      }
    },
  };
}

/** `batchflow worker`: a worker process against external services. */
export async function runWorker(): Promise<void> {
  const config = loadConfig();
  const { run } = await createWorker(config, { log: (m) => console.log(`[worker] ${m}`) });
  console.log(`[worker] polling task queue "${config.temporal.taskQueue}" on ${config.temporal.address}`);
  // Worker.run() shuts down gracefully on SIGINT/SIGTERM: running slices end at a batch boundary.
  await run();
}
