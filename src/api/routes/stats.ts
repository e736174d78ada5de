import type { Client } from '@temporalio/client';
import { z } from 'zod';
import type { Pool } from '../../db/pool';
import { computeStats, statsSchema } from '../../stats';
import type { App } from '../app';
import { ApiError, errorResponses } from '../errors';

const DAY_MS = 86_400_000;

const statsQuery = z.strictObject({
  from: z.iso.datetime({ offset: true }).optional().describe('Start of the window (ISO 8601, inclusive); default: 24 hours before `to`'),
  to: z.iso.datetime({ offset: true }).optional().describe('End of the window (ISO 8601, exclusive); default: now'),
});

export function statsRoutes(app: App, deps: { pool: Pool; client: Client }): void {
  app.get(
    '/stats',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['stats'],
        summary: 'Figures over the runs that started in a window',
        description:
          'Runs by kind and status, rows processed and rejected per dataset, the top error codes, p50 and p95 durations per kind, and the runs waiting for approval: all over the runs that started in [from, to).',
        querystring: statsQuery,
        response: { 200: statsSchema.describe('The figures'), ...errorResponses },
      },
    },
    async (request) => {
      const to = request.query.to ? new Date(request.query.to) : new Date();
      const from = request.query.from ? new Date(request.query.from) : new Date(to.getTime() - DAY_MS);
      if (from >= to) throw new ApiError(400, 'INVALID_REQUEST', 'from: must be before to', 'from');
      return computeStats(deps, { from, to });
    },
  );
}
