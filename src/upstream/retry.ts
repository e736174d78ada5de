/** How a cache refresh reacts to each kind of answer, and how long it waits before trying again. */

/** What an HTTP status means for a row's request. */
export interface StatusMeaning {
  outcome: 'ok' | 'not_found' | 'error';
  /** Worth another attempt (up to maxAttempts). */
  retry: boolean;
  /** Wait as long as the answer's Retry-After says, when it says. */
  honourRetryAfter: boolean;
  /** A sign the upstream is unhealthy: counted by the circuit breaker. */
  unhealthy: boolean;
}

export function statusMeaning(status: number): StatusMeaning {
  if (status >= 200 && status < 300) return { outcome: 'ok', retry: false, honourRetryAfter: false, unhealthy: false };
  if (status === 404 || status === 410) return { outcome: 'not_found', retry: false, honourRetryAfter: false, unhealthy: false };
  // "Too many requests" is the upstream pacing us, not failing: it slows the run, it does not trip the breaker.
  if (status === 429) return { outcome: 'error', retry: true, honourRetryAfter: true, unhealthy: false };
  if (status === 503) return { outcome: 'error', retry: true, honourRetryAfter: true, unhealthy: true };
  if (status >= 500 || status === 408) return { outcome: 'error', retry: true, honourRetryAfter: false, unhealthy: true };
  // Other 4xx (and 3xx: redirects are not followed) say this request is wrong; asking again will not help.
  return { outcome: 'error', retry: false, honourRetryAfter: false, unhealthy: false };
}

export const BACKOFF_BASE_MS = 250;
export const BACKOFF_MAX_MS = 10_000;

/**
 * The wait after failed attempt number `attempt` (1, 2, ...): exponential from BACKOFF_BASE_MS,
 * capped at BACKOFF_MAX_MS, half of it random so that rows that failed together do not retry together.
 */
export function backoffMs(attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (attempt - 1));
  return ceiling / 2 + random() * (ceiling / 2);
}

/** A Retry-After header (seconds, or an HTTP date) as milliseconds from `nowMs`; undefined when absent or unreadable. */
export function retryAfterMs(header: string | null, nowMs: number): number | undefined {
  if (header === null) return undefined;
  const text = header.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}
