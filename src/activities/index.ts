import type { DatasetRegistry } from '../datasets';
import type { Pool } from '../db/pool';
import { createBulkUpdateActivities } from './bulk-update';
import { createCleanupActivities } from './cleanup';
import { createCustomActivities } from './custom';
import { createImportActivities } from './import';
import type { ImportReaders } from './import-readers';
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
}

/** Every activity the worker registers, built from its dependencies. */
export function createActivities(deps: ActivityDeps) {
  return {
    ...createRunActivities(deps),
    ...createImportActivities(deps),
    ...createBulkUpdateActivities(deps),
    ...createCleanupActivities(deps),
    ...createCustomActivities(deps),
  };
}
export type Activities = ReturnType<typeof createActivities>;
