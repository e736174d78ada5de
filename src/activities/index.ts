import type { DatasetRegistry } from '../datasets';
import type { Pool } from '../db/pool';
import type { ObjectStore } from '../storage';
import { createBulkUpdateActivities } from './bulk-update';
import { createCleanupActivities } from './cleanup';
import { createCustomActivities } from './custom';
import { createDedupeActivities } from './dedupe';
import { createImportActivities } from './import';
import type { ImportReaders } from './import-readers';
import { createRunActivities } from './runs';

export interface ActivityDeps {
  pool: Pool;
  /** The declared datasets, loaded at start. */
  datasets: DatasetRegistry;
  /** Batchflow's object store: reports runs write. */
  store: ObjectStore;
  /** Reader threads for import files. */
  readers: ImportReaders;
  sliceMs: number;
  /** Import and bulk-update batches loading at once, each on its own connection. */
  parallelBatches: number;
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
  };
}
export type Activities = ReturnType<typeof createActivities>;
