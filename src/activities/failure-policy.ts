import type { Context } from '@temporalio/activity';
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import type { ActivityExecuteInput, ActivityInboundCallsInterceptor, Next } from '@temporalio/worker';
import { isPermanentDbError } from '../db/pool';
import { ErrorCode, permanentFailure } from '../errors';

/**
 * How an activity's failure ends, for every activity of every flow, in one place:
 * - errors marked non-retryable (bad input, a malformed file, a batch the database refused) and
 *   cancellations stay as they are;
 * - a database error no retry can fix (isPermanentDbError: a missing column, a missing privilege,
 *   bad credentials) fails at once, with the database's message (DATABASE_ERROR);
 * - any other error is retried (backoff in workflows/common.ts), but the attempt numbered
 *   `maxAttempts` that fails ends the activity (RETRIES_EXHAUSTED, with that last error), and an
 *   attempt past it (the ones before ended without an answer: a worker died, a timeout) ends it
 *   at once. Each slice is an activity of its own, so the bound counts failures in a row.
 */
export function finalFailure(err: unknown, attempt: number, maxAttempts: number): unknown {
  if (err instanceof CancelledFailure || (err instanceof ApplicationFailure && err.nonRetryable)) return err;
  if (isPermanentDbError(err)) return permanentFailure(ErrorCode.DatabaseError, `${err.message} (SQLSTATE ${err.code})`);
  if (attempt < maxAttempts) return err;
  const message = err instanceof Error ? err.message : String(err);
  return permanentFailure(ErrorCode.RetriesExhausted, `gave up after ${attempt} attempts; the last one failed with: ${message}`);
}

/** The worker's activity interceptor that applies finalFailure. */
export class FailurePolicy implements ActivityInboundCallsInterceptor {
  constructor(
    private readonly ctx: Context,
    private readonly maxAttempts: number,
  ) {}

  async execute(input: ActivityExecuteInput, next: Next<ActivityInboundCallsInterceptor, 'execute'>): Promise<unknown> {
    const { attempt } = this.ctx.info;
    if (attempt > this.maxAttempts) {
      throw permanentFailure(ErrorCode.RetriesExhausted, `gave up after ${this.maxAttempts} attempts; the last ones ended without an answer (a worker stopped, or an attempt timed out)`);
    }
    try {
      return await next(input);
    } catch (err) {
      throw finalFailure(err, attempt, this.maxAttempts);
    }
  }
}
