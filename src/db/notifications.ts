import type { RunRef } from '../jobs/run';
import type { Pool, PoolClient } from './pool';

type Queryable = Pool | PoolClient;

export type Channel = 'webhook' | 'email';
export type DeliveryStatus = 'pending' | 'delivered' | 'failed';

export interface Attempt {
  at: string;
  ok: boolean;
  /** HTTP status of a webhook attempt. */
  status?: number;
  error?: string;
}

export interface Delivery {
  seq: number;
  id: string;
  runId: string;
  channel: Channel;
  target: string;
  event: string;
  subject: string;
  payload: { type: string; timestamp: string; data: Record<string, unknown> };
  status: DeliveryStatus;
  attempts: number;
  attemptLog: Attempt[];
  createdAt: string;
  deliveredAt: string | null;
}

export interface NewDelivery {
  channel: Channel;
  target: string;
  event: string;
  subject: string;
  payload: Delivery['payload'];
}

const columns = `seq, id, run_id AS "runId", channel, target, event, subject, payload, status, attempts, attempt_log AS "attemptLog",
  to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS "createdAt",
  to_char(delivered_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS "deliveredAt"`;

/**
 * The delivery log: every notification a run sends, and what became of each attempt. Deliveries
 * belong to the run's execution (RunRef.execution), as the rest of its state does: a run id used
 * again neither shows nor sends the earlier run's.
 */
export const notificationQueries = {
  /** Records deliveries to make; one already recorded for the same event, subject and target stays as it is. */
  async enqueue(db: Queryable, run: RunRef, deliveries: readonly NewDelivery[]): Promise<void> {
    if (deliveries.length === 0) return;
    await db.query(
      `INSERT INTO notification_deliveries (id, run_id, execution_id, channel, target, event, subject, payload)
       SELECT 'msg_' || replace(gen_random_uuid()::text, '-', ''), $1, $2, * FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::jsonb[])
       ON CONFLICT (event, subject, channel, target) DO NOTHING`,
      [run.id, run.execution, deliveries.map((d) => d.channel), deliveries.map((d) => d.target), deliveries.map((d) => d.event), deliveries.map((d) => d.subject), deliveries.map((d) => JSON.stringify(d.payload))],
    );
  },

  /** The execution's deliveries still to make after `after` (a seq), oldest first. */
  async pending(db: Queryable, execution: string, after: number, limit: number): Promise<Delivery[]> {
    const { rows } = await db.query<Delivery>(`SELECT ${columns} FROM notification_deliveries WHERE execution_id = $1 AND status = 'pending' AND seq > $2 ORDER BY seq LIMIT $3`, [
      execution,
      after,
      limit,
    ]);
    return rows;
  },

  /** One attempt's outcome: delivered, still pending, or (the last attempt) failed for good. */
  async recordAttempt(db: Queryable, seq: number, attempt: Attempt, final: boolean): Promise<void> {
    await db.query(
      `UPDATE notification_deliveries
       SET attempts = attempts + 1,
           attempt_log = attempt_log || jsonb_build_array($2::jsonb),
           status = CASE WHEN $2::jsonb->>'ok' = 'true' THEN 'delivered' WHEN $3 THEN 'failed' ELSE 'pending' END,
           delivered_at = CASE WHEN $2::jsonb->>'ok' = 'true' THEN now() END
       WHERE seq = $1`,
      [seq, JSON.stringify(attempt), final],
    );
  },

  /** A page of an execution's deliveries in the order they were recorded; `after` is the last seq seen. */
  async list(db: Queryable, execution: string, opts: { after?: number; limit: number; status?: DeliveryStatus }): Promise<Delivery[]> {
    const { rows } = await db.query<Delivery>(
      `SELECT ${columns} FROM notification_deliveries WHERE execution_id = $1 AND seq > $2 AND ($4::text IS NULL OR status = $4) ORDER BY seq LIMIT $3`,
      [execution, opts.after ?? 0, opts.limit, opts.status ?? null],
    );
    return rows;
  },

  async counts(db: Queryable, execution: string): Promise<Record<DeliveryStatus, number>> {
    const { rows } = await db.query<{ status: DeliveryStatus; n: number }>('SELECT status, count(*)::int AS n FROM notification_deliveries WHERE execution_id = $1 GROUP BY status', [execution]);
    return { pending: 0, delivered: 0, failed: 0, ...Object.fromEntries(rows.map((r) => [r.status, r.n])) };
  },
};
