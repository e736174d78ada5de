import { Context } from '@temporalio/activity';
import { detailCounts, zeroCounts, type Counts, type DetailCount, type ErrorPolicy, type Failure, type RowError, type RunRef } from '../jobs/run';
import type { Checkpoint } from '../jobs/checkpoint';
import { inTransaction, type Pool, type PoolClient } from '../db/pool';
import { runState } from '../db/queries';
import { ErrorCode } from '../errors';
import { workerMetrics } from '../metrics/worker';

/**
 * Activities heartbeat at least this often while they work, whatever a batch or a query takes:
 * the heartbeat timeout (workflows/common.ts) then only ever means a dead worker.
 */
const HEARTBEAT_EVERY_MS = 5_000;

/**
 * Heartbeats every `everyMs` until the returned function is called; `details` gives what to send
 * (a slice's committed checkpoint, which a retry resumes from; nothing for other activities).
 */
function startHeartbeats(details: () => unknown, everyMs = HEARTBEAT_EVERY_MS): () => void {
  const ctx = Context.current();
  const timer = setInterval(() => ctx.heartbeat(details()), everyMs);
  return () => clearInterval(timer);
}

/** Runs `work` (a plan's counting, a run's ending) heartbeating all along. */
export async function heartbeating<T>(work: () => Promise<T>): Promise<T> {
  const stop = startHeartbeats(() => undefined);
  try {
    return await work();
  } finally {
    stop();
  }
}

/** One batch as a flow's producer made it: where it ends, and the rows it already rejected. */
export interface Batch<P> {
  end: P;
  /** Rejected before loading (parse or validation), one entry per problem. */
  errors: RowError[];
  /** How many distinct rows those errors reject. */
  rejectedRows: number;
  /** Set when the source cannot be read past this batch (a malformed file): the run stops failed. */
  fatal?: Failure;
  /** Extra checkpoint facts the producer learnt (warnings, totals). */
  warnings?: string[];
  bytesRead?: number;
  bytesTotal?: number;
  /** The named part of the input this batch belongs to (a cleanup rule): counted per step too. */
  step?: string;
  /** The dataset the batch writes or reads: its rows are counted per dataset too (stats, metrics). */
  dataset?: string;
  /**
   * Touches rows that a batch loading beside it (one of the parallelBatches - 1 before it) touches:
   * it must not load until that one has committed. Batches commit in order, so it waits for the
   * batch just before it, and with that for every earlier one.
   */
  waitForPrevious?: boolean;
  /**
   * The producer keeps its own time and ends the slice after this batch (a producer with work in
   * flight, such as requests to an upstream, winds it down and commits it rather than drop it).
   */
  handBack?: boolean;
}

export interface Applied extends Partial<Pick<Counts, DetailCount>> {
  succeeded: number;
  skipped: number;
  /** Rows the database step rejected, with their errors. */
  errors: RowError[];
  rejectedRows: number;
  /** What the run's result should say besides errors (kept once each, up to MAX_WARNINGS). */
  warnings?: string[];
}

const MAX_WARNINGS = 20;
const withWarnings = (warnings: string[], more: string[] | undefined) =>
  more?.length ? [...new Set([...warnings, ...more])].slice(0, MAX_WARNINGS) : warnings;

export interface SliceSpec<P, B extends Batch<P>> {
  pool: Pool;
  run: RunRef;
  /**
   * How long one activity call works before handing its checkpoint back to the workflow;
   * Infinity for a producer that ends its slices itself (`handBack`).
   */
  sliceMs: number;
  policy: ErrorPolicy;
  /** The checkpoint the workflow holds (undefined on the first slice). */
  cursor: Checkpoint<P> | undefined;
  initialPosition: P;
  /** Batches from a checkpoint on; reading may overlap with the previous batch's load. */
  batches(from: Checkpoint<P>): AsyncIterable<B>;
  /** Applies one batch inside the transaction that also stores its errors and the checkpoint. */
  apply(client: PoolClient, batch: B): Promise<Applied>;
  /**
   * How many batches load at once (default 1), each in a transaction of its own on its own
   * connection. They still commit in order, so the committed checkpoints remain a prefix.
   */
  parallelBatches?: number;
  /** How often to heartbeat the committed checkpoint while a batch takes long (HEARTBEAT_EVERY_MS). */
  heartbeatMs?: number;
}

