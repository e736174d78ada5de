import assert from 'node:assert/strict';
import fs from 'node:fs';
import YAML from 'yaml';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { refreshWindow, type WindowBatch, type WindowSpec } from '../../src/activities/refresh-window';
import { resultSummary } from '../../src/cli/progress';
import { recordReader } from '../../src/datasets';
import { cacheRefreshParamsSchema, checkCacheRefreshParams, staleRows } from '../../src/jobs/cache-refresh';
import { CircuitBreaker } from '../../src/upstream/breaker';
import { Semaphore } from '../../src/upstream/limits';
import { productCache, shipped } from '../helpers/datasets';

const upstream = { url: 'https://api.example.com/products/{product_id}' };
const parse = (params: Record<string, unknown>) => cacheRefreshParamsSchema.safeParse({ dataset: 'product_cache', upstream, ...params });
/** The schema's issues, else those of the check against the shipped datasets (as the API runs both). */
const issues = (params: Record<string, unknown>) => {
  const parsed = parse(params);
  return (parsed.success ? checkCacheRefreshParams(parsed.data, shipped) : parsed.error.issues).map((i) => [i.path.join('.'), i.message]);
};

describe('cache-refresh params', () => {
  it('has polite defaults, and selects rows not refreshed for an hour unless told otherwise', () => {
    const p = parse({}).data!;
    assert.deepEqual(
      { concurrency: p.concurrency, ratePerSecond: p.ratePerSecond, timeoutMs: p.timeoutMs, maxAttempts: p.maxAttempts, onNotFound: p.onNotFound, batchSize: p.batchSize, circuitBreaker: p.circuitBreaker },
      { concurrency: 8, ratePerSecond: undefined, timeoutMs: 10_000, maxAttempts: 3, onNotFound: 'flag', batchSize: 500, circuitBreaker: { errorRate: 0.5, minRequests: 20, windowSeconds: 30 } },
    );
    assert.deepEqual(staleRows(productCache, p), { or: [{ field: 'last_updated', op: 'is_null' }, { field: 'last_updated', op: 'lt', value: 'now - 1 hour' }] });
    assert.deepEqual(staleRows(productCache, parse({ staleAfter: '30 minutes' }).data!), { or: [{ field: 'last_updated', op: 'is_null' }, { field: 'last_updated', op: 'lt', value: 'now - 30 minutes' }] });
    assert.equal(staleRows(productCache, parse({ force: true }).data!), undefined);
    const where = { field: 'last_status', op: 'eq', value: 'error' };
    assert.deepEqual(staleRows(productCache, parse({ where }).data!), where);
  });

  it('is strict: unknown keys are refused at every level', () => {
    assert.deepEqual(issues({ concurency: 4 }), [['', 'Unrecognized key: "concurency"']]);
    assert.deepEqual(issues({ upstream: { ...upstream, headerz: {} } }), [['upstream', 'Unrecognized key: "headerz"']]);
    assert.deepEqual(issues({ circuitBreaker: { errorRate: 0.5, window: 10 } }), [['circuitBreaker', 'Unrecognized key: "window"']]);
  });

  it('takes one way to choose rows, a duration it can read, and only cache datasets', () => {
    assert.deepEqual(issues({ staleAfter: '1 hour', where: { field: 'name', op: 'eq', value: 'x' } }), [['where', 'give one of staleAfter, where or force, not staleAfter and where']]);
    assert.deepEqual(issues({ staleAfter: '1h' }), [['staleAfter', 'must be a duration such as "1 hour", "30 minutes" or "2 days"']]);
    assert.equal(issues({ where: { field: 'sku', op: 'eq', value: 'x' } })[0]?.[0], 'where.field');
    assert.equal(issues({ dataset: 'users' })[0]?.[0], 'dataset');
  });

  it('takes header values only from BATCHFLOW_SECRET_* variables of the worker', () => {
    assert.equal(parse({ upstream: { ...upstream, headers: { authorization: 'BATCHFLOW_SECRET_PRODUCT_API' } } }).success, true);
    assert.match(issues({ upstream: { ...upstream, headers: { authorization: 'Bearer abc123' } } })[0]?.[1] ?? '', /BATCHFLOW_SECRET_<NAME>; header values never travel in params/);
    assert.equal(issues({ upstream: { ...upstream, headers: { 'x-key': 'DATABASE_URL' } } })[0]?.[0], 'upstream.headers.x-key');
    assert.deepEqual(issues({ upstream: { ...upstream, headers: { Host: 'BATCHFLOW_SECRET_X' } } }), [['upstream.headers.Host', 'is set by Batchflow itself']]);
  });

  it('checks the upstream: a url or a batch endpoint, placeholders that are columns, a mapping onto columns', () => {
    assert.deepEqual(issues({ upstream: {} }), [['upstream', 'give url (one request per row) or batch (one request for many rows)']]);
    assert.deepEqual(issues({ upstream: { url: 'https://api.example.com/p/{sku}' } }), [['upstream.url', '{sku} is not a column of product_cache (product_id, name, price, currency)']]);
    assert.deepEqual(issues({ upstream: { url: 'https://{product_id}.example.com/' } }), [['upstream.url', 'placeholders may appear only in the path or the query, not in the host']]);
    assert.deepEqual(issues({ upstream: { batch: { url: 'https://api.example.com/p/{product_id}' } } }), [['upstream.batch.url', 'takes no placeholders: the ids go in the query or the body']]);
    assert.deepEqual(issues({ upstream: { ...upstream, mapping: { title: 'label' } } }), [['upstream.mapping.title', '"label" is not a column of product_cache (product_id, name, price, currency)']]);
    assert.deepEqual(issues({ upstream: { ...upstream, mapping: { title: 'name', label: 'name' } } }), [['upstream.mapping.label', '"name" is already fed by title']]);
    const batch = parse({ upstream: { batch: { url: 'https://api.example.com/products:batchGet' } } }).data!.upstream.batch;
    assert.deepEqual(batch, { url: 'https://api.example.com/products:batchGet', method: 'POST', idsParam: 'ids', size: 100 });
  });
});

