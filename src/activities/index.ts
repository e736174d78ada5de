import type { Client } from '@temporalio/client';
import type { DatasetRegistry } from '../datasets';
import type { Pool } from '../db/pool';
import type { ObjectAccess, ObjectStore } from '../storage';
import { createAggregateActivities } from './aggregate';
import { createBulkUpdateActivities } from './bulk-update';
import { createCacheRefreshActivities, type UpstreamAccess } from './cache-refresh';
import { createCleanupActivities } from './cleanup';
import { createCustomActivities } from './custom';
import { createDedupeActivities } from './dedupe';
import { createExportActivities } from './export';
import { createImportActivities } from './import';
import type { ImportReaders } from './import-readers';
import { createReportActivities } from './report';
import { createRunActivities } from './runs';

export interface ActivityDeps {
  pool: Pool;
  /** The declared datasets, loaded at start. */
  datasets: DatasetRegistry;
  /** Reader threads for import files. */
  readers: ImportReaders;
  sliceMs: number;
  /** Import and bulk-update batches loading at once, each on its own connection. */
  parallelBatches: number;
  /** Batchflow's object store, where the weekly report and dedupe reports are written. */
  store: ObjectStore;
  /** Temporal, for reports on the runs of this task queue. */
  client: Client;
  taskQueue: string;
  /** The object store and S3, where exports go. */
  objects: ObjectAccess;
  /** The upstream origins cache refreshes may call, and the secrets their headers may name. */
  upstream: UpstreamAccess;
}

/** Every activity the worker registers, built from its dependencies. */
export function createActivities(deps: ActivityDeps) {
  return {
    ...createRunActivities(deps),
    ...createImportActivities(deps),
    ...createBulkUpdateActivities(deps),
    ...createCleanupActivities(deps),
    ...createCustomActivities(deps),
    ...createDedupeActivities(deps),
    ...createAggregateActivities(deps),
    ...createReportActivities(deps),
    ...createExportActivities(deps),
    ...createCacheRefreshActivities(deps),
  };
}
export type Activities = ReturnType<typeof createActivities>;
