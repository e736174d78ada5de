import { ActivityCancellationType, ActivityFailure, ApplicationFailure, workflowInfo, type ActivityOptions } from '@temporalio/workflow';
import type { z } from 'zod';
import { asErrorCode, ErrorCode } from '../errors';
import { scheduledBy } from '../jobs';
import type { Failure, RunRef } from '../jobs/run';
import { issuePath } from '../jobs/strict';

/** This run, as activities key its state: by its first execution, so a reused run id starts afresh. */
export const currentRun = (): RunRef => ({ id: workflowInfo().workflowId, execution: workflowInfo().firstExecutionRunId });

/**
 * Slices heartbeat after every batch and every 5 s within one: a worker that dies is noticed within
 * heartbeatTimeout and the slice retried elsewhere from its checkpoint. Errors that may pass retry
 * with this backoff; the worker's FailurePolicy (activities/failure-policy.ts) bounds the attempts
 * (BATCHFLOW_MAX_ATTEMPTS) and fails permanent database errors at once, so the bound is a setting
 * of the worker rather than part of workflow history. Errors marked non-retryable (bad input,
 * malformed files) end the run.
 */
export const sliceActivityOptions: ActivityOptions = {
  startToCloseTimeout: '30 minutes',
  heartbeatTimeout: '15 seconds',
  // A cancelled slice finishes its batch and reports where it stopped; the run waits for that.
  cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
  retry: { initialInterval: '1 second', backoffCoefficient: 2, maximumInterval: '30 seconds' },
};

/** Validates workflow input with the job's schema, so runs started from any client get the same checks. */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const parsed = schema.safeParse(input);
  if (!parsed.success) {
    const field = (issue: z.core.$ZodIssue) => issuePath(issue).map(String).join('.');
    const issue = parsed.error.issues[0]!;
    throw ApplicationFailure.create({
      type: ErrorCode.InvalidParams,
      message: `params.${field(issue)}: ${issue.message}`,
      nonRetryable: true,
      details: [parsed.error.issues.map((i) => ({ field: field(i), message: i.message }))],
    });
  }
  return parsed.data;
}

/**
 * The time a run stands for: when a schedule started it, the time it was due (a backfill's runs are
 * due in the past, so a backfill of last March computes last March); otherwise when it started.
 * Never the clock of a later replay or retry.
 */
export function nominalTime(): Date {
  return workflowInfo().typedSearchAttributes.get(scheduledBy.startTime) ?? workflowInfo().startTime;
}

/** The code and message of an activity that failed for good (a non-retryable ApplicationFailure), or undefined for anything else. */
export function activityError(err: unknown): Failure | undefined {
  if (!(err instanceof ActivityFailure && err.cause instanceof ApplicationFailure)) return undefined;
  return { code: asErrorCode(err.cause.type), message: err.cause.message };
}
