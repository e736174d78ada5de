import { z } from 'zod';
import type { Pool } from '../../db/pool';
import { notificationQueries, type Delivery } from '../../db/notifications';
import { strictObject } from '../../jobs/strict';
import type { App } from '../app';
import { errorResponses } from '../errors';
import type { RunService } from '../runs';
import { runIdParams } from './runs';

const query = strictObject({
  after: z.coerce.number().int().min(0).optional().describe('The seq of the last delivery seen (from `next`): the page starts after it'),
  limit: z.coerce.number().int().min(1).max(1000).default(100).describe('Deliveries per page'),
  status: z.enum(['pending', 'delivered', 'failed']).optional().describe('Only deliveries in this state'),
});
const attemptSchema = z.object({
  at: z.string(),
  ok: z.boolean(),
  status: z.number().int().optional().describe("The receiver's HTTP status (webhooks)"),
  error: z.string().optional(),
});
const deliverySchema = z
  .object({
    id: z.string().describe('The webhook-id: the same on every attempt'),
    channel: z.enum(['webhook', 'email']),
    target: z.string().describe('The webhook URL (without credentials or query) or the email address'),
    event: z.string().describe('run.success, run.partial, run.failed, run.cancelled, run.error_threshold, invoice.issued, invoice.sent'),
    status: z.enum(['pending', 'delivered', 'failed']),
    attempts: z.number().int(),
    attemptLog: z.array(attemptSchema),
    payload: z.object({ type: z.string(), timestamp: z.string(), data: z.record(z.string(), z.unknown()) }),
    createdAt: z.string(),
    deliveredAt: z.string().nullable(),
  })
  .meta({ id: 'NotificationDelivery' });
const deliveryExample = {
  id: 'msg_6f1c2d0e9b8a4f7e8d6c5b4a39281706',
  channel: 'webhook',
  target: 'https://hooks.example.com/batchflow',
  event: 'run.success',
  status: 'delivered',
  attempts: 2,
  attemptLog: [
    { at: '2026-11-01T03:12:40.118Z', ok: false, status: 503 },
    { at: '2026-11-01T03:12:41.260Z', ok: true, status: 200 },
  ],
  payload: { type: 'run.success', timestamp: '2026-11-01T03:12:40.002Z', data: { runId: 'invoicing-2026-10', kind: 'invoicing', status: 'success' } },
  createdAt: '2026-11-01T03:12:40.031Z',
  deliveredAt: '2026-11-01T03:12:41.262Z',
};
const page = z
  .object({
    runId: z.string(),
    counts: z.object({ pending: z.number().int(), delivered: z.number().int(), failed: z.number().int() }).describe("The run's deliveries by state"),
    deliveries: z.array(deliverySchema),
    next: z.string().nullable().describe('The next page, with the same filters; null on the last page'),
  })
  .describe('A page of the delivery log')
  .meta({ examples: [{ runId: 'invoicing-2026-10', counts: { pending: 0, delivered: 1, failed: 0 }, deliveries: [deliveryExample], next: null }] });

/** A URL as shown to readers: credentials and query strings (often tokens) left out. */
function shownTarget(delivery: Pick<Delivery, 'channel' | 'target'>): string {
  if (delivery.channel !== 'webhook') return delivery.target;
  const url = new URL(delivery.target);
  return `${url.origin}${url.pathname}`;
}

export function notificationRoutes(app: App, deps: { runs: RunService; pool: Pool }): void {
  app.get(
    '/runs/:id/notifications',
    {
      config: { scope: 'read' },
      schema: {
        tags: ['runs'],
        summary: "A run's notifications (webhooks, emails) and each delivery attempt",
        description: 'The delivery log, oldest first, paged by `after` (the last `seq` seen, given in `next`).',
        params: runIdParams,
        querystring: query,
        response: { 200: page, ...errorResponses },
      },
    },
    async (request) => {
      const { id } = request.params;
      // The deliveries of the run's current (or last) execution, not those of an earlier run of the same id.
      const execution = await deps.runs.execution(id);
      const [deliveries, counts] = await Promise.all([notificationQueries.list(deps.pool, execution, request.query), notificationQueries.counts(deps.pool, execution)]);
      const last = deliveries.at(-1);
      const more = new URLSearchParams({ after: String(last?.seq ?? 0), limit: String(request.query.limit), ...(request.query.status && { status: request.query.status }) });
      return {
        runId: id,
        counts,
        deliveries: deliveries.map(({ seq: _seq, runId: _runId, subject: _subject, ...d }) => ({ ...d, target: shownTarget(d) })),
        next: deliveries.length === request.query.limit && last ? `/runs/${encodeURIComponent(id)}/notifications?${more.toString()}` : null,
      };
    },
  );
}
