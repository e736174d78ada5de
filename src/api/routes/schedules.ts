import { z } from 'zod';
import { strictObject } from '../../jobs/strict';
import { checkDateRange, isoDateSchema } from '../../jobs/dates';
import { scheduleIdSchema } from '../../schedules/declarations';
import type { App } from '../app';
import { errorResponses } from '../errors';
import { scheduleExample, scheduleViewSchema, type ScheduleService } from '../schedules';

/** Dates a backfill may span: a year of a daily schedule is 366 runs, each queued in Temporal. */
const MAX_BACKFILL_DAYS = 366;

const idParams = strictObject({ id: scheduleIdSchema.describe('The schedule id, as declared (daily-stats)') });
// A POST without a body reaches the schema as null.
const noteBody = strictObject({ note: z.string().max(500).optional().describe('Why, shown with the schedule') })
  .nullish()
  .meta({ examples: [{ note: 'paused during the migration' }] });
const backfillBody = strictObject({ from: isoDateSchema, to: isoDateSchema })
  .superRefine((range, ctx) => checkDateRange(ctx, range, MAX_BACKFILL_DAYS))
  .meta({ examples: [{ from: '2026-11-01', to: '2026-11-07' }] });

const listResponse = z
  .object({ schedules: z.array(scheduleViewSchema) })
  .describe('Every schedule Batchflow manages')
  .meta({ examples: [{ schedules: [scheduleExample] }] });
const triggerResponse = z
  .object({ scheduleId: z.string(), runId: z.string().nullable().describe('The run it started; null if Temporal had not named it within 10 s') })
  .describe('Started')
  .meta({ examples: [{ scheduleId: 'daily-stats', runId: 'daily-stats-2026-11-23T10:15:02Z' }] });
const backfillResponse = z
  .object({ scheduleId: z.string(), from: z.string(), to: z.string(), start: z.string(), end: z.string() })
  .describe('Queued: Temporal starts the runs one after another')
  .meta({ examples: [{ scheduleId: 'daily-stats', from: '2026-11-01', to: '2026-11-07', start: '2026-11-01T00:00:00.000Z', end: '2026-11-08T00:00:00.000Z' }] });
const scheduleResponse = scheduleViewSchema.describe('The schedule as Temporal now has it');

/**
 * The schedules Batchflow manages (declared in the schedules file, synced by the worker): read
 * them, pause and unpause them with a note, run one now, or backfill a range of dates. Pausing and
 * starting runs need the `run` scope, as starting and cancelling runs do.
 */
export function scheduleRoutes(app: App, deps: { schedules: ScheduleService }): void {
  const { schedules } = deps;
  const tags = ['schedules'];

  app.get(
    '/schedules',
    {
      config: { scope: 'read' },
      schema: { tags, summary: 'Every schedule: spec, next five run times, paused state and note, recent runs', response: { 200: listResponse, ...errorResponses } },
    },
    async () => ({ schedules: await schedules.list() }),
  );

  app.get(
    '/schedules/:id',
    { config: { scope: 'read' }, schema: { tags, summary: 'One schedule', params: idParams, response: { 200: scheduleResponse, ...errorResponses } } },
    async (request) => schedules.get(request.params.id),
  );

  for (const action of ['pause', 'unpause'] as const) {
    app.post(
      `/schedules/:id/${action}`,
      {
        config: { scope: 'run' },
        schema: {
          tags,
          summary: action === 'pause' ? 'Pause a schedule: it starts nothing until unpaused (a sync never unpauses it)' : 'Unpause a schedule',
          params: idParams,
          body: noteBody,
          response: { 200: scheduleResponse, ...errorResponses },
        },
      },
      async (request) => schedules[action](request.params.id, request.body?.note),
    );
  }

  app.post(
    '/schedules/:id/trigger',
    {
      config: { scope: 'run' },
      schema: { tags, summary: 'Start a run of the schedule now', params: idParams, body: strictObject({}).nullish().meta({ examples: [{}] }), response: { 202: triggerResponse, ...errorResponses } },
    },
    async (request, reply) => reply.status(202).send(await schedules.trigger(request.params.id)),
  );

  app.post(
    '/schedules/:id/backfill',
    {
      config: { scope: 'run' },
      schema: {
        tags,
        summary: 'Run the schedule for each time it was due from the start of `from` to the end of `to`, one after another',
        params: idParams,
        body: backfillBody,
        response: { 202: backfillResponse, ...errorResponses },
      },
    },
    async (request, reply) => reply.status(202).send(await schedules.backfill(request.params.id, request.body)),
  );
}
