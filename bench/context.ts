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
  /** The worker's data directory (its local object store is `objects/` in it). */
  dataDir: string;
  /** The bench's Mailpit: SMTP for the worker and the references, HTTP to count what arrived. */
  smtpUrl: string;
  mailpitUrl: string;
}

export interface WorkloadResult {
  oursSeconds: number;
  referenceSeconds: number;
  /** Figures of the workload's own, reported as they are. */
  extra?: Record<string, unknown>;
}

export const log = (m: string) => console.log(`[bench] ${m}`);
