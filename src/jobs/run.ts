import { z } from 'zod';
import { ErrorCode } from '../errors';
import { fatalCodes, recordErrorCodes } from '../formats/types';
import { notifySchema } from './notify';
import { strictObject } from './strict';

/** Shapes every run shares, whatever its kind: counts, progress, result, row errors. */

/** Which run an activity works for. */
export interface RunRef {
  /** The run id callers use: the workflow id. */
  id: string;
  /**
   * The Temporal run id of the run's first execution, the same across continue-as-new. It keys
   * every piece of per-run state, so a run id used again (once the earlier run's history expired,
   * or a pipeline step's child id someone used before) starts afresh.
   */
  execution: string;
}

export const runIdSchema = z
  .string()
  .min(1)
  .max(200)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:-]*$/, 'may contain only letters, digits, ".", "_", ":" and "-"');

export const errorHandlingSchema = z.enum(['continue_on_error', 'stop_on_error']);

/** How a run reacts to rejected rows, and who it tells when it ends; shared by every batch job. */
export const errorPolicySchema = strictObject({
  errorHandling: errorHandlingSchema.default('continue_on_error'),
  /** Stop the run (status failed) once more rows than this were rejected. */
  maxErrors: z.number().int().min(0).optional(),
  /** Email and signed webhook notifications when the run ends, and an alert on too many rejected rows. */
  notify: notifySchema.optional(),
});
export type ErrorPolicy = z.infer<typeof errorPolicySchema>;

const DURATION = /^(\d{1,7})(s|m|h|d)$/;
const UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
/** "90s", "30m", "24h", "7d" in milliseconds. */
export function durationMs(duration: string): number {
  const [, n, unit] = DURATION.exec(duration)!;
  return Number(n) * UNIT_MS[unit as keyof typeof UNIT_MS];
}
/** A duration as "90s", "30m", "24h" or "7d". */
export const durationSchema = z.string().regex(DURATION, 'must be a duration such as "30m", "24h" or "7d"');

/** Dry run and approval, for jobs that change or delete existing rows. */
export const approvalSchema = strictObject({
  /** Count the matching rows and show a sample; change nothing. */
  dryRun: z.boolean().default(false),
  /** Compute the preview, then wait for an approve or reject signal before changing anything. */
  requiresConfirmation: z.boolean().default(false),
  /** How long to wait for approval before the run ends as cancelled: "90s", "30m", "24h", "7d" (at most 30 days). */
  confirmationTimeout: durationSchema
    .refine((d) => durationMs(d) <= 30 * UNIT_MS.d, 'must be at most 30 days')
    .default('24h'),
  /** Rows shown in the preview. */
  sampleSize: z.number().int().min(0).max(100).default(10),
  /** Refuse to start (and say so) when more rows than this match. */
  maxRecords: z.number().int().min(0).optional(),
});

export const errorCodeSchema = z.enum([...Object.values(ErrorCode), ...recordErrorCodes, ...fatalCodes]);
/** Why a run, a step or a row failed: a stable code and a message. */
export const failureSchema = z.object({ code: errorCodeSchema, message: z.string() });
export type Failure = z.infer<typeof failureSchema>;

export const countsSchema = z.object({
  processed: z.number().int(),
  succeeded: z.number().int(),
  failed: z.number().int(),
  skipped: z.number().int(),
  // Imports: rows new to the dataset and existing rows overwritten; bulk updates: rows changed.
  inserted: z.number().int().optional(),
  updated: z.number().int().optional(),
  // Cache refreshes: rows whose upstream values differed, rows confirmed unchanged, rows the upstream no longer has.
  refreshed: z.number().int().optional(),
  unchanged: z.number().int().optional(),
  notFound: z.number().int().optional(),
  total: z.number().int().optional(),
});
export type Counts = z.infer<typeof countsSchema>;
/** The counts a kind adds beyond processed / succeeded / failed / skipped, summed batch by batch. */
export const detailCounts = ['inserted', 'updated', 'refreshed', 'unchanged', 'notFound'] as const satisfies readonly (keyof Counts)[];
export type DetailCount = (typeof detailCounts)[number];
export const zeroCounts = (): Counts => ({ processed: 0, succeeded: 0, failed: 0, skipped: 0 });