describe('cache-refresh params, as users write them', () => {
  it('the example in examples/ is valid', () => {
    const example = YAML.parse(fs.readFileSync(new URL('../../examples/refresh-product-cache.yaml', import.meta.url), 'utf8')) as unknown;
    const parsed = cacheRefreshParamsSchema.safeParse(example);
    assert.equal(parsed.success, true, JSON.stringify(parsed.error?.issues));
  });

  it('the CLI summary shows what was refreshed and why a run stopped', () => {
    const summary = resultSummary('r1', {
      status: 'failed',
      kind: 'cache-refresh',
      counts: { processed: 12, succeeded: 10, failed: 1, skipped: 1, refreshed: 7, unchanged: 1, notFound: 2 },
      error: { code: 'UPSTREAM_UNHEALTHY', message: 'the upstream looks unhealthy' },
      errorSample: [],
      errorCount: 0,
      errorReport: '/runs/r1/errors',
      outputs: [],
      warnings: [],
      startedAt: '',
      endedAt: '',
      durationMs: 1_000,
    });
    assert.equal(summary.split('\n')[1], '  processed 12, succeeded 10 (refreshed 7, unchanged 1, not found 2), rejected 1, skipped 1');
    assert.equal(summary.split('\n')[2], '  stopped: the upstream looks unhealthy (UPSTREAM_UNHEALTHY)');
  });
});

describe('reading an upstream record', () => {
  const reader = recordReader(productCache, { title: 'name', 'pricing.amount': 'price', 'pricing.currency': 'currency' });

  it('maps nested fields to columns and normalises them as an import would', () => {
    assert.deepEqual(reader.read({ id: 'p1', title: ' Lamp ', pricing: { amount: '12.50', currency: 'eur' }, extra: true }), { values: { name: 'Lamp', price: 12.5, currency: 'EUR' } });
    assert.equal(reader.keyOf({ id: 'p1' }), 'p1', 'the key by its alias');
    assert.equal(recordReader(productCache).keyOf({ productId: 'p2' }), 'p2');
    assert.equal(recordReader(productCache, { sku_code: 'product_id' }).keyOf({ id: 'no', sku_code: 'p3' }), 'p3', 'the field mapped to the key first');
  });

  it('says what is wrong with each field; null is missing', () => {
    assert.deepEqual(reader.read({ title: null, pricing: { amount: -1, currency: 'EURO' } }), {
      issues: [
        { field: 'name', message: 'required' },
        { field: 'price', message: 'must be at least 0' },
        { field: 'currency', message: 'must be a three-letter currency code such as EUR' },
      ],
    });
    assert.deepEqual(reader.read([1, 2]), { issues: [{ field: null, message: 'the response is not a JSON object' }] });
  });

  it('without a mapping, reads columns by their names and aliases', () => {
    assert.deepEqual(recordReader(productCache).read({ product_name: 'Desk', price: 99, currency: 'USD' }), { values: { name: 'Desk', price: 99, currency: 'USD' } });
  });
});

