import type { Client } from '@temporalio/client';
import type { DatasetRegistry } from '../datasets';
import type { Pool } from '../db/pool';
import type { Party } from '../invoicing/pdf';
import { createDeliverer } from '../notifications/deliver';
import type { Mailer } from '../notifications/mailer';
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
import { createInvoicingActivities } from './invoicing';
import { createNotificationActivities } from './notifications';
import { createReportActivities } from './report';
import { createRunActivities } from './runs';

export interface ActivityDeps {
  pool: Pool;
  /** A few connections apart from `pool`, for statements that commit while a batch holds its transaction. */
  autocommitPool: Pool;
  /** The declared datasets, loaded at start. */
  datasets: DatasetRegistry;
  /** Reader threads for import files. */
  readers: ImportReaders;
  sliceMs: number;
  /** Import and bulk-update batches loading at once, each on its own connection. */
  parallelBatches: number;
  /** Batchflow's object store, where the weekly report, dedupe reports and invoice PDFs are written. */
  store: ObjectStore;
  /** Temporal, for reports on the runs of this task queue. */
  client: Client;
  taskQueue: string;
  /** The object store and S3, where exports go. */
  objects: ObjectAccess;
  /** The upstream origins cache refreshes may call, and the secrets their headers may name. */
  upstream: UpstreamAccess;
  mailer: Mailer;
  emailFrom: string;
  /** Signs webhook deliveries; without it they are recorded as failed. */
  webhookSecret?: string;
  /** Who issues invoices. */
  seller: Party;
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
    ...createInvoicingActivities(deps),
    ...createNotificationActivities({ pool: deps.pool, deliverer: createDeliverer(deps) }),
  };
}
export type Activities = ReturnType<typeof createActivities>;
