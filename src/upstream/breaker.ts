/**
 * The circuit breaker of a cache refresh: it counts the upstream's answers per second of wall
 * time and opens when, over the last `windowSeconds`, at least `minRequests` requests were made
 * and at least `errorRate` of them failed. A short burst of failures is diluted by the successes
 * around it in the window; a failure that lasts most of the window opens it. Once open it stays
 * open: the run stops. Its counts travel with the run's checkpoint, so a new slice (perhaps on
 * another worker) continues the same window.
 */

export interface BreakerSettings {
  errorRate: number;
  minRequests: number;
  windowSeconds: number;
}

/** Per second of wall time (epoch seconds): requests made and how many failed. */
export interface BreakerSnapshot {
  seconds: [second: number, requests: number, failures: number][];
}

/** How many of the last failures the breaker remembers, to say why it opened. */
const LAST_ERRORS = 5;

export class CircuitBreaker {
  private seconds: [number, number, number][];
  private opened = false;
  readonly lastErrors: string[] = [];

  constructor(
    private readonly settings: BreakerSettings,
    snapshot?: BreakerSnapshot,
  ) {
    this.seconds = snapshot?.seconds.map((s) => [...s]) ?? [];
  }

  get isOpen(): boolean {
    return this.opened;
  }

  /** Records one answer at `nowMs` (a failure when `failure` says what went wrong); true when this opened the breaker. */
  record(nowMs: number, failure?: string): boolean {
    const second = Math.floor(nowMs / 1000);
    this.prune(second);
    let current = this.seconds.at(-1);
    if (!current || current[0] !== second) this.seconds.push((current = [second, 0, 0]));
    current[1] += 1;
    if (failure !== undefined) {
      current[2] += 1;
      this.lastErrors.push(failure);
      if (this.lastErrors.length > LAST_ERRORS) this.lastErrors.shift();
    }
    if (this.opened) return false;
    const { requests, rate } = this.state(nowMs);
    this.opened = requests >= this.settings.minRequests && rate >= this.settings.errorRate;
    return this.opened;
  }

  /** Requests and failure rate over the window ending at `nowMs`. */
  state(nowMs: number): { requests: number; failures: number; rate: number } {
    this.prune(Math.floor(nowMs / 1000));
    let requests = 0;
    let failures = 0;
    for (const [, r, f] of this.seconds) {
      requests += r;
      failures += f;
    }
    return { requests, failures, rate: requests === 0 ? 0 : failures / requests };
  }

  snapshot(nowMs: number): BreakerSnapshot {
    this.prune(Math.floor(nowMs / 1000));
    return { seconds: this.seconds.map((s) => [...s]) };
  }

  private prune(second: number): void {
    const oldest = second - this.settings.windowSeconds + 1;
    while (this.seconds.length > 0 && this.seconds[0]![0] < oldest) this.seconds.shift();
  }
}
