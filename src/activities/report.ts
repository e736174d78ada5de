import { createHash } from 'node:crypto';
import type { Client } from '@temporalio/client';
import type { Pool } from '../db/pool';
import { runState } from '../db/queries';
import { rollupQueries } from '../db/rollups';
import { addDays, type DateRange } from '../jobs/dates';
import { downloadPath, type RunOutput } from '../jobs/run';
import { dailyStats } from '../rollups/daily-stats';
import { reportCsv, reportHtml, type ReportFacts, type RunFact } from '../reports/weekly-report';
import type { ObjectStore } from '../storage';
import { runFailure } from '../temporal';
import { listRuns } from '../visibility';

export interface ReportDeps {
  pool: Pool;
  store: ObjectStore;
  /** Temporal, for the runs' visibility records. */
  client: Client;
  /** The runs a report covers are this deployment's: those on its task queue. */
  taskQueue: string;
}

/**
 * The runs started in the window on this task queue, from Temporal's visibility (kind, status,
 * times, schedule), with their committed counts from Postgres and, for failed runs, the error
 * code they failed with. Row errors are counted by code in Postgres; their values never leave it.
 */
async function gatherFacts(deps: ReportDeps, reportRunId: string, window: DateRange): Promise<ReportFacts> {
  const query = [
    `TaskQueue = '${deps.taskQueue.replace(/'/g, "\\'")}'`,
    'BatchflowKind IS NOT NULL',
    `StartTime >= '${window.from}T00:00:00Z'`,
    `StartTime < '${addDays(window.to, 1)}T00:00:00Z'`,
  ].join(' AND ');
  const listed = (await listRuns(deps.client, query)).filter((r) => r.runId !== reportRunId);
  const ids = listed.map((r) => r.runId);
  const [committed, rowErrors, rows] = await Promise.all([
    runState.countsOf(deps.pool, ids),
    runState.errorCodesOf(deps.pool, ids),
    rollupQueries.rows(deps.pool, dailyStats, window.from, window.to),
  ]);
  const runs: RunFact[] = [];
  for (const run of listed) {
    const state = committed.get(run.runId);
    const errorCode = run.status === 'failed' ? (state?.stop?.code ?? (await runFailure(deps.client.workflow.getHandle(run.runId))).error.code) : undefined;
    runs.push({
      runId: run.runId,
      kind: run.kind ?? 'unknown',
      status: run.status,
      startTime: run.startTime,
      ...(run.scheduleId && { scheduleId: run.scheduleId }),
      ...(run.closeTime && { closeTime: run.closeTime, durationMs: Date.parse(run.closeTime) - Date.parse(run.startTime) }),
      processed: state?.counts.processed ?? 0,
      rejected: state?.counts.failed ?? 0,
      ...(errorCode && { errorCode }),
    });
  }
  return { window, generatedAt: new Date().toISOString(), runs, rowErrors, dailyStats: { columns: dailyStats.measureNames, rows } };
}

export function createReportActivities(deps: ReportDeps) {
  return {
    /** Builds the report for a window and stores it as CSV and HTML; returns where they are and how many runs it covers. */
    async buildReport({ runId, window }: { runId: string; window: DateRange }): Promise<{ outputs: RunOutput[]; runs: number }> {
      const facts = await gatherFacts(deps, runId, window);
      const base = `reports/${runId}/report-${window.from}-to-${window.to}`;
      const files = [
        { key: `${base}.csv`, contentType: 'text/csv; charset=utf-8', body: Buffer.from(reportCsv(facts)) },
        { key: `${base}.html`, contentType: 'text/html; charset=utf-8', body: Buffer.from(reportHtml(facts)) },
      ];
      const outputs = await Promise.all(
        files.map(async ({ key, contentType, body }, i): Promise<RunOutput> => {
          const stored = await deps.store.put(key, body);
          return { location: stored.uri, contentType, bytes: stored.size, sha256: createHash('sha256').update(body).digest('hex'), download: downloadPath(runId, i) };
        }),
      );
      return { outputs, runs: facts.runs.length };
    },
  };
}