const newest = <P>(...checkpoints: (Checkpoint<P> | undefined | null)[]): Checkpoint<P> | undefined =>
  checkpoints.reduce<Checkpoint<P> | undefined>((best, c) => (c && (!best || c.seq > best.seq) ? c : best), undefined);

function addCounts(counts: Counts, applied: Applied, rejectedBefore: number): Counts {
  const failed = counts.failed + rejectedBefore + applied.rejectedRows;
  const succeeded = counts.succeeded + applied.succeeded;
  const skipped = counts.skipped + applied.skipped;
  const sum: Counts = { ...counts, processed: succeeded + failed + skipped, succeeded, failed, skipped };
  for (const detail of detailCounts) {
    const n = applied[detail];
    if (n !== undefined) sum[detail] = (counts[detail] ?? 0) + n;
  }
  return sum;
}

function stopReason(policy: ErrorPolicy, counts: Counts, batchFailed: number): Checkpoint<unknown>['stop'] {
  if (policy.errorHandling === 'stop_on_error' && batchFailed > 0) {
    return { code: ErrorCode.StoppedOnError, message: 'stopped at the first rejected row (errorHandling: stop_on_error)' };
  }
  if (policy.maxErrors !== undefined && counts.failed > policy.maxErrors) {
    return { code: ErrorCode.TooManyErrors, message: `${counts.failed} rows rejected, more than maxErrors (${policy.maxErrors})` };
  }
  return undefined;
}

/** Why a loaded batch was rolled back rather than committed: an earlier batch stopped the run. */
class NotCommitted extends Error {}

/**
 * Another attempt of the same slice committed a batch first (this attempt outlived its heartbeat
 * timeout and was retried while still running): this one stops, having applied nothing twice.
 */
export class SupersededAttempt extends Error {
  override readonly name = 'SupersededAttempt';
  constructor(run: RunRef, committedSeq: number | undefined) {
    super(`run ${run.id} moved on to batch ${committedSeq} in another attempt; this attempt stops`);
  }
}

/**
 * The checkpointed loop every batch flow shares. It resumes from the newest of the workflow's
 * cursor, the last heartbeat and the checkpoint committed in Postgres (never behind the other
 * two: it commits with each batch), then applies batches one transaction each, committing the
 * batch, its row errors and the new checkpoint together, so a batch is applied and counted
 * exactly once whatever crashes. Up to `parallelBatches` batches load side by side, but each
 * commits only after the one before it, and only if that one did not stop the run. It returns
 * after `sliceMs` so the workflow can record progress, honour a cancel and continue-as-new
 * between slices.
 */
