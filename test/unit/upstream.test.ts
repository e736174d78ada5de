import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { CircuitBreaker } from '../../src/upstream/breaker';
import { createUpstreamClient } from '../../src/upstream/client';
import { Pacer, RATE_MARGIN, Semaphore } from '../../src/upstream/limits';
import { BACKOFF_MAX_MS, backoffMs, retryAfterMs, statusMeaning } from '../../src/upstream/retry';
import { checkTemplate, expandTemplate, originAllowed, parseOriginRule, templateColumns, templateOrigin } from '../../src/upstream/urls';
import { startFakeUpstream } from '../helpers/fake-upstream';

describe('rate limit (a token bucket of one token)', () => {
  /** Start times of `n` requests that each start as soon as the pacer lets them. */
  const starts = (pacer: Pacer, n: number, from = 0) => {
    const at: number[] = [];
    let now = from;
    for (let i = 0; i < n; i++) {
      now += pacer.delay(now);
      pacer.started(now);
      at.push(now);
    }
    return at;
  };
  const mostInAnySecond = (times: number[]) => Math.max(...times.map((t) => times.filter((u) => u >= t && u < t + 1000).length));

  it('spaces starts evenly, a little wider than 1/ratePerSecond, so that no second holds more than ratePerSecond', () => {
    for (const rate of [1, 3, 10, 50, 400]) {
      const pacer = new Pacer(rate, 0);
      assert.equal(pacer.intervalMs, (1000 / rate) * (1 + RATE_MARGIN));
      const times = starts(pacer, rate * 5);
      assert.ok(mostInAnySecond(times) <= rate, `rate ${rate}: ${mostInAnySecond(times)} in one second`);
      // Even a window a little longer than a second (the upstream's clock differs) holds no more.
      assert.ok(Math.max(...times.map((t) => times.filter((u) => u >= t && u < t + 1000 * (1 + RATE_MARGIN / 2)).length)) <= rate);
    }
  });

  it('waits one interval before its first start: the slice before it may have just started one', () => {
    const pacer = new Pacer(10, 5_000);
    assert.equal(pacer.delay(5_000), 105);
    assert.equal(pacer.delay(5_200), 0);
  });

  it('a Retry-After pauses every start until it has passed; without a rate it is the only wait', () => {
    const pacer = new Pacer(undefined, 0);
    assert.equal(pacer.delay(0), 0);
    pacer.pauseUntil(2_000);
    assert.equal(pacer.delay(500), 1_500);
    pacer.pauseUntil(1_000);
    assert.equal(pacer.delay(500), 1_500, 'a shorter pause does not shorten a longer one');
    pacer.started(2_000);
    assert.equal(pacer.delay(2_000), 0);
  });

  it('hands out turns one at a time, in order, and refuses a caller whose signal aborted', async () => {
    const pacer = new Pacer(1_000, performance.now());
    const order: number[] = [];
    const never = new AbortController().signal;
    await Promise.all([1, 2, 3].map((n) => pacer.take(never).then(() => order.push(n))));
    assert.deepEqual(order, [1, 2, 3]);
    const aborted = new AbortController();
    aborted.abort();
    await assert.rejects(pacer.take(aborted.signal));
  });
});

describe('concurrency (semaphore)', () => {
  it('lets `size` holders in, queues the rest in order, and drops a waiter whose signal aborts', async () => {
    const sem = new Semaphore(2);
    const signal = new AbortController().signal;
    await sem.acquire(signal);
    await sem.acquire(signal);
    const order: string[] = [];
    const gone = new AbortController();
    const third = sem.acquire(signal).then(() => order.push('third'));
    const dropped = sem.acquire(gone.signal).then(
      () => order.push('dropped'),
      () => order.push('aborted'),
    );
    const fifth = sem.acquire(signal).then(() => order.push('fifth'));
    gone.abort();
    await dropped;
    sem.release();
    sem.release();
    await Promise.all([third, fifth]);
    assert.deepEqual(order, ['aborted', 'third', 'fifth']);
  });
});

