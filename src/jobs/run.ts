import { z } from 'zod';

/** Shapes every run shares, whatever its kind: counts, progress, result, row errors. */

export const runIdSchema = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:-]*$/, 'may contain only letters, digits, ".", "_", ":" and "-"');

export const errorHandlingSchema = z.enum(['continue_on_error', 'stop_on_error']);

/** How a run reacts to rejected rows; shared by every batch job. */
export const errorPolicySchema = z.object({
  errorHandling: errorHandlingSchema.default('continue_on_error'),
  /** Stop the run (status failed) once more rows than this were rejected. */
  maxErrors: z.number().int().min(0).optional(),
});
export type ErrorPolicy = z.infer<typeof errorPolicySchema>;

export const countsSchema = z.object({
  processed: z.number().int(),
  succeeded: z.number().int(),
  failed: z.number().int(),
  skipped: z.number().int(),
  inserted: z.number().int().optional(),
  updated: z.number().int().optional(),
  total: z.number().int().optional(),
});
export type Counts = z.infer<typeof countsSchema>;
export const zeroCounts = (): Counts => ({ processed: 0, succeeded: 0, failed: 0, skipped: 0 });

export const runStatusSchema = z.enum(['running', 'success', 'partial', 'failed', 'cancelled']);
export type RunStatus = z.infer<typeof runStatusSchema>;

export const progressSchema = z.object({
  step: z.string(),
  counts: countsSchema,
  bytesRead: z.number().optional(),
  bytesTotal: z.number().optional(),
  rowsPerSecond: z.number(),
  etaSeconds: z.number().optional(),
  startedAt: z.string(),
  updatedAt: z.string(),
  cancelRequested: z.boolean(),
});
export type Progress = z.infer<typeof progressSchema>;

export const rowErrorSchema = z.object({
  row: z.number().int().nullable(),
  line: z.number().int().nullable(),
  field: z.string().nullable(),
  code: z.string(),
  message: z.string(),
  raw: z.unknown(),
});
export type RowError = z.infer<typeof rowErrorSchema>;

export const runResultSchema = z.object({
  status: runStatusSchema.exclude(['running']),
  kind: z.string(),
  counts: countsSchema,
  /** Why the run stopped early or failed, when it did. */
  error: z.object({ code: z.string(), message: z.string() }).optional(),
  errorSample: z.array(rowErrorSchema),
  errorCount: z.number().int(),
  /** Where the full row error report is (an API path). */
  errorReport: z.string(),
  outputs: z.array(z.string()),
  warnings: z.array(z.string()),
  startedAt: z.string(),
  endedAt: z.string(),
  durationMs: z.number(),
});
export type RunResult = z.infer<typeof runResultSchema>;
