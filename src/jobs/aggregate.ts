import { z } from 'zod';
import type { DatasetRegistry } from '../datasets';
import { checkRollup, rollupNames, rollups } from '../rollups';
import { notifySchema } from './notify';
import { strictObject } from './strict';
import { checkDateRange, isoDateSchema, previousDay, type DateRange } from './dates';
import type { Issue } from './filter';

/** The longest range one aggregate run computes (ten years of dates). */
export const MAX_AGGREGATE_DAYS = 3_660;

/**
 * Parameters of an aggregate run: which roll-ups (all declared ones by default) for one date or a
 * from/to range. Without either, a scheduled run computes the day before its scheduled time, and
 * a run started by hand the day before it started.
 */
export const aggregateParamsSchema = strictObject({
  rollups: z.array(z.enum(rollupNames)).min(1).default([...rollupNames]),
  date: isoDateSchema.optional(),
  from: isoDateSchema.optional(),
  to: isoDateSchema.optional(),
  /** Email and signed webhook notifications when the run ends. */
  notify: notifySchema.optional(),
}).superRefine((p, ctx) => {
  if (p.date !== undefined && (p.from !== undefined || p.to !== undefined)) ctx.addIssue({ code: 'custom', path: ['date'], message: 'give date, or from and to, not both' });
  checkDateRange(ctx, p, MAX_AGGREGATE_DAYS);
});
export type AggregateParams = z.infer<typeof aggregateParamsSchema>;

/** An aggregate's roll-ups held against the declared datasets they count. */
export const checkAggregateParams = (params: Pick<AggregateParams, 'rollups'>, datasets: DatasetRegistry): Issue[] =>
  params.rollups.flatMap((name, i) => checkRollup(rollups[name], datasets).map((message) => ({ path: ['rollups', i], message })));

/** Where an aggregate run stands: the last date whose rows are committed. */
export interface DatePosition {
  lastDate?: string;
}

/** The dates a run computes: its params', or the day before its nominal time in the (first) roll-up's time zone. */
export function aggregateRange(params: AggregateParams, nominal: Date): DateRange {
  if (params.date) return { from: params.date, to: params.date };
  if (params.from && params.to) return { from: params.from, to: params.to };
  const day = previousDay(nominal, rollups[params.rollups[0]!].timeZone);
  return { from: day, to: day };
}
