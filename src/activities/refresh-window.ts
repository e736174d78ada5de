import type { Batch } from './batch-runner';
import type { KeysetPosition } from '../jobs/checkpoint';
import type { BreakerSnapshot } from '../upstream/breaker';
import type { UpstreamClient } from '../upstream/client';

/**
 * The producer of a cache refresh's batches. It keeps a window of requests going to the upstream
 * (up to `concurrency` on the wire, more queued), in id order, and cuts the rows whose answers have
 * all come back, from the front of the window, into batches: every batchSize rows, or after a
 * second, whatever the size. So the upstream is kept busy across batch boundaries (a slow answer
 * holds back its batch's commit, not the requests after it), while the committed position stays
 * a prefix of the rows in id order, and a resumed run starts right after it.
 *
 * It keeps its own time: at the slice's deadline it starts no new request, lets those on the wire
 * and those retrying finish (a Retry-After included, so a row's tries and the upstream's pause do
 * not start over in the next slice), and hands back with what came back in order (`handBack`), so
 * no answer already paid for is thrown away. A cancel does the same without waiting for retries.
 * When the circuit breaker opens, nothing more is tried, and the last batch carries the rows it
 * will not fetch as skipped, and the reason the run stops.
 */

/** Where a refresh stands: the last row id settled, and the breaker's counts so the next slice continues its window. */
export interface RefreshPosition extends KeysetPosition {
  breaker?: BreakerSnapshot;
}

/** A row the run asks the upstream about. */
export interface WindowRow {
  id: number;
}

/** How the upstream settled one row; undefined in a batch means the row was skipped. */
export interface WindowBatch<R, S> extends Batch<RefreshPosition> {
  rows: { row: R; settled: S | undefined }[];
}

export interface WindowSpec<R extends WindowRow, S> {
  /** The rows after `after`, in id order; `last` when none follow them. */
  readRows(after: number): Promise<{ rows: R[]; last: boolean }>;
  /** Rows per request: 1, or a batch endpoint's ids per request. */
  perRequest: number;
  /** Asks the upstream about some rows; 'withdrawn' when the client stopped before they were settled. */
  settle(rows: R[]): Promise<S[] | 'withdrawn'>;
  /** The batch of settled rows: their errors and counts, and the stop when the breaker opened. */
  toBatch(rows: WindowBatch<R, S>['rows'], unhealthy: boolean): Omit<WindowBatch<R, S>, 'end' | 'handBack'>;
  client: Pick<UpstreamClient, 'drain' | 'stop' | 'abort' | 'stopped' | 'breaker'>;
  batchSize: number;
  /** Rows asked about and not yet committed, at most. */
  maxRows: number;
  /** When the slice hands back (epoch ms). */
  deadline: number;
  /** The activity's cancellation: handled like the deadline, without waiting for retries. */
  cancelled: AbortSignal;
}

/** A batch commits at least this often while answers come back, so progress shows at any rate. */
export const COMMIT_INTERVAL_MS = 1_000;

interface Request<R, S> {
  rows: R[];
  settled?: S[] | 'withdrawn';
  done: Promise<void>;
}

/** The windowed producer, as the runner takes it: closing it (the runner's return()) cuts the requests on the wire at once. */
export function refreshWindow<R extends WindowRow, S>(spec: WindowSpec<R, S>, from: KeysetPosition): AsyncIterable<WindowBatch<R, S>> {
  return {
    [Symbol.asyncIterator]() {
      const closed = new AbortController();
      const batches = windowBatches(spec, from, closed.signal);
      return {
        next: () => batches.next(),
        // An async generator would only run return() after the pending next(), which may be
        // waiting for answers: abort first, so that next() ends now.
        return: async () => {
          closed.abort();
          spec.client.abort();
          return batches.return(undefined);
        },
      };
    },
  };
}

