import { z } from 'zod';
import { strictObject } from './strict';

/**
 * Who to tell when a run ends: any run of any kind may carry `notify`. Deliveries (signed
 * webhooks, emails) are recorded in Postgres and retried a bounded number of times; a
 * notification that keeps failing is recorded as failed and never fails the run it reports on.
 */

const runOutcomes = ['success', 'partial', 'failed', 'cancelled'] as const;
export type RunOutcome = (typeof runOutcomes)[number];

export const notifySchema = strictObject({
  /** The outcomes to report (default: all of them). */
  on: z.array(z.enum(runOutcomes)).min(1).default([...runOutcomes]),
  /** Addresses that get an email when the run ends. */
  email: z.array(z.email('must be an email address')).min(1).max(20).optional(),
  /** An http(s) URL that gets a signed POST (Standard Webhooks) when the run ends; invoicing runs also post invoice events to it. */
  webhook: z.url({ protocol: /^https?$/, error: 'must be an http or https URL' }).max(2_000).optional(),
  /** Alert (event `run.error_threshold`) when more rows than `count`, or more than `rate` of the rows processed, were rejected, whatever `on` says. */
  errorThreshold: strictObject({
    count: z.number().int().min(0).optional(),
    rate: z.number().min(0).max(1).optional(),
  })
    .refine((t) => t.count !== undefined || t.rate !== undefined, 'give count, rate or both')
    .optional(),
}).refine((n) => n.email !== undefined || n.webhook !== undefined, { message: 'give email addresses, a webhook URL or both', path: ['webhook'] });
export type Notify = z.infer<typeof notifySchema>;

/** The event a run's end is reported as. */
export const runEndEvent = (status: RunOutcome) => `run.${status}`;
export const ERROR_THRESHOLD_EVENT = 'run.error_threshold';

/** Whether a run's rejected rows exceed the alert threshold. */
export function overThreshold(threshold: Notify['errorThreshold'], counts: { processed: number; failed: number }): boolean {
  if (!threshold) return false;
  if (threshold.count !== undefined && counts.failed > threshold.count) return true;
  return threshold.rate !== undefined && counts.processed > 0 && counts.failed / counts.processed > threshold.rate;
}

/**
 * Attempts per notification, one delivery round per attempt with exponential backoff between
 * (1, 2, 4, 8 s): the workflow's retry policy and the activity that records the last attempt as
 * failed both read it.
 */
export const NOTIFY_ATTEMPTS = 5;
