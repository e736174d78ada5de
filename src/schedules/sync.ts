import { ScheduleAlreadyRunning, ScheduleNotFoundError, type Client, type ScheduleDescription, type ScheduleHandle } from '@temporalio/client';
import type { DatasetRegistry } from '../datasets';
import { scheduleDigestAttribute } from '../jobs';
import { isManaged, loadSchedules, scheduleOptions, ScheduleFileError, type ScheduleDeclaration } from './declarations';

export interface SyncOutcome {
  created: string[];
  updated: string[];
  unchanged: string[];
  deleted: string[];
  /** Declared ids taken by a schedule Batchflow did not create (or created for another task queue): left alone. */
  conflicts: string[];
  /** Declared schedules that stay paused, with the note an operator or a declaration left. */
  paused: { id: string; note: string }[];
}

const describeOrNone = (handle: ScheduleHandle): Promise<ScheduleDescription | undefined> =>
  handle.describe().catch((err: unknown) => {
    if (err instanceof ScheduleNotFoundError) return undefined;
    throw err;
  });

/**
 * A sync never unpauses: a schedule paused by an operator (or by an earlier declaration) stays
 * paused with its note. `paused: true` in the file pauses a running schedule.
 */
export function nextState(live: { paused: boolean; note?: string }, declared: Pick<ScheduleDeclaration, 'paused' | 'note'>): { paused: boolean; note?: string } {
  if (live.paused) return { paused: true, note: live.note };
  if (declared.paused) return { paused: true, note: declared.note ?? 'paused by the schedules file' };
  return { paused: false, note: declared.note ?? live.note };
}

// An update reaches the schedule's search attributes a moment after its spec.
const DIGEST_WAIT_MS = 10_000;

async function waitForDigest(handle: ScheduleHandle, digest: string): Promise<void> {
  for (const deadline = Date.now() + DIGEST_WAIT_MS; Date.now() < deadline; await new Promise((r) => setTimeout(r, 50))) {
    const live = await describeOrNone(handle);
    if (!live || live.typedSearchAttributes.get(scheduleDigestAttribute) === digest) return;
  }
}

type Applied = { outcome: 'created' | 'updated' | 'unchanged' | 'conflict'; state: { paused: boolean; note?: string } };

/**
 * Creates the schedule or brings it up to its declaration, comparing the digest kept on the
 * schedule. Another process syncing the same declaration at once is a race both sides win: a
 * create that finds the schedule there, or an update that finds it gone, looks again.
 */
async function applyDeclaration(client: Client, d: ScheduleDeclaration, taskQueue: string): Promise<Applied> {
  const { digest, ...options } = scheduleOptions(d, taskQueue);
  const handle = client.schedule.getHandle(d.id);
  const refused = (err: unknown) => new ScheduleFileError(`schedule "${d.id}": Temporal refused it: ${(err as Error).message}`);
  for (let attempt = 1; ; attempt++) {
    const live = await describeOrNone(handle);
    try {
      if (!live) {
        await client.schedule.create(options);
        return { outcome: 'created', state: options.state as Applied['state'] };
      }
      if (!isManaged(live.memo, taskQueue)) return { outcome: 'conflict', state: live.state };
      if (live.typedSearchAttributes.get(scheduleDigestAttribute) === digest) return { outcome: 'unchanged', state: live.state };
      const state = nextState(live.state, d);
      await handle.update(() => ({ spec: options.spec, action: options.action, policies: options.policies, state, typedSearchAttributes: options.typedSearchAttributes }));
      await waitForDigest(handle, digest);
      return { outcome: 'updated', state };
    } catch (err) {
      const raced = err instanceof ScheduleAlreadyRunning || err instanceof ScheduleNotFoundError;
      // The SDK checks a spec as it encodes it (TypeError); the server answers INVALID_ARGUMENT (gRPC 3).
      if (!raced) throw err instanceof TypeError || (err as { cause?: { code?: number } }).cause?.code === 3 ? refused(err) : err;
      if (attempt >= 3) throw err;
    }
  }
}

/**
 * Makes Temporal's schedules match the declarations: creates missing ones, updates changed ones
 * (keeping a pause), deletes the ones Batchflow created for this task queue that are no longer
 * declared, and never touches any other schedule. Running it again changes nothing.
 */
export async function syncSchedules(client: Client, declarations: readonly ScheduleDeclaration[], taskQueue: string): Promise<SyncOutcome> {
  const outcome: SyncOutcome = { created: [], updated: [], unchanged: [], deleted: [], conflicts: [], paused: [] };
  for (const d of declarations) {
    const applied = await applyDeclaration(client, d, taskQueue);
    (applied.outcome === 'conflict' ? outcome.conflicts : outcome[applied.outcome]).push(d.id);
    if (applied.state.paused && applied.outcome !== 'conflict') outcome.paused.push({ id: d.id, note: applied.state.note ?? '' });
  }
  const declared = new Set(declarations.map((d) => d.id));
  for await (const summary of client.schedule.list()) {
    if (declared.has(summary.scheduleId) || !isManaged(summary.memo, taskQueue)) continue;
    await client.schedule
      .getHandle(summary.scheduleId)
      .delete()
      .then(
        () => outcome.deleted.push(summary.scheduleId),
        (err: unknown) => {
          // Another sync deleted it first.
          if (!(err instanceof ScheduleNotFoundError)) throw err;
        },
      );
  }
  return outcome;
}

/** The worker's start-up sync: the declarations file, checked (a bad one stops the worker), then synced. */
export async function syncDeclaredSchedules(client: Client, opts: { file: string; taskQueue: string; datasets: DatasetRegistry; log?: (msg: string) => void }): Promise<SyncOutcome> {
  const outcome = await syncSchedules(client, loadSchedules(opts.file, opts.datasets), opts.taskQueue);
  opts.log?.(summariseSync(outcome, opts.file));
  return outcome;
}

/** One line saying what a sync did. */
export function summariseSync(o: SyncOutcome, file: string): string {
  const part = (what: string, ids: string[]) => (ids.length ? [`${what} ${ids.join(', ')}`] : []);
  const parts = [
    ...part('created', o.created),
    ...part('updated', o.updated),
    ...part('unchanged', o.unchanged),
    ...part('deleted', o.deleted),
    ...part('NOT TOUCHED (a schedule Batchflow did not create has this id)', o.conflicts),
    ...part('still paused', o.paused.map((p) => `${p.id} (${p.note})`)),
  ];
  return `schedules from ${file}: ${parts.join('; ') || 'none declared'}`;
}
