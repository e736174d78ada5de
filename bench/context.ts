import type { Client } from '@temporalio/client';
import type { RunService } from '../src/api/runs';
import type { DatasetRegistry } from '../src/datasets';
import type { Pool } from '../src/db/pool';
import type { ObjectStore } from '../src/storage';

/** What every workload gets: the services, the worker's run service, and where to put files. */
export interface BenchContext {
  pool: Pool;
  databaseUrl: string;
  runs: RunService;
  client: Client;
  /** The declared datasets, as the worker loads them. */
  datasets: DatasetRegistry;
  tmp: string;
  rows: number;
  batchSize: number;
  /** The worker's object store (MinIO), for references that write files where the worker does. */
  store: ObjectStore;
  /** The bench's Mailpit: SMTP for the worker and the references, HTTP to count what arrived. */
  smtpUrl: string;
  mailpitUrl: string;
}

export interface WorkloadResult {
  oursSeconds: number;
  referenceSeconds: number;
  /** Figures a workload reports besides the shared ones, rounded by the workload (dedupe-1m: its recall; cache-refresh-10k: its ideal time and ideal ÷ ours; invoicing-10k: invoices per second and seconds per step). */
  extra?: Record<string, number | Record<string, number>>;
}

export const log = (m: string) => console.log(`[bench] ${m}`);

/** Makes sure `users` holds exactly ctx.rows rows: a workload run alone seeds them in SQL. */
export async function ensureUsers(ctx: BenchContext): Promise<void> {
  const { rows: present } = await ctx.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM users');
  if (present[0]!.n === ctx.rows) return;
  log(`seeding ${ctx.rows.toLocaleString()} users`);
  await ctx.pool.query('TRUNCATE users RESTART IDENTITY CASCADE');
  await ctx.pool.query(
    `INSERT INTO users (email, name, role, status) SELECT 'user' || i || '@example.com', 'User ' || i, (ARRAY['user', 'admin', 'moderator'])[i % 3 + 1], 'active' FROM generate_series(1, $1) i`,
    [ctx.rows],
  );
}