describe('circuit breaker', () => {
  const settings = { errorRate: 0.5, minRequests: 20, windowSeconds: 10 };
  const record = (b: CircuitBreaker, at: number, n: number, failure?: string) => {
    let opened = false;
    for (let i = 0; i < n; i++) opened = b.record(at, failure) || opened;
    return opened;
  };

  it('a short burst among successes does not open it; a failure that lasts does', () => {
    const b = new CircuitBreaker(settings);
    record(b, 0, 40);
    assert.equal(record(b, 1_000, 12, 'HTTP 500'), false);
    assert.equal(b.isOpen, false);
    assert.equal(record(b, 2_000, 28, 'HTTP 500'), true, '40 of 80 failed');
    assert.equal(b.isOpen, true);
    assert.equal(record(b, 2_000, 1), false, 'it opens once and stays open');
    assert.equal(b.isOpen, true);
  });

  it('does not judge fewer than minRequests requests', () => {
    const b = new CircuitBreaker(settings);
    assert.equal(record(b, 0, 19, 'timed out'), false);
    assert.equal(record(b, 0, 1, 'timed out'), true);
  });

  it('forgets what is older than the window, and keeps counting across slices through its snapshot', () => {
    const b = new CircuitBreaker(settings);
    record(b, 0, 100);
    record(b, 10_500, 15, 'HTTP 503');
    assert.deepEqual(b.state(10_500), { requests: 15, failures: 15, rate: 1 }, 'the successes of second 0 left the window');
    const next = new CircuitBreaker(settings, b.snapshot(10_500));
    assert.equal(record(next, 11_000, 5, 'HTTP 503'), true);
  });

  it('remembers the last five errors, to say why it opened', () => {
    const b = new CircuitBreaker(settings);
    for (let i = 1; i <= 7; i++) b.record(0, `error ${i}`);
    assert.deepEqual(b.lastErrors, ['error 3', 'error 4', 'error 5', 'error 6', 'error 7']);
  });
});

describe('retries', () => {
  it('backs off exponentially from 250 ms, half of it random, up to 10 s', () => {
    assert.equal(backoffMs(1, () => 0), 125);
    assert.equal(backoffMs(1, () => 1), 250);
    assert.equal(backoffMs(3, () => 0), 500);
    assert.equal(backoffMs(3, () => 1), 1_000);
    assert.equal(backoffMs(20, () => 1), BACKOFF_MAX_MS);
    assert.equal(backoffMs(20, () => 0), BACKOFF_MAX_MS / 2);
  });

  it('reads Retry-After as seconds or as an HTTP date', () => {
    const now = Date.parse('2026-11-30T10:00:00Z');
    assert.equal(retryAfterMs('2', now), 2_000);
    assert.equal(retryAfterMs(' 0 ', now), 0);
    assert.equal(retryAfterMs('Mon, 30 Nov 2026 10:00:05 GMT', now), 5_000);
    assert.equal(retryAfterMs('Mon, 30 Nov 2026 09:00:00 GMT', now), 0);
    assert.equal(retryAfterMs('soon', now), undefined);
    assert.equal(retryAfterMs(null, now), undefined);
  });

  it('knows what each status means: 429 and 503 wait as told, other 5xx retry and count as unhealthy, other 4xx are final', () => {
    const m = (s: number) => statusMeaning(s);
    assert.deepEqual(m(200), { outcome: 'ok', retry: false, honourRetryAfter: false, unhealthy: false });
    assert.equal(m(404).outcome, 'not_found');
    assert.equal(m(410).outcome, 'not_found');
    assert.deepEqual(m(429), { outcome: 'error', retry: true, honourRetryAfter: true, unhealthy: false });
    assert.deepEqual(m(503), { outcome: 'error', retry: true, honourRetryAfter: true, unhealthy: true });
    assert.deepEqual(m(500), { outcome: 'error', retry: true, honourRetryAfter: false, unhealthy: true });
    assert.deepEqual(m(403), { outcome: 'error', retry: false, honourRetryAfter: false, unhealthy: false });
    assert.equal(m(400).retry, false);
    assert.equal(m(301).retry, false);
  });
});

describe('URL templates and origins', () => {
  it('fills placeholders with percent-encoded values, which can never reach the host', () => {
    const t = 'https://api.example.com/v1/products/{product_id}?currency={currency}';
    assert.equal(checkTemplate(t), undefined);
    assert.deepEqual(templateColumns(t), ['product_id', 'currency']);
    assert.equal(expandTemplate(t, { product_id: 'a/b c?#', currency: 'EUR' }), 'https://api.example.com/v1/products/a%2Fb%20c%3F%23?currency=EUR');
    assert.equal(templateOrigin(t), 'https://api.example.com');
    assert.match(checkTemplate('https://{product_id}.example.com/x') ?? '', /not in the host/);
    assert.match(checkTemplate('https://api.example.com{product_id}') ?? '', /not in the host/);
    assert.match(checkTemplate('ftp://api.example.com/{product_id}') ?? '', /http\(s\)/);
    assert.match(checkTemplate('products/{product_id}') ?? '', /absolute/);
    assert.match(checkTemplate('https://user:pw@api.example.com/{product_id}') ?? '', /credentials/);
    assert.match(checkTemplate('https://api.example.com/{product_id') ?? '', /unbalanced/);
  });

  it('allows only the configured origins: scheme, host and port (or any port)', () => {
    const rules = ['https://api.example.com', 'http://127.0.0.1:*', 'http://localhost:8080'].map((o) => parseOriginRule(o)!);
    assert.ok(originAllowed(rules, 'https://API.example.com/products/1'));
    assert.ok(originAllowed(rules, 'https://api.example.com:443/x'));
    assert.ok(!originAllowed(rules, 'https://api.example.com:8443/x'));
    assert.ok(!originAllowed(rules, 'http://api.example.com/x'), 'scheme matters');
    assert.ok(originAllowed(rules, 'http://127.0.0.1:41234/x'));
    assert.ok(originAllowed(rules, 'http://localhost:8080/x'));
    assert.ok(!originAllowed(rules, 'http://localhost:8081/x'));
    assert.ok(!originAllowed(rules, 'https://api.example.com.evil.test/x'));
    assert.equal(parseOriginRule('api.example.com'), undefined);
    assert.equal(parseOriginRule('https://api.example.com/path'), undefined);
  });
});

