import type { Client } from '@temporalio/client';
import type { RunService } from '../src/api/runs';
import type { Pool } from '../src/db/pool';

/** What every workload gets: the services, the worker's run service, and where to put files. */
export interface BenchContext {
  pool: Pool;
  databaseUrl: string;
  runs: RunService;
  client: Client;
  tmp: string;
  rows: number;
  batchSize: number;
}

export interface WorkloadResult {
  oursSeconds: number;
  referenceSeconds: number;
  /** Figures of the workload's own (a dedupe's recall), reported beside the times. */
  extra?: Record<string, number>;
}

export const log = (m: string) => console.log(`[bench] ${m}`);
