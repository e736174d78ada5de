import { setTimeout as sleep } from 'node:timers/promises';

/**
 * How fast and how many at once a run may ask its upstream: a pacer for the request rate and a
 * semaphore for the requests in flight. The pure parts take the time as an argument.
 */

/**
 * A token bucket that holds one token, refilled every 1/ratePerSecond seconds: request starts are
 * evenly spaced, so no one-second window sees more than ratePerSecond of them. The spacing is
 * widened by RATE_MARGIN so that the upstream, which sees each request a little later or sooner
 * than it was sent, never counts one too many in its own second either. A Retry-After pauses it.
 */
export class Pacer {
  readonly intervalMs: number;
  private nextAt: number;
  private turn: Promise<unknown> = Promise.resolve();

  constructor(
    ratePerSecond: number | undefined,
    now: number,
    private readonly clock: () => number = () => performance.now(),
  ) {
    this.intervalMs = ratePerSecond === undefined ? 0 : (1000 / ratePerSecond) * (1 + RATE_MARGIN);
    // A fresh pacer waits one interval: the slice before it may have started a request just now.
    this.nextAt = now + this.intervalMs;
  }

  /** How long a request that wants to start at `now` must wait. */
  delay(now: number): number {
    return Math.max(0, this.nextAt - now);
  }

  /** Records a request started at `now`: the next may start one interval later. */
  started(now: number): void {
    this.nextAt = Math.max(this.nextAt, now + this.intervalMs);
  }

  /** Starts nothing before `at` (an upstream's Retry-After applies to the whole run). */
  pauseUntil(at: number): void {
    this.nextAt = Math.max(this.nextAt, at);
  }

  /** Waits for this request's turn, one caller at a time in the order they asked; rejects when `signal` aborts. */
  take(signal: AbortSignal): Promise<void> {
    const mine = this.turn.then(async () => {
      for (let wait = this.delay(this.clock()); wait > 0; wait = this.delay(this.clock())) await sleep(wait, undefined, { signal });
      signal.throwIfAborted();
      this.started(this.clock());
    });
    this.turn = mine.catch(() => undefined);
    return mine;
  }
}

/** 5%: a run asked for 10 requests per second makes about 9.5. */
export const RATE_MARGIN = 0.05;

/** At most `size` holders at once; waiters are served in the order they came. */
export class Semaphore {
  private free: number;
  private readonly waiting: (() => void)[] = [];

  constructor(size: number) {
    this.free = size;
  }

  /** Waits for a place; rejects (and leaves the queue) when `signal` aborts first. */
  acquire(signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    if (this.free > 0) {
      this.free -= 1;
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      const granted = () => {
        signal.removeEventListener('abort', aborted);
        resolve();
      };
      const aborted = () => {
        this.waiting.splice(this.waiting.indexOf(granted), 1);
        reject(signal.reason as Error);
      };
      this.waiting.push(granted);
      signal.addEventListener('abort', aborted, { once: true });
    });
  }

  release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.free += 1;
  }
}
