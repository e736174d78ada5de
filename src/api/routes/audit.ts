import { z } from 'zod';
import type { Pool } from '../../db/pool';
import { runIdSchema } from '../../jobs/run';
import { strictObject } from '../../jobs/strict';
import type { App } from '../app';
import { auditActions, auditEntrySchema, auditExample, listAudit } from '../audit';
import { errorResponses } from '../errors';
import { keyNameSchema } from '../keys';

const auditQuery = strictObject({
  runId: runIdSchema.optional().describe('Only entries about this run'),
  actor: keyNameSchema.optional().describe('Only what the key of this name did'),
  action: z.enum(auditActions).optional().describe('Only this action'),
  before: z.coerce.number().int().min(1).optional().describe('The id of the last entry seen: the page goes on from there (older entries)'),
  limit: z.coerce.number().int().min(1).max(1000).default(100).describe('Entries per page'),
});

/** The audit log, for admins: newest first, paged, filtered by run, actor or action. */
export function auditRoutes(app: App, deps: { pool: Pool }): void {
  app.get(
    '/audit',
    {
      config: { scope: 'admin' },
      schema: {
        tags: ['audit'],
        summary: 'Who started, cancelled, approved or rejected runs, uploaded files and changed keys; newest first',
        querystring: auditQuery,
        response: {
          200: z
            .object({ entries: z.array(auditEntrySchema), next: z.string().nullable().describe('The URL of the next page; null on the last one') })
            .describe('A page of the audit log')
            .meta({ examples: [{ entries: [auditExample], next: null }] }),
          ...errorResponses,
        },
      },
    },
    async (request) => {
      const query = request.query;
      const entries = await listAudit(deps.pool, query);
      const last = entries.at(-1);
      const next = entries.length === query.limit && last ? `/audit?${new URLSearchParams({ ...stringValues(query), before: String(last.id) }).toString()}` : null;
      return { entries, next };
    },
  );
}

const stringValues = (query: Record<string, string | number | undefined>) =>
  Object.fromEntries(Object.entries(query).flatMap(([k, v]) => (v === undefined ? [] : [[k, String(v)]])));
