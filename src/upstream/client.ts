import { setMaxListeners } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { ErrorCode } from '../errors';
import { CircuitBreaker, type BreakerSettings, type BreakerSnapshot } from './breaker';
import { Pacer, Semaphore } from './limits';
import { backoffMs, retryAfterMs, statusMeaning } from './retry';

/**
 * The HTTP side of a cache refresh: Node's own fetch with a run's limits and manners. Every try
 * waits for a place among `concurrency`, then for its turn at `ratePerSecond`; the answer goes to
 * the circuit breaker, and a failed try is retried as its kind deserves. Header values are passed
 * in by the caller (from the worker's environment) and never appear in an outcome or a message.
 */

export interface UpstreamPolicy {
  concurrency: number;
  ratePerSecond?: number;
  timeoutMs: number;
  maxAttempts: number;
  maxRetryAfterSeconds: number;
  circuitBreaker: BreakerSettings;
}

/** How one request ended, after its retries. */
export type Answer =
  | { outcome: 'ok'; body: unknown }
  | { outcome: 'not_found' }
  | { outcome: 'failed'; code: ErrorCode; message: string }
  /** Not sent, or not tried again, because the client stopped (the slice ended, the breaker opened). */
  | { outcome: 'withdrawn' };

interface Failure {
  code: ErrorCode;
  /** What went wrong, without the URL or anything from the row: it may reach workflow history. */
  message: string;
  retry: boolean;
  unhealthy: boolean;
  retryAfterMs?: number;
}
type Attempt = Exclude<Answer, { outcome: 'failed' }> | { outcome: 'error'; failure: Failure };

/** Larger answers are refused: a run keeps at most a window of them in memory. */
export const MAX_RESPONSE_BYTES = 8 * 2 ** 20;

export type UpstreamClient = ReturnType<typeof createUpstreamClient>;

