import { ScheduleNotFoundError, type Client, type ScheduleDescription, type ScheduleHandle } from '@temporalio/client';
import { z } from 'zod';
import { addDays, startOfDay, type DateRange } from '../jobs/dates';
import { isManaged } from '../schedules/declarations';
import { ApiError, notFound } from './errors';
import type { RunService } from './runs';

/** A schedule as the API shows it, for the docs. */
export const scheduleExample = {
  id: 'daily-stats',
  kind: 'aggregate',
  params: {},
  spec: { declared: '0 2 * * *', timeZone: 'UTC' },
  overlap: 'buffer_all',
  catchupWindowMs: 86_400_000,
  paused: false,
  note: '',
  nextRunTimes: ['2026-11-24T02:00:00.000Z', '2026-11-25T02:00:00.000Z'],
  recentRuns: [{ runId: 'daily-stats-2026-11-23T02:00:00Z', status: 'success', scheduledAt: '2026-11-23T02:00:00.000Z', startTime: '2026-11-23T02:00:00.114Z', closeTime: '2026-11-23T02:00:03.902Z' }],
  runsStarted: 31,
  skippedOverlap: 0,
  missedCatchupWindow: 0,
};

export const scheduleViewSchema = z
  .object({
    id: z.string(),
    kind: z.string().optional(),
    params: z.unknown(),
    spec: z.object({
      /** The cron expression or calendar fields as declared. */
      declared: z.string(),
      timeZone: z.string(),
      jitterMs: z.number().optional(),
    }),
    overlap: z.string().optional(),
    catchupWindowMs: z.number(),
    paused: z.boolean(),
    note: z.string(),
    nextRunTimes: z.array(z.string()),
    recentRuns: z.array(z.object({ runId: z.string(), status: z.string(), scheduledAt: z.string().optional(), startTime: z.string(), closeTime: z.string().nullable() })),
    runsStarted: z.number().int(),
    skippedOverlap: z.number().int(),
    missedCatchupWindow: z.number().int(),
  })
  .meta({ id: 'Schedule', examples: [scheduleExample] });
export type ScheduleView = z.infer<typeof scheduleViewSchema>;

const NEXT_RUNS = 5;
const RECENT_RUNS = 10;
// After a trigger, how long to wait for Temporal to name the run it started.
const TRIGGER_WAIT_MS = 10_000;

/** The schedules Batchflow manages for this task queue, as the API shows and steers them. */
export function createScheduleService(client: Client, taskQueue: string, runs: RunService) {
  /** The schedule's description; 404 unless it exists and Batchflow created it for this task queue. */
  const describe = async (id: string): Promise<{ handle: ScheduleHandle; description: ScheduleDescription }> => {
    const handle = client.schedule.getHandle(id);
    const description = await handle.describe().catch((err: unknown) => {
      throw err instanceof ScheduleNotFoundError ? notFound(`schedule "${id}"`) : err;
    });
    if (!isManaged(description.memo, taskQueue)) throw notFound(`schedule "${id}" (Batchflow did not create it)`);
    return { handle, description };
  };

  const view = async ({ scheduleId, spec, action, policies, state, info }: ScheduleDescription): Promise<ScheduleView> => {
    const recent = await runs.listWhere({ scheduleId }, RECENT_RUNS);
    return {
      id: scheduleId,
      kind: action.memo?.kind as string | undefined,
      params: (action.args?.[0] as { params?: unknown } | undefined)?.params,
      spec: { declared: spec.calendars?.map((c) => c.comment).join('; ') ?? '', timeZone: spec.timezone ?? 'UTC', ...(spec.jitter && { jitterMs: spec.jitter }) },
      overlap: policies.overlap?.toLowerCase(),
      catchupWindowMs: policies.catchupWindow,
      paused: state.paused,
      note: state.note ?? '',
      nextRunTimes: info.nextActionTimes.slice(0, NEXT_RUNS).map((t) => t.toISOString()),
      recentRuns: recent.map((r) => ({ runId: r.runId, status: r.status, ...(r.scheduledAt && { scheduledAt: r.scheduledAt }), startTime: r.startTime, closeTime: r.closeTime })),
      runsStarted: info.numActionsTaken,
      skippedOverlap: info.numActionsSkippedOverlap,
      missedCatchupWindow: info.numActionsMissedCatchupWindow,
    };
  };

  return {
    async list(): Promise<ScheduleView[]> {
      const ids: string[] = [];
      for await (const s of client.schedule.list()) if (isManaged(s.memo, taskQueue)) ids.push(s.scheduleId);
      // A schedule deleted between the list and its description is simply gone.
      const described = await Promise.all(ids.sort().map((id) => describe(id).then((d) => d.description, () => undefined)));
      return Promise.all(described.filter((d) => d !== undefined).map(view));
    },

    async get(id: string): Promise<ScheduleView> {
      return view((await describe(id)).description);
    },

    async pause(id: string, note: string | undefined): Promise<ScheduleView> {
      const { handle } = await describe(id);
      await handle.pause(note ?? 'paused through the Batchflow API');
      return view(await handle.describe());
    },

    async unpause(id: string, note: string | undefined): Promise<ScheduleView> {
      const { handle } = await describe(id);
      await handle.unpause(note ?? 'unpaused through the Batchflow API');
      return view(await handle.describe());
    },

    /** Starts a run now, whatever runs already (an operator asked for it); answers with its id once Temporal names it. */
    async trigger(id: string): Promise<{ scheduleId: string; runId: string | null }> {
      const { handle, description } = await describe(id);
      const before = new Set(description.info.recentActions.map((a) => a.action.workflow.workflowId));
      await handle.trigger('ALLOW_ALL');
      for (const deadline = Date.now() + TRIGGER_WAIT_MS; Date.now() < deadline; await new Promise((r) => setTimeout(r, 100))) {
        const started = (await handle.describe()).info.recentActions.find((a) => !before.has(a.action.workflow.workflowId));
        if (started) return { scheduleId: id, runId: started.action.workflow.workflowId };
      }
      return { scheduleId: id, runId: null };
    },

    /**
     * Runs the schedule for every time it was due from the start of `from` to the end of `to` (in
     * its time zone), as if each had come then: one after another, none skipped.
     */
    async backfill(id: string, range: DateRange): Promise<{ scheduleId: string; from: string; to: string; start: string; end: string }> {
      const { handle, description } = await describe(id);
      const timeZone = description.spec.timezone ?? 'UTC';
      const start = startOfDay(range.from, timeZone);
      // The window's last second: a time due at the next midnight belongs to the next date.
      const end = new Date(startOfDay(addDays(range.to, 1), timeZone).getTime() - 1_000);
      if (end <= start) throw new ApiError(400, 'INVALID_REQUEST', 'to: must not be before from', 'to');
      await handle.backfill({ start, end, overlap: 'BUFFER_ALL' });
      return { scheduleId: id, ...range, start: start.toISOString(), end: end.toISOString() };
    },
  };
}
export type ScheduleService = ReturnType<typeof createScheduleService>;