describe('the window of requests', () => {
  interface Row {
    id: number;
  }

  /** A fake upstream behind a real semaphore: a row answers after `delay(id)` ms; stopped, queued rows are withdrawn. */
  function fakeSpec(opts: { rows: number; batchSize: number; concurrency: number; delay: (id: number) => number; hold?: (id: number) => Promise<void>; deadline?: number }) {
    const sem = new Semaphore(opts.concurrency);
    const stopping = new AbortController();
    const cutting = new AbortController();
    const asked: number[] = [];
    const answered: number[] = [];
    const client = {
      breaker: new CircuitBreaker({ errorRate: 0.5, minRequests: 1_000, windowSeconds: 30 }),
      drain: () => stopping.abort(),
      stop: () => stopping.abort(),
      abort: () => {
        stopping.abort();
        cutting.abort();
      },
      get stopped() {
        return stopping.signal.aborted;
      },
    };
    const spec: WindowSpec<Row, string> = {
      readRows(after) {
        const rows = Array.from({ length: Math.max(0, Math.min(10, opts.rows - after)) }, (_, i) => ({ id: after + i + 1 }));
        return Promise.resolve({ rows, last: after + rows.length >= opts.rows });
      },
      perRequest: 1,
      async settle([row]) {
        try {
          await sem.acquire(stopping.signal);
        } catch {
          return 'withdrawn';
        }
        asked.push(row!.id);
        try {
          await opts.hold?.(row!.id);
          await sleep(opts.delay(row!.id), undefined, { signal: cutting.signal });
        } catch {
          return 'withdrawn';
        } finally {
          sem.release();
        }
        answered.push(row!.id);
        client.breaker.record(Date.now());
        return [`fresh ${row!.id}`];
      },
      toBatch: (rows) => ({ rows, errors: [], rejectedRows: 0 }),
      client,
      batchSize: opts.batchSize,
      maxRows: 40,
      deadline: opts.deadline ?? Date.now() + 60_000,
      cancelled: new AbortController().signal,
    };
    return { spec, asked, answered };
  }

  const drain = async (batches: AsyncIterable<WindowBatch<Row, string>>) => {
    const out: WindowBatch<Row, string>[] = [];
    for await (const b of batches) out.push(b);
    return out;
  };

  it('commits every row once, in id order, in batches, while a slow answer does not hold back the requests after it', async () => {
    let askedBeyondBeforeSlowAnswered = 0;
    // Row 3 holds its place until rows of a later batch have been asked (or 10 s have passed, and the test fails).
    const hold = async (id: number) => {
      if (id !== 3) return;
      for (let i = 0; i < 2_000 && !asked.some((a) => a > 10); i++) await sleep(5);
      askedBeyondBeforeSlowAnswered = asked.filter((a) => a > 10).length;
    };
    const { spec, asked, answered } = fakeSpec({ rows: 60, batchSize: 10, concurrency: 4, delay: () => 1, hold });
    const batches = await drain(refreshWindow(spec, { step: 0, lastId: 0 }));
    const committed = batches.flatMap((b) => b.rows.map((r) => r.row.id));
    assert.deepEqual(committed, Array.from({ length: 60 }, (_, i) => i + 1));
    assert.ok(batches.every((b) => b.rows.every((r) => r.settled === `fresh ${r.row.id}`)));
    assert.deepEqual(batches.map((b) => b.end.lastId), batches.map((b) => b.rows.at(-1)!.row.id));
    assert.ok(batches.every((b) => b.rows.length <= 10 && !b.handBack));
    assert.ok(askedBeyondBeforeSlowAnswered > 0, 'rows of later batches were asked while row 3 was slow');
    const counted = batches.at(-1)!.end.breaker!.seconds.reduce((n, [, requests]) => n + requests, 0);
    assert.equal(counted, 60, "the breaker's counts travel with the position, for the next slice");
    assert.equal(answered.length, 60);
  });

  it('at its deadline starts nothing more, waits for the answers on the wire, and hands back what came back in order', async () => {
    const { spec, asked } = fakeSpec({ rows: 1_000, batchSize: 1_000, concurrency: 2, delay: () => 30, deadline: Date.now() + 200 });
    const batches = await drain(refreshWindow(spec, { step: 0, lastId: 100 }));
    const last = batches.at(-1)!;
    assert.equal(last.handBack, true);
    const committed = batches.flatMap((b) => b.rows.map((r) => r.row.id));
    assert.deepEqual(committed, asked, 'every answer paid for is committed; nothing asked is lost');
    assert.equal(committed[0], 101, 'it resumes after the position it was given');
    assert.ok(committed.length < 900);
  });

  it('commits at least every second while answers come back, however large batchSize is', async () => {
    // 30 answers one at a time, each taking at least 100 ms: 3 s or more.
    const { spec } = fakeSpec({ rows: 30, batchSize: 1_000, concurrency: 1, delay: () => 100 });
    const batches = await drain(refreshWindow(spec, { step: 0, lastId: 0 }));
    assert.ok(batches.length >= 3, `${batches.length} batches`);
    assert.equal(batches.flatMap((b) => b.rows).length, 30);
  });

  it('closing it (the runner stopped) ends a pending next() at once', async () => {
    const { spec, answered } = fakeSpec({ rows: 100, batchSize: 100, concurrency: 2, delay: () => 10_000 });
    const iterator = refreshWindow(spec, { step: 0, lastId: 0 })[Symbol.asyncIterator]();
    const pending = iterator.next();
    await sleep(20);
    await iterator.return!();
    assert.equal((await pending).done, true);
    assert.deepEqual(answered, [], 'the requests on the wire were cut, not waited for');
  });

  it('when the breaker opens, commits what came back and the rest of the window as skipped, with the reason to stop', async () => {
    const { spec, answered } = fakeSpec({ rows: 100, batchSize: 100, concurrency: 2, delay: (id) => (id < 5 ? 1 : id === 5 ? 50 : 200) });
    const breaker = new CircuitBreaker({ errorRate: 0.5, minRequests: 1, windowSeconds: 30 });
    const { client } = spec;
    spec.client = { breaker, drain: client.drain, stop: client.stop, abort: client.abort, get stopped() { return client.stopped; } };
    const settle = spec.settle.bind(spec);
    spec.settle = async (rows) => {
      const settled = await settle(rows);
      // Row 5's answer is the failure that opens the breaker; the client then sends nothing more.
      if (rows[0]!.id === 5 && breaker.record(Date.now(), 'HTTP 500')) client.stop();
      return settled;
    };
    spec.toBatch = (rows, unhealthy) => ({ rows, errors: [], rejectedRows: 0, ...(unhealthy && { fatal: { code: 'UPSTREAM_UNHEALTHY', message: 'unhealthy' } }) });
    const batches = await drain(refreshWindow(spec, { step: 0, lastId: 0 }));
    const last = batches.at(-1)!;
    assert.equal(last.fatal?.code, 'UPSTREAM_UNHEALTHY');
    const rows = batches.flatMap((b) => b.rows);
    assert.deepEqual(rows.map((r) => r.row.id), Array.from({ length: rows.length }, (_, i) => i + 1), 'a prefix of the rows, in order');
    assert.deepEqual(rows.filter((r) => r.settled).map((r) => r.row.id).sort((a, b) => a - b), [...answered].sort((a, b) => a - b), 'every answer that came back is committed');
    assert.ok(rows.some((r) => !r.settled), 'the rest of the window is skipped');
    assert.ok(rows.length < 100);
  });
});