async function* windowBatches<R extends WindowRow, S>(spec: WindowSpec<R, S>, from: KeysetPosition, closed: AbortSignal): AsyncGenerator<WindowBatch<R, S>> {
  const { client } = spec;
  const window: Request<R, S>[] = [];
  let windowRows = 0;
  /** Requests at the front of the window that have settled (not withdrawn). */
  let settledFront = 0;
  let pending = 0;
  let buffered: R[] = [];
  let readAfter = from.lastId;
  let exhausted = false;
  let lastEnd = from.lastId;
  let lastCut = Date.now();
  const wake = new Waker();
  let failure: Error | undefined;

  const start = (rows: R[]) => {
    const request: Request<R, S> = { rows, done: Promise.resolve() };
    pending += 1;
    request.done = spec.settle(rows).then(
      (settled) => {
        request.settled = settled;
      },
      (err: unknown) => {
        // settle() turns every answer into a settlement: anything else (the database) fails the slice.
        request.settled = 'withdrawn';
        failure ??= err instanceof Error ? err : new Error(String(err));
      },
    ).finally(() => {
      pending -= 1;
      wake.notify();
    });
    window.push(request);
    windowRows += rows.length;
  };

  /** Takes `count` requests off the front of the window as a batch. */
  const cut = (count: number, opts: { handBack?: boolean; unhealthy?: boolean } = {}): WindowBatch<R, S> => {
    const taken = window.splice(0, count);
    settledFront = Math.max(0, settledFront - count);
    const rows = taken.flatMap((r) => r.rows.map((row, i) => ({ row, settled: r.settled === 'withdrawn' ? undefined : r.settled![i] })));
    windowRows -= rows.length;
    if (rows.length > 0) lastEnd = rows.at(-1)!.row.id;
    lastCut = Date.now();
    return { ...spec.toBatch(rows, !!opts.unhealthy), end: { step: 0, lastId: lastEnd, breaker: client.breaker.snapshot(lastCut) }, ...(opts.handBack && { handBack: true }) };
  };

  /** Requests from the front of the settled ones whose rows make a full batch; 0 when they do not. */
  const fullBatch = () => {
    let rows = 0;
    for (let i = 0; i < settledFront; i++) {
      rows += window[i]!.rows.length;
      if (rows >= spec.batchSize) return i + 1;
    }
    return 0;
  };

  try {
    for (;;) {
      if (closed.aborted) return;
      if (failure) throw failure;
      if (spec.cancelled.aborted) client.stop();
      else if (!client.stopped && Date.now() >= spec.deadline) client.drain();
      while (!client.stopped && windowRows < spec.maxRows && (buffered.length > 0 || !exhausted)) {
        if (buffered.length === 0) {
          const page = await spec.readRows(readAfter);
          buffered = page.rows;
          exhausted = page.last;
          if (buffered.length > 0) readAfter = buffered.at(-1)!.id;
          if (closed.aborted) return;
          continue;
        }
        start(buffered.splice(0, spec.perRequest));
      }
      while (settledFront < window.length && window[settledFront]!.settled !== undefined && window[settledFront]!.settled !== 'withdrawn') settledFront += 1;

      if (client.breaker.isOpen) {
        // What was on the wire has answered: commit it, and the rest of the window as skipped.
        if (pending === 0) {
          yield cut(window.length, { unhealthy: true });
          return;
        }
      } else if (exhausted && buffered.length === 0 && settledFront === window.length) {
        if (window.length > 0) yield cut(window.length);
        return;
      } else if (client.stopped) {
        // The slice is over (or cancelled): what came back in order commits; what was withdrawn is asked again next slice.
        if (pending === 0) {
          yield cut(settledFront, { handBack: true });
          return;
        }
      } else {
        const full = fullBatch();
        if (full > 0 || (settledFront > 0 && Date.now() - lastCut >= COMMIT_INTERVAL_MS)) {
          yield cut(full || settledFront);
          continue;
        }
      }
      const untilCommit = settledFront > 0 ? COMMIT_INTERVAL_MS - (Date.now() - lastCut) : COMMIT_INTERVAL_MS;
      const untilDeadline = client.stopped ? COMMIT_INTERVAL_MS : spec.deadline - Date.now();
      await wake.wait(Math.max(1, Math.min(untilCommit, untilDeadline)), [closed, spec.cancelled]);
    }
  } finally {
    client.abort();
    await Promise.allSettled(window.map((r) => r.done));
  }
}

/** Resolves a waiter when something changed, when its time is up, or when a signal aborts. */
class Waker {
  private wakeUp?: () => void;

  notify(): void {
    this.wakeUp?.();
  }

  wait(ms: number, signals: AbortSignal[]): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        for (const s of signals) s.removeEventListener('abort', done);
        this.wakeUp = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wakeUp = done;
      for (const s of signals) s.addEventListener('abort', done, { once: true });
    });
  }
}