describe('upstream client', () => {
  it('answers each kind of response as it deserves, and counts for the breaker only what says the upstream is unwell', async () => {
    const upstream = await startFakeUpstream({
      malformed: new Set(['bad-json']),
      status: new Map([['forbidden', 403]]),
      missing: new Set(['gone']),
      throttle: new Map([['slow-down', { retryAfter: '0', times: 1 }]]),
    });
    try {
      const client = createUpstreamClient({
        policy: { concurrency: 2, timeoutMs: 5_000, maxAttempts: 2, maxRetryAfterSeconds: 60, circuitBreaker: { errorRate: 1, minRequests: 1_000, windowSeconds: 60 } },
        headers: { authorization: 'Bearer t' },
      });
      const ask = (id: string) => client.request(`${upstream.url}/products/${id}`);
      assert.deepEqual(await ask('p-1'), { outcome: 'ok', body: { id: 'p-1', title: 'Product p-1', pricing: { amount: 13, currency: 'EUR' } } });
      assert.deepEqual(await ask('gone'), { outcome: 'not_found' });
      assert.deepEqual(await ask('forbidden'), { outcome: 'failed', code: 'UPSTREAM_ERROR', message: 'HTTP 403 Forbidden' });
      assert.equal((await ask('bad-json')).outcome, 'failed');
      assert.equal((await ask('slow-down')).outcome, 'ok', 'a 429 is asked again');
      upstream.knobs.fails = () => true;
      assert.deepEqual(await ask('p-2'), { outcome: 'failed', code: 'UPSTREAM_ERROR', message: 'HTTP 500 Internal Server Error (2 attempts)' });
      // 8 requests: the 429 and its retry, two 500s; failures are the answer that is not JSON and the 500s.
      assert.equal(upstream.arrivals.length, 8);
      assert.deepEqual(client.breaker.state(Date.now()), { requests: 8, failures: 3, rate: 3 / 8 });
      assert.match(client.breaker.lastErrors[0]!, /^the response is not valid JSON/);
      assert.deepEqual(client.breaker.lastErrors.slice(1), ['HTTP 500 Internal Server Error', 'HTTP 500 Internal Server Error']);
      assert.deepEqual(new Set(upstream.arrivals.map((a) => a.authorization)), new Set(['Bearer t']));
    } finally {
      await upstream.close();
    }
  });

  it('drained (the slice is over), it starts no new request but lets a retry finish; stopped, it withdraws the retry', async () => {
    const upstream = await startFakeUpstream({ throttle: new Map([['a', { retryAfter: '1', times: 1 }], ['b', { retryAfter: '1', times: 1 }]]) });
    const policy = { concurrency: 2, timeoutMs: 5_000, maxAttempts: 3, maxRetryAfterSeconds: 60, circuitBreaker: { errorRate: 1, minRequests: 1_000, windowSeconds: 60 } };
    const firstAnswer = async (id: string) => {
      while (!upstream.arrivals.some((x) => x.ids.includes(id) && x.status !== 0)) await sleep(5);
    };
    try {
      const drained = createUpstreamClient({ policy, headers: {} });
      const a = drained.request(`${upstream.url}/products/a`);
      await firstAnswer('a');
      drained.drain();
      assert.deepEqual(await drained.request(`${upstream.url}/products/c`), { outcome: 'withdrawn' }, 'no new request');
      assert.equal((await a).outcome, 'ok', 'the retry after its Retry-After went ahead');
      assert.equal(upstream.requestsFor('a'), 2);

      const stopped = createUpstreamClient({ policy, headers: {} });
      const b = stopped.request(`${upstream.url}/products/b`);
      await firstAnswer('b');
      stopped.stop();
      assert.deepEqual(await b, { outcome: 'withdrawn' });
      assert.equal(upstream.requestsFor('b'), 1);
    } finally {
      await upstream.close();
    }
  });
});
