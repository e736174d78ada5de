import { z } from 'zod';
import type { DatasetRegistry } from '../datasets';
import { checkFilter, filterSchema, type Issue } from './filter';
import { approvalSchema, errorPolicySchema } from './run';
import { strictObject } from './strict';

/** A month to invoice, YYYY-MM. */
const periodSchema = z.string().regex(/^\d{4}-(0[1-9]|1[0-2])$/, 'must be a month as YYYY-MM, such as 2026-10');

/** The month before the one `at` falls in (UTC): what a run on the 1st at 03:00 bills. */
export function previousMonth(at: Date): string {
  const year = at.getUTCFullYear();
  const month = at.getUTCMonth(); // 0-based: this is already the previous month's 1-based number
  return month === 0 ? `${year - 1}-12` : `${year}-${String(month).padStart(2, '0')}`;
}

/** The month's first instant and the next month's, as ISO timestamps (UTC). */
export function periodRange(period: string): { from: string; to: string } {
  const [year, month] = period.split('-').map(Number) as [number, number];
  return { from: new Date(Date.UTC(year, month - 1, 1)).toISOString(), to: new Date(Date.UTC(year, month, 1)).toISOString() };
}

/**
 * A tax rate as a fraction, exactly: "0.2" for 20 %. Text, as every exact decimal here: a JSON
 * number would already be a float. (A transform from numbers would also cost the POST /runs body
 * its OpenAPI examples: zod drops them around a pipe.)
 */
const taxRateSchema = z
  .string({ error: 'must be a fraction as text, such as "0.2" for 20 %' })
  .regex(/^(0(\.\d{1,6})?|1(\.0{1,6})?)$/, 'must be a fraction between 0 and 1 with at most 6 decimals, such as "0.2" for 20 %');

/** The steps of an invoicing run, in order: each goes through every customer before the next starts. */
export const invoicingSteps = ['usage', 'invoices', 'pdfs', 'emails'] as const;
export type InvoicingStep = (typeof invoicingSteps)[number];

/** Parameters of an invoicing run: which month, which customers, at what tax rate. */
export const invoicingParamsSchema = strictObject({
  ...errorPolicySchema.shape,
  ...approvalSchema.omit({ sampleSize: true }).shape,
  /** The month to bill; by default the month before the run's scheduled time (or start time). */
  period: periodSchema.optional(),
  /** Which customers (a filter over the customers dataset); all by default. */
  where: filterSchema.optional(),
  /** Tax on the subtotal, as a fraction ("0.2" for 20 %); none by default. */
  taxRate: taxRateSchema.default('0'),
  /** Days from the issue date to the due date. */
  dueDays: z.number().int().min(0).max(365).default(30),
  /**
   * An email whose sending was interrupted (the worker stopped after the SMTP call began and
   * before its outcome was recorded) may or may not have arrived: send it again with the same
   * Message-ID (at least once), or report it as a row error and leave it (at most once).
   */
  unconfirmedEmails: z.enum(['resend', 'report']).default('resend'),
  /** Customers per batch, in every step. */
  batchSize: z.number().int().min(1).max(5_000).default(200),
});
export type InvoicingParams = z.infer<typeof invoicingParamsSchema>;

/** The dataset invoicing bills: its `where` filters it. */
export const CUSTOMERS = 'customers';

/** Invoicing's params held against the declared datasets: its customer filter. */
export function checkInvoicingParams(params: InvoicingParams, datasets: DatasetRegistry): Issue[] {
  const customers = datasets.get(CUSTOMERS);
  if (!customers) return [{ path: [], message: `invoicing bills the ${CUSTOMERS} dataset, which is not declared (${datasets.names.join(', ')})` }];
  return params.where === undefined ? [] : checkFilter(customers, params.where, ['where']);
}
