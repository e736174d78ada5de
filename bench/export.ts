/**
 * Workload `export-1m`: the 1,000,000 users the earlier workloads left (or, run alone, rows it
 * seeds) to CSV in the object store (MinIO) through the export workflow, against psql's \copy of
 * the same SELECT to a local file, same run. The two files must be byte-identical.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { promisify } from 'node:util';
import { requireDataset } from '../src/activities/params';
import { exportSelect } from '../src/db/export';
import { exportableColumns } from '../src/jobs/export';
import type { RunResult } from '../src/jobs/run';
import { ensureUsers, log, type BenchContext, type WorkloadResult } from './context';

const exec = promisify(execFile);

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  await pipeline(fs.createReadStream(file), hash);
  return hash.digest('hex');
}

export async function benchExport(ctx: BenchContext): Promise<WorkloadResult> {
  const users = requireDataset(ctx.datasets, 'users');
  await ensureUsers(ctx);
  await ctx.pool.query('VACUUM ANALYZE users');
  const file = path.join(ctx.tmp, 'users-export.csv');
  const copy = async (select: string) => {
    const t0 = performance.now();
    // The same session settings as the export's: UTC, ISO dates.
    await exec('psql', [ctx.databaseUrl, '-v', 'ON_ERROR_STOP=1', '-q', '-c', "SET TimeZone = 'UTC'", '-c', "SET DateStyle = 'ISO, YMD'", '-c', `\\copy (${select}) TO '${file}' WITH (FORMAT csv, HEADER true)`]);
    return (performance.now() - t0) / 1000;
  };

  // For scale only: the table as it is, no formatting.
  const columns = exportableColumns(users, false);
  const plainSeconds = await copy(`SELECT ${columns.join(', ')} FROM users ORDER BY id`);
  log(`psql \\copy of the plain SELECT: ${plainSeconds.toFixed(2)} s (${(fs.statSync(file).size / 2 ** 20).toFixed(1)} MiB), for scale`);

  // Reference: the export's own SELECT (ISO timestamps, formulas neutralised), as a careful engineer would script it.
  const select = exportSelect({ selection: { dataset: users, asOf: new Date() }, columns, format: 'csv', csvFormulaEscape: true });
  log('reference: psql \\copy (the export\'s SELECT) TO a local file');
  const referenceSeconds = await copy(select);
  log(`reference: ${referenceSeconds.toFixed(2)} s, ${Math.round(ctx.rows / referenceSeconds).toLocaleString()} rows/s, ${(fs.statSync(file).size / 2 ** 20).toFixed(1)} MiB`);

  log('ours: export workflow to CSV in the object store (MinIO)');
  const t0 = performance.now();
  const { runId } = await ctx.runs.start('export', { dataset: 'users', format: 'csv' }, { runId: `bench-export-${process.pid}`, startedBy: 'bench' });
  const result = (await ctx.client.workflow.getHandle(runId).result()) as RunResult;
  const oursSeconds = (performance.now() - t0) / 1000;
  const output = result.outputs[0]!;
  log(`ours: ${oursSeconds.toFixed(2)} s, ${Math.round(ctx.rows / oursSeconds).toLocaleString()} rows/s (${output.rows} rows, ${(output.bytes / 2 ** 20).toFixed(1)} MiB, status ${result.status})`);
  if (output.rows !== ctx.rows) throw new Error(`exported ${output.rows} rows, expected ${ctx.rows}`);
  const referenceSha = await sha256File(file);
  if (output.sha256 !== referenceSha) throw new Error(`the export's SHA-256 ${output.sha256} differs from the reference file's ${referenceSha}`);
  log('the exported file and the reference file are byte-identical');
  fs.rmSync(file, { force: true });
  return { oursSeconds, referenceSeconds };
}