export const runStatusSchema = z.enum(['running', 'success', 'partial', 'failed', 'cancelled']);
export type RunStatus = z.infer<typeof runStatusSchema>;

const sampleSchema = z.array(z.record(z.string(), z.unknown()));

/**
 * What a run would change: how many rows match and a sample of them (per step when it has steps).
 * Sample rows never enter workflow history: the plan stores them in Postgres (PreviewSamples) and
 * the API puts them back into the run it shows.
 */
export const previewSchema = z.object({
  matched: z.number().int(),
  sample: sampleSchema.optional(),
  /** Listed ids that do not exist (updates by id list). */
  notFound: z.number().int().optional(),
  steps: z.record(z.string(), z.object({ matched: z.number().int(), sample: sampleSchema.optional() })).optional(),
  /** Dedupe: rows read, duplicate groups found and the rows in them (`matched` is the rows a merge removes). */
  scanned: z.number().int().optional(),
  groups: z.number().int().optional(),
  duplicateRows: z.number().int().optional(),
});
export type Preview = z.infer<typeof previewSchema>;
/** A preview's sample rows, as stored for the run: the whole run's and each step's. */
export interface PreviewSamples {
  sample: Record<string, unknown>[];
  steps?: Record<string, Record<string, unknown>[]>;
}

/** What a run over existing rows settled before changing anything: its clock, its preview, its bounds. */
export interface RunPlan {
  /** "now" for the run's relative times, fixed for its whole life. */
  asOf: string;
  /** Counts only: the sample rows are stored (PreviewSamples). */
  preview: Preview;
  /** Per target, the highest id that matched. */
  bounds: number[];
  /** Units of work in the loop, when not one per matched row (several steps over the same rows). */
  total?: number;
  /** What planning wrote (a dedupe's report), for the result's outputs. */
  outputs?: RunOutput[];
  /** What planning noticed that the result should say (positions and counts only). */
  warnings?: string[];
}

export const stepStatusSchema = z.enum(['pending', 'running', 'success', 'partial', 'failed', 'cancelled', 'skipped']);
/** One step of a run made of steps (a pipeline's steps, a cleanup's rules). */
export const stepStateSchema = z.object({
  status: stepStatusSchema,
  /** The step's own run, when it runs as one (pipeline steps). */
  runId: z.string().optional(),
  counts: countsSchema.optional(),
  error: failureSchema.optional(),
  /** Why a skipped step did not run. */
  reason: z.string().optional(),
});
export type StepState = z.infer<typeof stepStateSchema>;

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
  steps: z.record(z.string(), stepStateSchema).optional(),
  /** Set while the run waits for approval: what it would change and until when it waits. */
  preview: previewSchema.optional(),
  approvalDeadline: z.string().optional(),
  /** Set when no worker answered: the counts are those of the last committed batch, and the step is unknown. */
  stale: z.boolean().optional(),
});
export type Progress = z.infer<typeof progressSchema>;

/** Progress with its rate and ETA worked out from the counts and bytes read so far. */
export function withRates(p: Pick<Progress, 'step' | 'counts' | 'bytesRead' | 'bytesTotal' | 'startedAt' | 'cancelRequested'>, now: number): Progress {
  const seconds = Math.max((now - Date.parse(p.startedAt)) / 1000, 0.001);
  const { counts, bytesRead, bytesTotal } = p;
  const remaining =
    bytesTotal !== undefined && bytesRead
      ? (bytesTotal - bytesRead) / (bytesRead / seconds)
      : counts.total !== undefined && counts.processed > 0
        ? (counts.total - counts.processed) / (counts.processed / seconds)
        : undefined;
  return {
    ...p,
    rowsPerSecond: Math.round(counts.processed / seconds),
    etaSeconds: remaining === undefined ? undefined : Math.max(0, Math.round(remaining)),
    updatedAt: new Date(now).toISOString(),
  };
}

