import type { z } from 'zod';
import { notifySchema } from './notify';
import { strictObject } from './strict';
import { addDays, checkDateRange, dateIn, isoDateSchema, type DateRange } from './dates';

/** The longest window one report covers. */
export const MAX_REPORT_DAYS = 31;

/**
 * Parameters of a report: the dates it covers, both included. Without them, a scheduled run covers
 * the seven days before its scheduled date (Sunday to Saturday for a Sunday schedule), and a run
 * started by hand the seven days before it started.
 */
export const reportParamsSchema = strictObject({
  from: isoDateSchema.optional(),
  to: isoDateSchema.optional(),
  /** Email and signed webhook notifications when the run ends. */
  notify: notifySchema.optional(),
}).superRefine((p, ctx) => checkDateRange(ctx, p, MAX_REPORT_DAYS));
export type ReportParams = z.infer<typeof reportParamsSchema>;

/** Reports count days in UTC, like daily_stats. */
export const REPORT_TIME_ZONE = 'UTC';

/** The dates a report covers: its params', or the seven days before its nominal date. */
export function reportWindow(params: ReportParams, nominal: Date): DateRange {
  if (params.from && params.to) return { from: params.from, to: params.to };
  const day = dateIn(nominal, REPORT_TIME_ZONE);
  return { from: addDays(day, -7), to: addDays(day, -1) };
}
