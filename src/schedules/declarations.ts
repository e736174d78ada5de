import { createHash } from 'node:crypto';
import fs from 'node:fs';
import type { ScheduleOptions, ScheduleOverlapPolicy } from '@temporalio/client';
import YAML from 'yaml';
import { z } from 'zod';
import type { DatasetRegistry } from '../datasets';
import { isTimeZone } from '../jobs/dates';
import { jobKindNames, jobKinds, scheduleDigestAttribute, type JobKind } from '../jobs';
import { durationMs, durationSchema } from '../jobs/run';
import { runStartOptions } from '../jobs/start';
import { calendarFields, describeCalendar, parseCalendarField, toCalendarSpec, type CalendarDeclaration } from './calendar';

/**
 * Schedules declared in one YAML file (BATCHFLOW_SCHEDULES): each an id, a cron or calendar spec
 * in a time zone, a job kind and its params (checked by the kind's schema and against the declared
 * datasets, as POST /runs checks them), an overlap policy, a catch-up window, an optional jitter, and a paused flag with a note.
 */

export const scheduleIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/, 'may contain only letters, digits, ".", "_" and "-" (at most 100)');

// Temporal reads 5 to 7 fields (seconds first, year last when given) or a shorthand such as @daily.
const CRON = /^(@(yearly|annually|monthly|weekly|daily|hourly)|(\S+\s+){4,6}\S+)$/;

const calendarValue = z.union([z.number().int(), z.string().min(1), z.array(z.union([z.number().int(), z.string().min(1)])).min(1)]);
const calendarSchema = z
  .strictObject(Object.fromEntries(calendarFields.map((f) => [f, calendarValue.optional()])) as Record<(typeof calendarFields)[number], z.ZodOptional<typeof calendarValue>>)
  .superRefine((calendar, ctx) => {
    for (const field of calendarFields) {
      const value = calendar[field];
      const parsed = value === undefined ? undefined : parseCalendarField(field, value);
      if (parsed && 'error' in parsed) ctx.addIssue({ code: 'custom', path: [field], message: parsed.error });
    }
  });

export const overlapPolicies = ['skip', 'buffer_one', 'buffer_all', 'cancel_other', 'terminate_other', 'allow_all'] as const;
export type OverlapPolicy = (typeof overlapPolicies)[number];

// Temporal refuses a catch-up window under 10 seconds.
const MIN_CATCHUP_MS = 10_000;

const declarationSchema = z
  .strictObject({
    /** A cron expression ("0 2 * * *"); or `calendar`. */
    cron: z.string().trim().regex(CRON, 'must be a cron expression of 5 to 7 fields ("0 2 * * *") or @daily, @hourly, …').optional(),
    /** Calendar fields ({hour: 3, dayOfWeek: SUNDAY}); or `cron`. */
    calendar: calendarSchema.optional(),
    timeZone: z.string().default('UTC').refine(isTimeZone, 'must be an IANA time zone such as UTC or Europe/Paris'),
    kind: z.enum(jobKindNames),
    params: z.record(z.string(), z.unknown()).default({}),
    /** What happens when a run is due while the previous one still runs. */
    overlap: z.enum(overlapPolicies).default('skip'),
    /** How late a run that was missed (Temporal or every worker down) may still start. */
    catchupWindow: durationSchema.refine((d) => durationMs(d) >= MIN_CATCHUP_MS, 'must be at least 10s').default('1h'),
    /** Each run starts up to this much later than its time, at random, so that schedules due together spread out. */
    jitter: durationSchema.optional(),
    paused: z.boolean().default(false),
    note: z.string().max(500).optional(),
  })
  .superRefine((d, ctx) => {
    if ((d.cron === undefined) === (d.calendar === undefined)) ctx.addIssue({ code: 'custom', path: ['cron'], message: 'give either cron or calendar' });
  });

const fileSchema = z.strictObject({ schedules: z.record(scheduleIdSchema, z.unknown()).default({}) });

/** A checked declaration, its params parsed by its kind's schema. */
export interface ScheduleDeclaration extends Omit<z.output<typeof declarationSchema>, 'calendar'> {
  id: string;
  calendar?: CalendarDeclaration;
}

/** A schedules file Batchflow cannot use; the message names the file, the schedule and the field. */
export class ScheduleFileError extends Error {}

const at = (path: readonly PropertyKey[]) => path.map(String).join('.');

