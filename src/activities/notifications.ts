import { ApplicationFailure, Context } from '@temporalio/activity';
import type { Pool } from '../db/pool';
import { notificationQueries } from '../db/notifications';
import { runState } from '../db/queries';
import { NOTIFY_ATTEMPTS, type Notify } from '../jobs/notify';
import { runEndDeliveries, type Deliverer, type RunEnd } from '../notifications/deliver';

export interface NotifyRunEndInput {
  /** The run's first execution: one run id may be used again after its history is purged. */
  execution: string;
  notify: Notify;
  end: RunEnd;
}

export function createNotificationActivities(deps: { pool: Pool; deliverer: Deliverer }) {
  return {
    /**
     * Records the run's end notifications (once, whatever the retries), then delivers them and any
     * the run recorded earlier (invoice events). Undelivered ones make the attempt fail so that
     * Temporal retries it with backoff; the last attempt records them as failed and succeeds.
     */
    async notifyRunEnd({ execution, notify, end }: NotifyRunEndInput): Promise<{ delivered: number; failed: number }> {
      const run = { id: end.runId, execution };
      // Registered, so that the retention purge finds the deliveries of runs that keep no other state (pipelines).
      await runState.register(deps.pool, run);
      await notificationQueries.enqueue(deps.pool, run, runEndDeliveries(notify, end, `${end.runId}/${execution}`));
      const final = Context.current().info.attempt >= NOTIFY_ATTEMPTS;
      const outcome = await deps.deliverer.deliverPending(execution, { final });
      if (outcome.pending > 0) throw ApplicationFailure.retryable(`${outcome.pending} notifications not delivered yet; retrying`, 'NOTIFICATIONS_PENDING');
      const counts = await notificationQueries.counts(deps.pool, execution);
      return { delivered: counts.delivered, failed: counts.failed };
    },
  };
}