export function createUpstreamClient(opts: { policy: UpstreamPolicy; headers: Record<string, string>; breaker?: BreakerSnapshot }) {
  const { policy } = opts;
  const semaphore = new Semaphore(policy.concurrency);
  const pacer = new Pacer(policy.ratePerSecond, performance.now());
  const breaker = new CircuitBreaker(policy.circuitBreaker, opts.breaker);
  // drain(): no request starts its first try. stop(): no try at all, waiting ones are withdrawn.
  // abort(): the tries on the wire are cut too.
  const noFirstTries = new AbortController();
  const noTries = new AbortController();
  const onTheWire = new AbortController();
  // Every waiting request listens to them: a window holds hundreds.
  setMaxListeners(Number.POSITIVE_INFINITY, noFirstTries.signal, noTries.signal, onTheWire.signal);
  const stop = () => {
    noFirstTries.abort();
    noTries.abort();
  };
  const baseHeaders = { accept: 'application/json', 'user-agent': 'batchflow-cache-refresh', ...opts.headers };

  async function once(url: string, method: 'GET' | 'POST', body: string | undefined): Promise<Attempt> {
    // One controller per try, released when it ends: AbortSignal.timeout() would keep each try's
    // signal for timeoutMs, and AbortSignal.any() ties them all to the long-lived onTheWire.
    const tryController = new AbortController();
    const { signal } = tryController;
    const timer = setTimeout(() => tryController.abort(), policy.timeoutMs);
    const cut = () => tryController.abort();
    onTheWire.signal.addEventListener('abort', cut, { once: true });
    try {
      const headers = body === undefined ? baseHeaders : { ...baseHeaders, 'content-type': 'application/json' };
      // Redirects are not followed: the next hop would escape the origins the worker allows.
      const res = await fetch(url, { method, headers, body, signal, redirect: 'manual' });
      const meaning = statusMeaning(res.status);
      const text = await readBody(res);
      if (meaning.outcome === 'not_found') return { outcome: 'not_found' };
      if (meaning.outcome === 'ok') {
        try {
          return { outcome: 'ok', body: JSON.parse(text) as unknown };
        } catch (err) {
          return fail({ code: ErrorCode.InvalidResponse, message: `the response is not valid JSON (${(err as Error).message})`, retry: false, unhealthy: true });
        }
      }
      return fail({
        code: ErrorCode.UpstreamError,
        message: `HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}${res.status >= 300 && res.status < 400 ? ' (redirects are not followed: use the final URL)' : ''}`,
        retry: meaning.retry,
        unhealthy: meaning.unhealthy,
        retryAfterMs: meaning.honourRetryAfter ? retryAfterMs(res.headers.get('retry-after'), Date.now()) : undefined,
      });
    } catch (err) {
      if (onTheWire.signal.aborted) return { outcome: 'withdrawn' };
      if (err instanceof ResponseTooLarge) return fail({ code: ErrorCode.InvalidResponse, message: err.message, retry: false, unhealthy: false });
      if (signal.aborted) return fail({ code: ErrorCode.UpstreamError, message: `timed out after ${policy.timeoutMs} ms`, retry: true, unhealthy: true });
      return fail({ code: ErrorCode.UpstreamError, message: `network error: ${networkCause(err)}`, retry: true, unhealthy: true });
    } finally {
      clearTimeout(timer);
      onTheWire.signal.removeEventListener('abort', cut);
    }
  }

  /** One request with its retries: a place, a turn, a try; again after Retry-After or a backoff while it is worth it. */
  async function request(url: string, init: { method: 'GET' | 'POST'; body?: string } = { method: 'GET' }): Promise<Answer> {
    let last: Failure | undefined;
    let attempts = 0;
    while (attempts < policy.maxAttempts) {
      if (last) {
        if (last.retryAfterMs !== undefined) {
          if (last.retryAfterMs > policy.maxRetryAfterSeconds * 1000) {
            return { outcome: 'failed', code: last.code, message: `${last.message}, asking to retry after ${Math.ceil(last.retryAfterMs / 1000)} s: longer than maxRetryAfterSeconds (${policy.maxRetryAfterSeconds})` };
          }
          // The upstream asked the run, not just this row, to wait.
          pacer.pauseUntil(performance.now() + last.retryAfterMs);
        }
        const waited = await sleep(last.retryAfterMs ?? backoffMs(attempts), true, { signal: noTries.signal }).catch(() => false);
        if (!waited) return { outcome: 'withdrawn' };
      }
      const attempt = await tryOnce(url, init, attempts === 0 ? noFirstTries.signal : noTries.signal);
      if (attempt.outcome === 'withdrawn') return attempt;
      attempts += 1;
      const failure = attempt.outcome === 'error' ? attempt.failure : undefined;
      if (breaker.record(Date.now(), failure?.unhealthy ? failure.message : undefined)) stop();
      if (!failure) return attempt as Exclude<Attempt, { outcome: 'error' }>;
      last = failure;
      if (!failure.retry) return { outcome: 'failed', code: failure.code, message: failure.message };
    }
    return { outcome: 'failed', code: last!.code, message: attempts > 1 ? `${last!.message} (${attempts} attempts)` : last!.message };
  }

  async function tryOnce(url: string, init: { method: 'GET' | 'POST'; body?: string }, until: AbortSignal): Promise<Attempt> {
    try {
      await semaphore.acquire(until);
    } catch {
      return { outcome: 'withdrawn' };
    }
    try {
      // The place is taken before the turn, so a request starts the moment its turn comes.
      await pacer.take(until);
      return await once(url, init.method, init.body);
    } catch {
      return { outcome: 'withdrawn' };
    } finally {
      semaphore.release();
    }
  }

  return {
    request,
    breaker,
    /** Starts no new request: requests not yet tried are withdrawn; those on the wire, and those retrying, finish. */
    drain: () => noFirstTries.abort(),
    /** Tries nothing more: waiting requests, retries included, are withdrawn; those on the wire finish. */
    stop,
    /** Stops, and cuts the requests on the wire too. */
    abort: () => {
      stop();
      onTheWire.abort();
    },
    /** Drained or stopped. */
    get stopped() {
      return noFirstTries.signal.aborted;
    },
  };
}

const fail = (failure: Failure): Attempt => ({ outcome: 'error', failure });

class ResponseTooLarge extends Error {}

/** The body as text, refused past MAX_RESPONSE_BYTES. */
async function readBody(res: Response): Promise<string> {
  const tooLarge = () => new ResponseTooLarge(`the response is larger than ${MAX_RESPONSE_BYTES / 2 ** 20} MiB`);
  if (Number(res.headers.get('content-length') ?? 0) > MAX_RESPONSE_BYTES) {
    await res.body?.cancel();
    throw tooLarge();
  }
  if (!res.body) return '';
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_RESPONSE_BYTES) {
      await reader.cancel();
      throw tooLarge();
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** fetch says only "fetch failed": the cause has the code (ECONNREFUSED, UND_ERR_SOCKET). */
function networkCause(err: unknown): string {
  const cause = (err as { cause?: { code?: string; message?: string } }).cause;
  return cause?.code ?? cause?.message ?? (err as Error).message;
}
