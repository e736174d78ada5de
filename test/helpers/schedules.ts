import type { Client, ScheduleDescription } from '@temporalio/client';
import type { ScheduleView } from '../../src/api/schedules';
import type { RunListItem } from '../../src/jobs/run';
import { parseSchedules, type ScheduleDeclaration } from '../../src/schedules/declarations';
import { syncSchedules } from '../../src/schedules/sync';
import { shipped } from './datasets';
import type { Stack } from './stack';

/** Declarations from YAML text, checked as a schedules file is. */
export const declare = (yaml: string): ScheduleDeclaration[] => parseSchedules(yaml, 'test schedules', shipped);

/** Syncs declarations for the stack's task queue (or another). */
export const sync = (stack: Stack, declarations: readonly ScheduleDeclaration[], taskQueue = stack.config.temporal.taskQueue) =>
  syncSchedules(stack.client, declarations, taskQueue);

export const describeSchedule = (client: Client, id: string): Promise<ScheduleDescription> => client.schedule.getHandle(id).describe();

/** Polls until `check` returns a value (not undefined), or fails after `timeoutMs`. */
export async function eventually<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 120_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Temporal lists a new schedule a moment after creating it: waits until these are all listed. */
export async function waitListed(client: Client, ids: readonly string[]): Promise<void> {
  await eventually(`schedules ${ids.join(', ')} to be listed`, async () => {
    const listed = new Set<string>();
    for await (const s of client.schedule.list()) listed.add(s.scheduleId);
    return ids.every((id) => listed.has(id)) ? true : undefined;
  });
}

/** The runs a schedule started, through GET /runs?scheduleId=. */
export async function scheduledRuns(stack: Stack, scheduleId: string): Promise<RunListItem[]> {
  const res = await stack.app.inject({ method: 'GET', url: `/runs?scheduleId=${encodeURIComponent(scheduleId)}&limit=500` });
  if (res.statusCode !== 200) throw new Error(`GET /runs: ${res.statusCode} ${res.body}`);
  return res.json<{ runs: RunListItem[] }>().runs;
}

/** GET /schedules/:id. */
export async function getSchedule(stack: Stack, id: string): Promise<ScheduleView> {
  const res = await stack.app.inject({ method: 'GET', url: `/schedules/${encodeURIComponent(id)}` });
  if (res.statusCode !== 200) throw new Error(`GET /schedules/${id}: ${res.statusCode} ${res.body}`);
  return res.json<ScheduleView>();
}
