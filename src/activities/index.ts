import type { Pool } from '../db/pool';
import type { Party } from '../invoicing/pdf';
import { createDeliverer } from '../notifications/deliver';
import type { Mailer } from '../notifications/mailer';
import type { ObjectStore } from '../storage';
import { createBulkUpdateActivities } from './bulk-update';
import { createCleanupActivities } from './cleanup';
import { createCustomActivities } from './custom';
import { createImportActivities } from './import';
import type { ImportReaders } from './import-readers';
import { createInvoicingActivities } from './invoicing';
import { createNotificationActivities } from './notifications';
import { createRunActivities } from './runs';

export interface ActivityDeps {
  pool: Pool;
  /** A few connections apart from `pool`, for statements that commit while a batch holds its transaction. */
  autocommitPool: Pool;
  /** Reader threads for import files. */
  readers: ImportReaders;
  sliceMs: number;
  /** Import and bulk-update batches loading at once, each on its own connection. */
  parallelBatches: number;
  /** Where invoice PDFs go. */
  store: ObjectStore;
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
    ...createInvoicingActivities(deps),
    ...createNotificationActivities({ pool: deps.pool, deliverer: createDeliverer(deps) }),
  };
}
export type Activities = ReturnType<typeof createActivities>;