export async function runSlice<P, B extends Batch<P>>(spec: SliceSpec<P, B>): Promise<Checkpoint<P>> {
  const ctx = Context.current();
  const { execution } = spec.run;
  await runState.register(spec.pool, spec.run);
  const stored = await runState.readCheckpoint<Checkpoint<P>>(spec.pool, execution);
  let committed: Checkpoint<P> = newest(spec.cursor, ctx.info.heartbeatDetails as Checkpoint<P> | undefined, stored?.checkpoint) ?? {
    seq: 0,
    position: spec.initialPosition,
    counts: zeroCounts(),
    done: false,
    warnings: [],
  };
  if (committed.done || committed.stop) return committed;
  if (!stored) await runState.ensureCheckpoint(spec.pool, execution, committed);
  workerMetrics.sliceStarted(ctx.info.workflowType, ctx.info.attempt);
  if (ctx.info.attempt > 1) ctx.log.warn('slice retried: resuming after the last committed batch', { batch: committed.seq, processed: committed.counts.processed });

  /** Loads a batch, then commits it on top of the checkpoint `previous` resolves to. */
  const load = async (batch: B, previous: Promise<Checkpoint<P>>): Promise<Checkpoint<P>> => {
    if (batch.waitForPrevious && (await previous).stop) return previous;
    const loadStart = performance.now();
    const checkpoint = await inTransaction(spec.pool, async (client) => {
      const applied = await spec.apply(client, batch);
      const base = await previous;
      if (base.stop) throw new NotCommitted();
      // Serialises attempts: a slice retried while an older attempt still runs (a batch that
      // outlived the heartbeat timeout) must not apply the same batch twice.
      const committedSeq = await runState.lockCheckpoint(client, execution);
      if (committedSeq !== base.seq) throw new SupersededAttempt(spec.run, committedSeq);
      const counts = addCounts(base.counts, applied, batch.rejectedRows);
      const byStep = batch.step
        ? { ...base.byStep, [batch.step]: addCounts(base.byStep?.[batch.step] ?? zeroCounts(), applied, batch.rejectedRows) }
        : base.byStep;
      const byDataset = batch.dataset
        ? { ...base.byDataset, [batch.dataset]: addCounts(base.byDataset?.[batch.dataset] ?? zeroCounts(), applied, batch.rejectedRows) }
        : base.byDataset;
      const stop = batch.fatal ?? stopReason(spec.policy, counts, batch.rejectedRows + applied.rejectedRows);
      const updated: Checkpoint<P> = {
        seq: base.seq + 1,
        position: batch.end,
        counts,
        ...(byStep && { byStep }),
        ...(byDataset && { byDataset }),
        done: false,
        warnings: withWarnings(batch.warnings ?? base.warnings, applied.warnings),
        bytesRead: batch.bytesRead,
        bytesTotal: batch.bytesTotal ?? base.bytesTotal,
        ...(stop && { stop }),
      };
      await runState.insertErrors(client, execution, [...batch.errors, ...applied.errors]);
      await runState.writeCheckpoint(client, execution, updated.seq, updated);
      return updated;
    }).then(
      async (updated) => {
        workerMetrics.batchCommitted(ctx.info.workflowType, batch.dataset, (await previous).counts, updated.counts, (performance.now() - loadStart) / 1000);
        return updated;
      },
      async (err: unknown) => {
        if (err instanceof NotCommitted) return previous;
        throw err;
      },
    );
    if (checkpoint.seq > committed.seq) {
      committed = checkpoint;
      ctx.heartbeat(checkpoint);
    }
    return checkpoint;
  };

  const started = Date.now();
  const parallel = spec.parallelBatches ?? 1;
  const iterator = spec.batches(committed)[Symbol.asyncIterator]();
  let next: Promise<IteratorResult<B>> | undefined = iterator.next();
  // The newest batch's commit, and the commits not yet awaited (oldest first).
  let tail: Promise<Checkpoint<P>> = Promise.resolve(committed);
  const inFlight: Promise<Checkpoint<P>>[] = [];
  let reachedEnd = false;
  // A batch that takes long to read or load (a slow source, an upstream's Retry-After) must not
  // make a live worker look dead: the committed checkpoint is heartbeated every few seconds anyway.
  const stopHeartbeats = startHeartbeats(() => committed, spec.heartbeatMs);
  try {
    while (next) {
      const result: IteratorResult<B> = await next;
      if (result.done) {
        reachedEnd = true;
        break;
      }
      const batch: B = result.value;
      // Read and validate the next batch while this one loads; Postgres and Node work side by side.
      next = batch.fatal || batch.handBack ? undefined : iterator.next();
      next?.catch(() => undefined);
      tail = load(batch, tail);
      tail.catch(() => undefined);
      inFlight.push(tail);
      if (inFlight.length >= parallel && (await inFlight.shift()!).stop) break;
      // Hand back to the workflow between batches: on time, or when the run was cancelled or the
      // worker is shutting down (both reach the activity as its cancellation signal).
      if (Date.now() - started >= spec.sliceMs || ctx.cancellationSignal.aborted) break;
    }
  } finally {
    // Batches already loading still commit (or roll back) before the slice returns.
    await Promise.allSettled(inFlight);
    await iterator.return?.(undefined).catch(() => undefined);
    stopHeartbeats();
  }
  await tail;
  if (reachedEnd && !committed.stop) {
    committed = { ...committed, done: true };
    await runState.writeCheckpoint(spec.pool, execution, committed.seq, committed);
  }
  ctx.log.info('slice handed back', { batch: committed.seq, processed: committed.counts.processed, failed: committed.counts.failed, done: committed.done, ...(committed.stop && { stop: committed.stop.code }) });
  return committed;
}
