import type { Pool } from '../db/pool';
import { eachLimited } from '../each-limited';
import { notificationQueries, type Attempt, type Delivery, type NewDelivery } from '../db/notifications';
import { ERROR_THRESHOLD_EVENT, overThreshold, runEndEvent, type Notify, type RunOutcome } from '../jobs/notify';
import type { Counts } from '../jobs/run';
import { fromDomain, isRefusal, MailerNotConfigured, type Mailer } from './mailer';
import { webhookHeaders } from './signing';

/** What a run-end notification says: counts and times, never rows. */
export interface RunEnd {
  runId: string;
  kind: string;
  status: RunOutcome;
  counts: Counts;
  errorCount: number;
  error?: { code: string; message: string };
  startedAt: string;
  endedAt: string;
}

/** The deliveries a run's end calls for: its outcome if `notify.on` lists it, and the error alert. */
export function runEndDeliveries(notify: Notify, end: RunEnd, subject: string): NewDelivery[] {
  const events = [...(notify.on.includes(end.status) ? [runEndEvent(end.status)] : []), ...(overThreshold(notify.errorThreshold, end.counts) ? [ERROR_THRESHOLD_EVENT] : [])];
  const targets = [...(notify.webhook ? [{ channel: 'webhook' as const, target: notify.webhook }] : []), ...(notify.email ?? []).map((target) => ({ channel: 'email' as const, target }))];
  const data = { ...end, errorReport: `/runs/${encodeURIComponent(end.runId)}/errors` };
  return events.flatMap((event) => targets.map((t) => ({ ...t, event, subject, payload: { type: event, timestamp: end.endedAt, data } })));
}

const WEBHOOK_TIMEOUT_MS = 10_000;
// Deliveries made at once.
const CONCURRENCY = 8;
const PAGE = 100;

/** An attempt that can never succeed as things are configured: recorded as failed at once. */
interface Outcome extends Attempt {
  permanent?: boolean;
}

/** A run's end as an email body: what a person needs to decide whether to look. */
function runEmail(delivery: Delivery): { subject: string; text: string } {
  const d = delivery.payload.data as unknown as RunEnd & { errorReport: string };
  const alert = delivery.event === ERROR_THRESHOLD_EVENT;
  const c = d.counts;
  return {
    subject: `[Batchflow] ${d.kind} run ${d.runId} ${alert ? `rejected ${c.failed} rows` : `ended ${d.status}`}`,
    text: [
      `Run ${d.runId} (${d.kind}) ended ${d.status}${alert ? ', and rejected more rows than its error threshold allows' : ''}.`,
      '',
      `Processed ${c.processed}: ${c.succeeded} succeeded, ${c.failed} failed, ${c.skipped} skipped.`,
      ...(d.error ? [`Error: ${d.error.code}: ${d.error.message}`] : []),
      ...(d.errorCount > 0 ? [`Row errors: ${d.errorCount} (GET ${d.errorReport})`] : []),
      `Started ${d.startedAt}, ended ${d.endedAt}.`,
    ].join('\n'),
  };
}

/** Sends a run's recorded notifications and records every attempt in the delivery log. */
export function createDeliverer(deps: { pool: Pool; mailer: Mailer; webhookSecret?: string; emailFrom: string }) {
  const attempt = async (delivery: Delivery): Promise<Outcome> => {
    const at = new Date().toISOString();
    if (delivery.channel === 'webhook') {
      if (!deps.webhookSecret) return { at, ok: false, error: 'WEBHOOK_SECRET is not set: webhooks cannot be signed', permanent: true };
      const body = JSON.stringify(delivery.payload);
      try {
        const res = await fetch(delivery.target, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'user-agent': 'Batchflow-Webhooks/1', ...webhookHeaders(deps.webhookSecret, delivery.id, body) },
          body,
          redirect: 'manual',
          signal: AbortSignal.timeout(WEBHOOK_TIMEOUT_MS),
        });
        await res.body?.cancel();
        return { at, ok: res.status >= 200 && res.status < 300, status: res.status, ...(!(res.status >= 200 && res.status < 300) && { error: `HTTP ${res.status}` }) };
      } catch (err) {
        return { at, ok: false, error: (err as Error).cause instanceof Error ? `${(err as Error).message}: ${((err as Error).cause as Error).message}` : (err as Error).message };
      }
    }
    try {
      await deps.mailer.send({ to: delivery.target, ...runEmail(delivery), messageId: `<${delivery.id}@${fromDomain(deps.emailFrom)}>` });
      return { at, ok: true };
    } catch (err) {
      return { at, ok: false, error: (err as Error).message, permanent: err instanceof MailerNotConfigured || isRefusal(err) };
    }
  };

  return {
    /**
     * One round over the pending deliveries of a run's execution. A delivery that fails stays pending for the next
     * round, unless this is the last round (`final`) or it can never succeed: then it is failed.
     */
    async deliverPending(execution: string, opts: { final: boolean }): Promise<{ delivered: number; failed: number; pending: number }> {
      const outcome = { delivered: 0, failed: 0, pending: 0 };
      for (let after = 0; ; ) {
        const page = await notificationQueries.pending(deps.pool, execution, after, PAGE);
        if (page.length === 0) return outcome;
        after = page.at(-1)!.seq;
        await eachLimited(page, CONCURRENCY, async (delivery) => {
          const { permanent, ...result } = await attempt(delivery);
          const final = opts.final || !!permanent;
          await notificationQueries.recordAttempt(deps.pool, delivery.seq, result, final);
          outcome[result.ok ? 'delivered' : final ? 'failed' : 'pending'] += 1;
        });
      }
    },
  };
}
export type Deliverer = ReturnType<typeof createDeliverer>;
