/**
 * Workload `bulk-update-1m`: set a value on the 1,000,000 rows the import left (or, run alone,
 * rows it seeds), chosen by a filter, through the bulk-update workflow, against one UPDATE
 * statement in psql, same run.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { RunResult } from '../src/jobs/run';
import { ensureUsers, log, type BenchContext, type WorkloadResult } from './context';

const exec = promisify(execFile);

// Every row matches: the role filter is as selective as "all rows" while still being a filter.
const FILTER = { field: 'role', op: 'in', value: ['user', 'admin', 'moderator'] };

export async function benchBulkUpdate(deps: BenchContext): Promise<WorkloadResult> {
  const { pool } = deps;
  // Both sides start from a vacuumed table and a clean checkpoint, so neither pays for the other's dead rows.
  const settle = () => pool.query('VACUUM users').then(() => pool.query('CHECKPOINT'));

  // Run on its own (BENCH_ONLY=bulk-update-1m), it has no import before it: seed the rows in SQL.
  await ensureUsers(deps);

  await settle();
  log(`reference: one UPDATE of ${deps.rows.toLocaleString()} rows in psql`);
  let t0 = performance.now();
  await exec('psql', [deps.databaseUrl, '-v', 'ON_ERROR_STOP=1', '-q', '-c', "UPDATE users SET status = 'inactive', updated_at = now() WHERE role IN ('user', 'admin', 'moderator')"]);
  const referenceSeconds = (performance.now() - t0) / 1000;
  log(`reference: ${referenceSeconds.toFixed(2)} s, ${Math.round(deps.rows / referenceSeconds).toLocaleString()} rows/s`);

  await settle();
  log(`ours: bulk-update workflow, batch size ${deps.batchSize}`);
  t0 = performance.now();
  const { runId } = await deps.runs.start('bulk-update', { dataset: 'users', where: FILTER, set: { status: 'pending' }, batchSize: deps.batchSize }, { runId: `bench-bulk-update-${process.pid}`, startedBy: 'bench' });
  const result = (await deps.client.workflow.getHandle(runId).result()) as RunResult;
  const oursSeconds = (performance.now() - t0) / 1000;
  const { rows } = await pool.query<{ n: number }>("SELECT count(*)::int AS n FROM users WHERE status = 'pending'");
  log(`ours: ${oursSeconds.toFixed(2)} s, ${Math.round(deps.rows / oursSeconds).toLocaleString()} rows/s (${result.counts.succeeded} updated, status ${result.status})`);
  if (rows[0]!.n !== deps.rows || result.counts.succeeded !== deps.rows) {
    throw new Error(`bulk update changed ${rows[0]!.n} rows (reported ${result.counts.succeeded}), expected ${deps.rows}`);
  }
  return { oursSeconds, referenceSeconds };
}
