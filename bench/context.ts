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
  /** Figures a workload reports besides the shared ones (cache-refresh-10k: its ideal time and ideal ÷ ours). */
  extra?: Record<string, number>;
}

export const log = (m: string) => console.log(`[bench] ${m}`);
