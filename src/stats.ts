import type { Client } from '@temporalio/client';
import { z } from 'zod';
import type { Pool } from './db/pool';
import { statsQueries, type StatsWindow } from './db/stats';
import { AWAITING_APPROVAL, listedStatusSchema, runListItemSchema, type ListedStatus, type RunListItem } from './jobs/run';
import { listRuns, visibilityQuery } from './visibility';

export type { StatsWindow };

const count = z.number().int();
const TOP_ERROR_CODES = 10;

export const statsSchema = z
  .object({
    from: z.string().describe('Start of the window (inclusive): the figures count the runs that started in it'),
    to: z.string().describe('End of the window (exclusive)'),
    runs: z.object({
      total: count,
      byKind: z.record(z.string(), z.partialRecord(listedStatusSchema, count)).describe('kind → status → runs; running and awaiting_approval are runs still going'),
    }),
    rows: z
      .record(z.string(), z.object({ processed: count, succeeded: count, rejected: count, skipped: count }))
      .describe("dataset → rows of finished runs' committed batches (a pipeline's rows are its steps')"),
    topErrorCodes: z
      .array(z.object({ code: z.string(), runs: count.describe('Runs it occurred in, as a row error or as why the run failed, stopped or was cancelled'), rows: count.describe('Row errors with this code') }))
      .describe(`The ${TOP_ERROR_CODES} codes that occurred in the most runs`),
    durations: z
      .record(z.string(), z.object({ runs: count, p50Ms: z.number(), p95Ms: z.number() }))
      .describe('kind → durations of finished runs, from start to end (waiting for approval included); percentiles by nearest rank'),
    awaitingApproval: z.object({ count, runs: z.array(runListItemSchema) }).describe('Runs started in the window that wait for approval now'),
  })
  .meta({
    id: 'Stats',
    examples: [
      {
        from: '2026-11-22T00:00:00.000Z',
        to: '2026-11-23T00:00:00.000Z',
        runs: { total: 5, byKind: { import: { success: 2, partial: 1 }, 'bulk-update': { awaiting_approval: 1, cancelled: 1 } } },
        rows: { users: { processed: 1205, succeeded: 1200, rejected: 5, skipped: 0 } },
        topErrorCodes: [
          { code: 'VALIDATION_FAILED', runs: 1, rows: 4 },
          { code: 'REJECTED', runs: 1, rows: 0 },
        ],
        durations: { import: { runs: 3, p50Ms: 1840, p95Ms: 5210 }, 'bulk-update': { runs: 1, p50Ms: 61000, p95Ms: 61000 } },
        awaitingApproval: {
          count: 1,
          runs: [{ runId: 'deactivate-pending-2026-11-22', kind: 'bulk-update', dataset: 'users', status: 'awaiting_approval', startTime: '2026-11-22T09:30:00.000Z', closeTime: null }],
        },
      },
    ],
  });
export type Stats = z.infer<typeof statsSchema>;

/**
 * The figures of the runs that started in [from, to). Finished runs come from Postgres (the facts
 * each run records as it ends, and its row errors); runs still going from Temporal's visibility,
 * less those that have already recorded their end (visibility lags a moment behind).
 */
export async function computeStats(deps: { pool: Pool; client: Client }, window: StatsWindow): Promise<Stats> {
  const { pool, client } = deps;
  const span = { from: window.from.toISOString(), to: window.to.toISOString() };
  const [finished, durations, rows, topErrorCodes, going] = await Promise.all([
    statsQueries.runsByKindAndStatus(pool, window),
    statsQueries.durations(pool, window),
    statsQueries.rowsByDataset(pool, window),
    statsQueries.topErrorCodes(pool, window, TOP_ERROR_CODES),
    Promise.all((['running', AWAITING_APPROVAL] as const).map((status) => listRuns(client, visibilityQuery({ ...span, status })))).then((lists) => lists.flat()),
  ]);
  const ended = await statsQueries.recorded(pool, going.map((r) => r.runId));
  const stillGoing = going.filter((r) => !ended.has(r.runId));

  const byKind: Stats['runs']['byKind'] = {};
  const add = (kind: string, status: ListedStatus, runs: number) => {
    const statuses = (byKind[kind] ??= {});
    statuses[status] = (statuses[status] ?? 0) + runs;
  };
  for (const f of finished) add(f.kind, f.status as ListedStatus, f.runs);
  for (const r of stillGoing) add(r.kind ?? 'unknown', r.status, 1);
  const waiting: RunListItem[] = stillGoing.filter((r) => r.status === AWAITING_APPROVAL);

  return {
    ...span,
    runs: { total: finished.reduce((n, f) => n + f.runs, 0) + stillGoing.length, byKind },
    rows: Object.fromEntries(rows.map(({ dataset, ...counts }) => [dataset, counts])),
    topErrorCodes,
    durations: Object.fromEntries(durations.map(({ kind, ...d }) => [kind, d])),
    awaitingApproval: { count: waiting.length, runs: waiting },
  };
}
