import { Context } from '@temporalio/activity';
import { zeroCounts, type ErrorPolicy, type Counts, type RowError } from '../jobs/run';
import type { Checkpoint } from '../jobs/checkpoint';
import { inTransaction, type Pool, type PoolClient } from '../db/pool';
import { runState } from '../db/queries';
import { ErrorCode } from '../errors';

/** One batch as a flow's producer made it: where it ends, and the rows it already rejected. */
export interface Batch<P> {
  end: P;
  /** Rejected before loading (parse or validation), one entry per problem. */
  errors: RowError[];
  /** How many distinct rows those errors reject. */
  rejectedRows: number;
  /** Set when the source cannot be read past this batch (a malformed file): the run stops failed. */
  fatal?: { code: string; message: string };
  /** Extra checkpoint facts the producer learnt (warnings, totals). */
  warnings?: string[];
  bytesRead?: number;
  bytesTotal?: number;
  /** The named part of the input this batch belongs to (a cleanup rule): counted per step too. */
  step?: string;
}

export interface Applied {
  succeeded: number;
  skipped: number;
  inserted?: number;
  updated?: number;
  /** Rows the database step rejected, with their errors. */
  errors: RowError[];
  rejectedRows: number;
}

export interface SliceSpec<P, B extends Batch<P>> {
  pool: Pool;
  runId: string;
  /** How long one activity call works before handing its checkpoint back to the workflow. */
  sliceMs: number;
  policy: ErrorPolicy;
  /** The checkpoint the workflow holds (undefined on the first slice). */
  cursor: Checkpoint<P> | undefined;
  initialPosition: P;
  /** Batches from a checkpoint on; reading may overlap with the previous batch's load. */
  batches(from: Checkpoint<P>): AsyncIterable<B>;
  /** Applies one batch inside the transaction that also stores its errors and the checkpoint. */
  apply(client: PoolClient, batch: B): Promise<Applied>;
}

const newest = <P>(...checkpoints: (Checkpoint<P> | undefined | null)[]): Checkpoint<P> | undefined =>
  checkpoints.reduce<Checkpoint<P> | undefined>((best, c) => (c && (!best || c.seq > best.seq) ? c : best), undefined);

function addCounts(counts: Counts, applied: Applied, rejectedBefore: number): Counts {
  const failed = counts.failed + rejectedBefore + applied.rejectedRows;
  const succeeded = counts.succeeded + applied.succeeded;
  const skipped = counts.skipped + applied.skipped;
  return {
    ...counts,
    processed: succeeded + failed + skipped,
    succeeded,
    failed,
    skipped,
    ...(applied.inserted !== undefined && { inserted: (counts.inserted ?? 0) + applied.inserted }),
    ...(applied.updated !== undefined && { updated: (counts.updated ?? 0) + applied.updated }),
  };
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

/**
 * The checkpointed loop every batch flow shares. It resumes from the newest of the workflow's
 * cursor, the last heartbeat and the checkpoint committed in Postgres (never behind the other
 * two: it commits with each batch), then applies batches one transaction each, committing the
 * batch, its row errors and the new checkpoint together, so a batch is applied and counted
 * exactly once whatever crashes. It returns after `sliceMs` so the workflow can record progress,
 * honour a cancel and continue-as-new between slices.
 */
export async function runSlice<P, B extends Batch<P>>(spec: SliceSpec<P, B>): Promise<Checkpoint<P>> {
  const ctx = Context.current();
  const stored = await runState.readCheckpoint<Checkpoint<P>>(spec.pool, spec.runId);
  let checkpoint: Checkpoint<P> = newest(spec.cursor, ctx.info.heartbeatDetails as Checkpoint<P> | undefined, stored?.checkpoint) ?? {
    seq: 0,
    position: spec.initialPosition,
    counts: zeroCounts(),
    done: false,
    warnings: [],
  };
  if (checkpoint.done || checkpoint.stop) return checkpoint;
  if (!stored) await runState.ensureCheckpoint(spec.pool, spec.runId, checkpoint);

  const started = Date.now();
  const iterator = spec.batches(checkpoint)[Symbol.asyncIterator]();
  let next: Promise<IteratorResult<B>> | undefined = iterator.next();
  try {
    while (next) {
      const result: IteratorResult<B> = await next;
      if (result.done) {
        checkpoint = { ...checkpoint, done: true };
        await runState.writeCheckpoint(spec.pool, spec.runId, checkpoint.seq, checkpoint);
        break;
      }
      const batch: B = result.value;
      // Read and validate the next batch while this one loads; Postgres and Node work side by side.
      next = batch.fatal ? undefined : iterator.next();
      next?.catch(() => undefined);

      checkpoint = await inTransaction(spec.pool, async (client) => {
        // Serialises attempts: a slice retried while an older attempt still runs (a batch that
        // outlived the heartbeat timeout) must not apply the same batch twice.
        const committedSeq = await runState.lockCheckpoint(client, spec.runId);
        if (committedSeq !== checkpoint.seq) throw new Error(`run ${spec.runId} moved on to batch ${committedSeq} in another attempt; this attempt stops`);
        const applied = await spec.apply(client, batch);
        const counts = addCounts(checkpoint.counts, applied, batch.rejectedRows);
        const byStep = batch.step
          ? { ...checkpoint.byStep, [batch.step]: addCounts(checkpoint.byStep?.[batch.step] ?? zeroCounts(), applied, batch.rejectedRows) }
          : checkpoint.byStep;
        const stop = batch.fatal ?? stopReason(spec.policy, counts, batch.rejectedRows + applied.rejectedRows);
        const updated: Checkpoint<P> = {
          seq: checkpoint.seq + 1,
          position: batch.end,
          counts,
          ...(byStep && { byStep }),
          done: false,
          warnings: batch.warnings ?? checkpoint.warnings,
          bytesRead: batch.bytesRead,
          bytesTotal: batch.bytesTotal ?? checkpoint.bytesTotal,
          ...(stop && { stop }),
        };
        await runState.insertErrors(client, spec.runId, [...batch.errors, ...applied.errors]);
        await runState.writeCheckpoint(client, spec.runId, updated.seq, updated);
        return updated;
      });
      ctx.heartbeat(checkpoint);
      if (checkpoint.stop) break;
      // Hand back to the workflow between batches: on time, or when the run was cancelled or the
      // worker is shutting down (both reach the activity as its cancellation signal).
      if (Date.now() - started >= spec.sliceMs || ctx.cancellationSignal.aborted) break;
    }
  } finally {
    await iterator.return?.(undefined).catch(() => undefined);
  }
  return checkpoint;
}