export const rowErrorSchema = z.object({
  row: z.number().int().nullable(),
  line: z.number().int().nullable(),
  field: z.string().nullable(),
  code: errorCodeSchema,
  message: z.string(),
  raw: z.unknown(),
});
export type RowError = z.infer<typeof rowErrorSchema>;
/** A row error as a run's result samples it: where and why, without the row's raw input (results enter workflow history). */
export const errorSampleSchema = rowErrorSchema.omit({ raw: true });
export type ErrorSample = z.infer<typeof errorSampleSchema>;

/** A file a run wrote (an export): where it is and what it holds. */
export const runOutputSchema = z.object({
  /** `store://key` in Batchflow's object store, or `s3://bucket/key`. */
  location: z.string(),
  contentType: z.string(),
  bytes: z.number().int(),
  /** Hex SHA-256 of the file's bytes. */
  sha256: z.string(),
  rows: z.number().int().optional(),
  /** The API path that downloads it. */
  download: z.string(),
});
export type RunOutput = z.infer<typeof runOutputSchema>;

/** The API path that downloads a run's output (the first, unless it wrote several). */
export const downloadPath = (runId: string, output = 0) => `/runs/${encodeURIComponent(runId)}/download${output > 0 ? `?output=${output}` : ''}`;

/** Who approved or rejected a run that waited for approval, when, and what they said. */
export const approvalRecordSchema = z.object({
  decision: z.enum(['approved', 'rejected']),
  /** The name of the approving key. */
  by: z.string().optional(),
  at: z.string(),
  comment: z.string().optional(),
});
export type ApprovalRecord = z.infer<typeof approvalRecordSchema>;

export const runResultSchema = z.object({
  status: runStatusSchema.exclude(['running']),
  kind: z.string(),
  counts: countsSchema,
  /** Why the run stopped early or failed, when it did. */
  error: failureSchema.optional(),
  errorSample: z.array(errorSampleSchema),
  errorCount: z.number().int(),
  /** Where the full row error report is (an API path). */
  errorReport: z.string(),
  /** Files the run wrote (an export's file). */
  outputs: z.array(runOutputSchema),
  warnings: z.array(z.string()),
  /** Dry runs and runs that waited for approval: what matched. */
  preview: previewSchema.optional(),
  /** Runs that waited for approval: the decision, once made. */
  approval: approvalRecordSchema.optional(),
  steps: z.record(z.string(), stepStateSchema).optional(),
  startedAt: z.string(),
  endedAt: z.string(),
  durationMs: z.number(),
});
export type RunResult = z.infer<typeof runResultSchema>;

/** A finished run's figures, recorded for stats: counts and timings, never rows. */
export interface RunFacts {
  runId: string;
  /** The execution whose state holds the run's committed counts (RunRef.execution). */
  execution: string;
  kind: string;
  /** The run's dataset (its BatchflowDataset search attribute), when it has one. */
  dataset?: string;
  status: RunResult['status'];
  errorCode?: string;
  counts: Counts;
  startedAt: string;
  endedAt: string;
  durationMs: number;
}

/** The step a run shows while it waits for approval; also its BatchflowStatus, so the Web UI and GET /runs can list such runs. */
export const AWAITING_APPROVAL = 'awaiting_approval';

/** A run's status as visibility lists it: still going (running, awaiting approval) or how it ended. */
export const listedStatusSchema = z.union([runStatusSchema, z.literal(AWAITING_APPROVAL)]);
export type ListedStatus = z.infer<typeof listedStatusSchema>;

/** A run as visibility lists it. */
export const runListItemSchema = z.object({
  runId: z.string(),
  kind: z.string().optional(),
  dataset: z.string().optional(),
  scheduleId: z.string().optional().describe('The schedule that started the run, if one did'),
  scheduledAt: z.string().optional().describe('For a run a schedule started: the time it was due (a backfilled run\'s is in the past)'),
  status: listedStatusSchema,
  startedBy: z.string().optional().describe('The name of the API key that started it'),
  startTime: z.string().describe('When the run started (its current execution, after a continue-as-new)'),
  closeTime: z.string().nullable().describe('When it ended; null while it runs'),
});
export type RunListItem = z.infer<typeof runListItemSchema>;