/** Checks a schedules file's text; throws ScheduleFileError naming each bad schedule and field. */
export function parseSchedules(text: string, source: string, datasets: DatasetRegistry): ScheduleDeclaration[] {
  let raw: unknown;
  try {
    raw = YAML.parse(text) ?? {};
  } catch (err) {
    throw new ScheduleFileError(`${source}: not valid YAML: ${(err as Error).message}`);
  }
  const file = fileSchema.safeParse(raw);
  if (!file.success) throw new ScheduleFileError(`${source}: ${file.error.issues.map((i) => `${at(i.path) || 'file'}: ${i.message}`).join('; ')}`);
  const problems: string[] = [];
  const declarations: ScheduleDeclaration[] = [];
  for (const [id, value] of Object.entries(file.data.schedules)) {
    const declared = declarationSchema.safeParse(value);
    const issues = declared.success ? [] : declared.error.issues.map((i) => ({ path: at(i.path), message: i.message }));
    if (declared.success) {
      // The same strict schema and check as POST /runs: unknown keys are refused, defaults filled in, datasets declared.
      const kind = jobKinds[declared.data.kind] as JobKind;
      const params = kind.schema.safeParse(declared.data.params);
      const paramIssues = params.success ? kind.check(params.data, datasets) : params.error.issues;
      if (params.success && paramIssues.length === 0) declarations.push({ ...declared.data, params: params.data as Record<string, unknown>, id });
      else issues.push(...paramIssues.map((i) => ({ path: at(['params', ...i.path]), message: i.message })));
    }
    problems.push(...issues.map((i) => `schedule "${id}": ${i.path || 'declaration'}: ${i.message}`));
  }
  if (problems.length) throw new ScheduleFileError(`${source}: ${problems.join('; ')}`);
  return declarations;
}

export function loadSchedules(file: string, datasets: DatasetRegistry): ScheduleDeclaration[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new ScheduleFileError(`cannot read the schedules file ${file} (BATCHFLOW_SCHEDULES): ${(err as Error).message}`);
  }
  return parseSchedules(text, file, datasets);
}

const OVERLAP: Record<OverlapPolicy, ScheduleOverlapPolicy> = {
  skip: 'SKIP',
  buffer_one: 'BUFFER_ONE',
  buffer_all: 'BUFFER_ALL',
  cancel_other: 'CANCEL_OTHER',
  terminate_other: 'TERMINATE_OTHER',
  allow_all: 'ALLOW_ALL',
};

/** The declared spec as one line, kept as the Temporal spec's comment so that listings show what was written. */
export const describeSpec = (d: Pick<ScheduleDeclaration, 'cron' | 'calendar'>): string => d.cron ?? describeCalendar(d.calendar ?? {});

/** Marks the schedules Batchflow created, and for which task queue (a deployment): a sync touches only those. */
export type ManagedMemo = { managedBy: 'batchflow'; taskQueue: string };
export const isManaged = (memo: Record<string, unknown> | undefined, taskQueue: string): boolean =>
  memo?.managedBy === 'batchflow' && memo.taskQueue === taskQueue;

/**
 * A declaration as Temporal schedule options. Its runs start exactly as POST /runs starts them
 * (workflow type, input, search attributes, memo), on this task queue; Temporal names each run
 * `<schedule id>-<due time>`.
 */
export function scheduleOptions(d: ScheduleDeclaration, taskQueue: string): ScheduleOptions & { digest: string } {
  const run = runStartOptions(d.kind, d.params);
  const comment = describeSpec(d);
  const spec = {
    ...(d.cron ? { cronExpressions: [`${d.cron} #${comment}`] } : { calendars: [toCalendarSpec(d.calendar ?? {}, comment)] }),
    timezone: d.timeZone,
    ...(d.jitter && { jitter: durationMs(d.jitter) }),
  };
  const action = { type: 'startWorkflow' as const, workflowType: run.workflowType, taskQueue, workflowId: d.id, args: run.args, memo: run.memo, typedSearchAttributes: run.typedSearchAttributes };
  const policies = { overlap: OVERLAP[d.overlap], catchupWindow: durationMs(d.catchupWindow) };
  const state = { paused: d.paused, ...(d.note !== undefined && { note: d.note }) };
  // The digest covers what Temporal is given, so a change in how Batchflow starts runs updates schedules too.
  const digest = createHash('sha256').update(JSON.stringify({ spec, action, policies, state })).digest('hex').slice(0, 32);
  // Temporal keeps a schedule's memo as created: it holds only what never changes.
  const memo: ManagedMemo = { managedBy: 'batchflow', taskQueue };
  return { scheduleId: d.id, spec, action, policies, state, memo, typedSearchAttributes: [{ key: scheduleDigestAttribute, value: digest }], digest };
}
