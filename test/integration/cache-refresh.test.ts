import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startFakeUpstream, upstreamMapping, upstreamRecord, type FakeUpstream } from '../helpers/fake-upstream';
import { historyText, ownStaleProducts, seedProductCache, startRun, uniqueId, useStackWithWorker, waitForRun } from '../helpers/stack';

const TOKEN = 'Bearer token-3f9a1c';

describe('cache refresh', () => {
  const fixture = useStackWithWorker({ BATCHFLOW_UPSTREAM_ORIGINS: 'http://127.0.0.1:*', BATCHFLOW_SECRET_PRODUCT_API: TOKEN });
  const pool = () => fixture.stack.pool;
  let upstream: FakeUpstream;
  before(async () => {
    upstream = await startFakeUpstream();
  });
  after(() => upstream.close());

  /** Params for a run against the fake upstream, one request per row. */
  const params = (extra: Record<string, unknown> = {}) => ({
    dataset: 'product_cache',
    upstream: { url: `${upstream.url}/products/{product_id}`, headers: { authorization: 'BATCHFLOW_SECRET_PRODUCT_API' }, mapping: upstreamMapping },
    ...extra,
  });

  const rowsOf = async (prefix: string) =>
    (
      await pool().query<{ product_id: string; name: string | null; price: number | null; currency: string | null; last_status: string; refreshed: boolean; updated_at: Date }>(
        `SELECT product_id, name, price, currency, last_status, last_updated > now() - interval '10 minutes' AS refreshed, updated_at
         FROM product_cache WHERE product_id LIKE $1 ORDER BY id`,
        [`${prefix}-%`],
      )
    ).rows;

  it('refreshes every stale row (staleAfter) once, leaves fresh rows alone, flags 404s, and counts what changed', async () => {
    upstream.reset();
    const p = uniqueId('cache');
    const stale = await seedProductCache(pool(), p, 150);
    const pending = await seedProductCache(pool(), p, 20, { age: null, from: 151 });
    const fresh = await seedProductCache(pool(), p, 50, { age: '10 minutes', from: 171 });
    // Registered by its key alone, as an application would: pending, stale until its first refresh.
    const keyOnly = `${p}-key-only`;
    await pool().query('INSERT INTO product_cache (product_id) VALUES ($1)', [keyOnly]);
    pending.push(keyOnly);
    const gone = stale.slice(10, 15);
    for (const id of gone) upstream.knobs.missing.add(id);
    // Three stale rows already hold what the upstream says: confirmed, not changed.
    const same = stale.slice(20, 23);
    for (const id of same) {
      const r = upstreamRecord(id);
      await pool().query('UPDATE product_cache SET name = $2, price = $3, currency = $4 WHERE product_id = $1', [id, r.title, r.pricing.amount, r.pricing.currency]);
    }
    const before = new Map((await rowsOf(p)).map((r) => [r.product_id, r]));

    const runId = await startRun(fixture.stack, 'cache-refresh', params({ staleAfter: '1 hour', concurrency: 8 }));
    const run = await waitForRun(fixture.stack, runId);
    assert.equal(run.status, 'success', JSON.stringify(run.result?.error ?? run.error));
    const c = run.result!.counts;
    assert.deepEqual(
      { total: c.total, processed: c.processed, succeeded: c.succeeded, refreshed: c.refreshed, unchanged: c.unchanged, notFound: c.notFound, failed: c.failed, skipped: c.skipped },
      { total: 171, processed: 171, succeeded: 171, refreshed: 163, unchanged: 3, notFound: 5, failed: 0, skipped: 0 },
    );

    const after = await rowsOf(p);
    for (const row of after) {
      const id = row.product_id;
      if (fresh.includes(id)) {
        assert.deepEqual(row, before.get(id), `fresh row ${id} left alone`);
        assert.equal(upstream.requestsFor(id), 0, `fresh row ${id} not fetched`);
        continue;
      }
      assert.equal(upstream.requestsFor(id), 1, `stale row ${id} fetched once`);
      assert.ok(row.refreshed, `stale row ${id} refreshed now`);
      if (gone.includes(id)) {
        assert.equal(row.last_status, 'not_found');
        assert.equal(row.name, before.get(id)!.name, 'a row gone upstream keeps its values');
        continue;
      }
      const r = upstreamRecord(id);
      assert.deepEqual({ name: row.name, price: row.price, currency: row.currency, status: row.last_status }, { name: r.title, price: r.pricing.amount, currency: 'EUR', status: 'ok' });
      if (same.includes(id)) assert.deepEqual(row.updated_at, before.get(id)!.updated_at, 'an unchanged row keeps its updated_at');
    }
    assert.equal(after.length, 221);
    assert.ok(pending.every((id) => upstream.requestsFor(id) === 1));
    assert.deepEqual(new Set(upstream.arrivals.map((a) => a.authorization)), new Set([TOKEN]), 'the header came from the named environment variable');
  });

  it('keeps rows out of workflow history: no stored or fetched value, no header value', async () => {
    upstream.reset();
    const p = uniqueId('marker');
    const marker = 'MARKER-7c1e55';
    const ids = await seedProductCache(pool(), p, 30);
    await pool().query("UPDATE product_cache SET name = $2 || ' old' WHERE product_id LIKE $1", [`${p}-%`, marker]);
    for (const id of ids) upstream.knobs.records.set(id, { ...upstreamRecord(id), title: `${marker} new` });
    // A row error too: its message names the field, never a value (the row's key is in its raw input).
    upstream.knobs.records.set(ids[3]!, { ...upstreamRecord(ids[3]!), title: marker, pricing: { amount: `${marker}-price`, currency: 'EUR' } });
    const runId = await startRun(fixture.stack, 'cache-refresh', params({ where: ownStaleProducts(p), batchSize: 7 }));
    const run = await waitForRun(fixture.stack, runId);
    assert.equal(run.status, 'partial', JSON.stringify(run.result?.error ?? run.error));
    assert.equal(run.result!.counts.refreshed, 29);
    assert.match(run.result!.errorSample[0]!.message, /price must be a number/);
    const history = await historyText(fixture.stack.client, runId);
    assert.ok(history.includes('cacheRefreshSlice'), 'the history was read');
    assert.ok(!history.includes(marker), 'no row value in history');
    assert.ok(!history.includes(TOKEN), 'no header value in history');
  });
  it('deletes rows the upstream no longer has, with onNotFound: delete', async () => {
    upstream.reset();
    const p = uniqueId('gone');
    const ids = await seedProductCache(pool(), p, 12);
    for (const id of ids.slice(0, 3)) upstream.knobs.missing.add(id);
    const runId = await startRun(fixture.stack, 'cache-refresh', params({ where: ownStaleProducts(p), onNotFound: 'delete' }));
    const run = await waitForRun(fixture.stack, runId);
    assert.equal(run.status, 'success', JSON.stringify(run.result?.error ?? run.error));
    assert.deepEqual([run.result!.counts.refreshed, run.result!.counts.notFound], [9, 3]);
    assert.deepEqual((await rowsOf(p)).map((r) => r.product_id), ids.slice(3));
  });

  it('never starts more than ratePerSecond requests in any one-second window, counted at the upstream', async () => {
    upstream.reset({ latencyMs: 20 });
    const p = uniqueId('rate');
    await seedProductCache(pool(), p, 36);
    const runId = await startRun(fixture.stack, 'cache-refresh', params({ where: ownStaleProducts(p), ratePerSecond: 10, concurrency: 8 }));
    const run = await waitForRun(fixture.stack, runId);
    assert.equal(run.status, 'success', JSON.stringify(run.result?.error ?? run.error));
    assert.equal(run.result!.counts.refreshed, 36);
    assert.equal(upstream.arrivals.length, 36);
    const most = upstream.maxPerWindow(1_000);
    assert.ok(most <= 10, `at most 10 requests in any second at the upstream, saw ${most}`);
  });

  it('never has more than concurrency requests in flight, counted at the upstream', async () => {
    upstream.reset({ latencyMs: 40 });
    const p = uniqueId('conc');
    await seedProductCache(pool(), p, 60);
    const runId = await startRun(fixture.stack, 'cache-refresh', params({ where: ownStaleProducts(p), concurrency: 3 }));
    const run = await waitForRun(fixture.stack, runId);
    assert.equal(run.status, 'success', JSON.stringify(run.result?.error ?? run.error));
    assert.equal(run.result!.counts.refreshed, 60);
    assert.ok(upstream.maxInFlight <= 3, `at most 3 in flight, saw ${upstream.maxInFlight}`);
    assert.ok(upstream.maxInFlight >= 2, `requests did overlap (${upstream.maxInFlight})`);
  });

  it('honours Retry-After on 429 for the whole run, and fails a row whose Retry-After is longer than maxRetryAfterSeconds', async () => {
    upstream.reset();
    const p = uniqueId('retry');
    const ids = await seedProductCache(pool(), p, 10);
    const throttled = [ids[0]!, ids[4]!];
    for (const id of throttled) upstream.knobs.throttle.set(id, { retryAfter: '1', times: 1 });
    upstream.knobs.throttle.set(ids[7]!, { retryAfter: '3600', times: 1 });
    // One request at a time: were the pause the throttled row's alone, the next row would go at once.
    const runId = await startRun(fixture.stack, 'cache-refresh', params({ where: ownStaleProducts(p), concurrency: 1 }));
    const run = await waitForRun(fixture.stack, runId);
    assert.equal(run.status, 'partial', JSON.stringify(run.result?.error ?? run.error));
    assert.deepEqual([run.result!.counts.refreshed, run.result!.counts.failed], [9, 1]);
    const arrivals = upstream.arrivals;
    for (const id of throttled) {
      const i = arrivals.findIndex((a) => a.ids.includes(id));
      assert.equal(arrivals[i]!.status, 429);
      const waited = arrivals[i + 1]!.at - arrivals[i]!.at;
      assert.ok(waited >= 1_000, `nothing was asked during ${id}'s 1 s Retry-After (the next request came ${Math.round(waited)} ms later)`);
      assert.deepEqual(arrivals.filter((a) => a.ids.includes(id)).map((a) => a.status), [429, 200], `${id} asked again after its Retry-After`);
    }
    assert.equal(upstream.requestsFor(ids[7]!), 1);
    assert.match(run.result!.errorSample[0]!.message, /^HTTP 429 .*retry after 3600 s: longer than maxRetryAfterSeconds \(60\)/);
  });

  it('opens the circuit breaker under a sustained failure: the run stops UPSTREAM_UNHEALTHY and keeps what it committed', async () => {
    // The first 40 requests succeed, every later one fails.
    upstream.reset({ fails: (seq) => seq > 40 });
    const p = uniqueId('breaker');
    await seedProductCache(pool(), p, 400);
    const runId = await startRun(fixture.stack, 'cache-refresh', params({ where: ownStaleProducts(p), concurrency: 4, batchSize: 10, circuitBreaker: { errorRate: 0.5, minRequests: 20 } }));
    const run = await waitForRun(fixture.stack, runId);
    assert.equal(run.status, 'failed');
    assert.equal(run.error?.code, 'UPSTREAM_UNHEALTHY');
    const refreshedBefore = Number(/(\d+) rows refreshed before it opened/.exec(run.error.message)?.[1]);
    assert.match(run.error.message, /\d+% of the last \d+ requests failed \(circuitBreaker: errorRate 0.5, minRequests 20, windowSeconds 30\)/);
    assert.match(run.error.message, /last errors: HTTP 500 Internal Server Error/);
    const rows = await rowsOf(p);
    const refreshed = rows.filter((r) => r.last_status === 'ok' && r.refreshed).length;
    assert.equal(refreshed, 40, 'the answers that came back before it opened were committed');
    assert.equal(refreshedBefore, 40);
    assert.equal(run.result!.counts.refreshed, 40);
    assert.ok(run.result!.counts.processed < 400, 'it stopped before the end');
    assert.ok(upstream.arrivals.length < 120, `it stopped asking (${upstream.arrivals.length} requests)`);
    assert.equal(rows.filter((r) => !r.refreshed).length, 360, 'the rest stay stale for the next run');
  });

  it('does not open the circuit breaker for a short burst of 500s: the failed requests are retried', async () => {
    upstream.reset({ fails: (seq) => seq > 40 && seq <= 52 });
    const p = uniqueId('burst');
    await seedProductCache(pool(), p, 200);
    const runId = await startRun(fixture.stack, 'cache-refresh', params({ where: ownStaleProducts(p), concurrency: 4, circuitBreaker: { errorRate: 0.5, minRequests: 20 } }));
    const run = await waitForRun(fixture.stack, runId);
    assert.equal(run.status, 'success', JSON.stringify(run.result?.error ?? run.error));
    assert.equal(run.result!.counts.refreshed, 200);
    assert.equal(upstream.arrivals.filter((a) => a.status === 500).length, 12);
    assert.equal(upstream.arrivals.length, 212);
  });

  it('turns bad answers into row errors naming the id, the field and the reason; 4xx are not retried, timeouts are', async () => {
    upstream.reset();
    const p = uniqueId('bad');
    const ids = await seedProductCache(pool(), p, 20);
    const [malformed, badPrice, twoBad, forbidden, hangs, moved] = ids;
    upstream.knobs.malformed.add(malformed!);
    upstream.knobs.records.set(badPrice!, { ...upstreamRecord(badPrice!), pricing: { amount: 'abc', currency: 'EUR' } });
    upstream.knobs.records.set(twoBad!, { id: twoBad, pricing: { amount: 3, currency: 'EURO' } });
    upstream.knobs.status.set(forbidden!, 403);
    upstream.knobs.hang.add(hangs!);
    upstream.knobs.status.set(moved!, 301);
    const runId = await startRun(fixture.stack, 'cache-refresh', params({ where: ownStaleProducts(p), timeoutMs: 500, maxAttempts: 2 }));
    const run = await waitForRun(fixture.stack, runId);
    assert.equal(run.status, 'partial', JSON.stringify(run.result?.error ?? run.error));
    assert.deepEqual([run.result!.counts.refreshed, run.result!.counts.failed], [14, 6]);
    const res = await fixture.stack.app.inject({ method: 'GET', url: `/runs/${runId}/errors` });
    const errors = res.json<{ errors: { field: string | null; code: string; message: string; raw: unknown }[] }>().errors;
    const about = (id: string) => errors.filter((e) => (e.raw as { product_id?: string }).product_id === id).map((e) => ({ field: e.field, code: e.code, message: e.message }));
    assert.deepEqual(about(badPrice!), [{ field: 'price', code: 'VALIDATION_FAILED', message: 'price must be a number' }]);
    assert.deepEqual(about(twoBad!), [
      { field: 'name', code: 'VALIDATION_FAILED', message: 'name required' },
      { field: 'currency', code: 'VALIDATION_FAILED', message: 'currency must be a three-letter currency code such as EUR' },
    ]);
    assert.equal(about(malformed!)[0]?.code, 'INVALID_RESPONSE');
    assert.match(about(malformed!)[0]!.message, /^the response is not valid JSON/);
    assert.deepEqual(about(forbidden!), [{ field: null, code: 'UPSTREAM_ERROR', message: 'HTTP 403 Forbidden' }]);
    assert.deepEqual(about(hangs!), [{ field: null, code: 'UPSTREAM_ERROR', message: 'timed out after 500 ms (2 attempts)' }]);
    assert.deepEqual(about(moved!), [{ field: null, code: 'UPSTREAM_ERROR', message: 'HTTP 301 Moved Permanently (redirects are not followed: use the final URL)' }]);
    assert.deepEqual(errors.find((e) => e.field === 'price')?.raw, { product_id: badPrice });
    assert.equal(upstream.requestsFor(forbidden!), 1, 'a 403 is not asked again');
    assert.equal(upstream.requestsFor(hangs!), 2, 'a timeout is retried up to maxAttempts');
    const rows = await rowsOf(p);
    const failed = rows.filter((r) => r.last_status === 'error');
    assert.deepEqual(failed.map((r) => r.product_id).sort(), [malformed, badPrice, twoBad, forbidden, hangs, moved].sort());
    assert.ok(failed.every((r) => !r.refreshed && r.name?.startsWith('Old name')), 'a failed row keeps its values and stays stale');
  });

  it('a cancel stops the run at a batch boundary: what it committed is what it counted, and it asks nothing more', async () => {
    upstream.reset({ latencyMs: 50 });
    const p = uniqueId('cancel');
    await seedProductCache(pool(), p, 400);
    const runId = await startRun(fixture.stack, 'cache-refresh', params({ where: ownStaleProducts(p), concurrency: 2, batchSize: 10 }));
    await waitForRun(fixture.stack, runId, (r) => (r.progress?.counts.processed ?? 0) >= 20);
    const cancel = await fixture.stack.app.inject({ method: 'POST', url: `/runs/${runId}/cancel`, payload: {} });
    assert.equal(cancel.statusCode, 202, cancel.body);
    const run = await waitForRun(fixture.stack, runId);
    assert.equal(run.status, 'cancelled');
    const c = run.result!.counts;
    assert.ok(c.processed >= 20 && c.processed < 400, `stopped part-way (${c.processed})`);
    const refreshed = (await rowsOf(p)).filter((r) => r.refreshed).length;
    assert.equal(refreshed, c.refreshed, 'the rows refreshed are exactly the rows counted');
    const asked = upstream.arrivals.length;
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(upstream.arrivals.length, asked, 'no request after the run ended');
  });

  it('asks a batch endpoint for many rows at once; ids left out of its answer are not found', async () => {
    upstream.reset();
    const p = uniqueId('batch');
    const ids = await seedProductCache(pool(), p, 250);
    for (const id of ids.slice(100, 104)) upstream.knobs.missing.add(id);
    const runId = await startRun(fixture.stack, 'cache-refresh', {
      dataset: 'product_cache',
      where: ownStaleProducts(p),
      upstream: { batch: { url: `${upstream.url}/products/batch`, size: 100, itemsPath: 'items' }, mapping: upstreamMapping },
    });
    const run = await waitForRun(fixture.stack, runId);
    assert.equal(run.status, 'success', JSON.stringify(run.result?.error ?? run.error));
    assert.deepEqual([run.result!.counts.refreshed, run.result!.counts.notFound], [246, 4]);
    assert.deepEqual(upstream.arrivals.map((a) => a.ids.length), [100, 100, 50]);
  });

  it('asks a batch endpoint by GET with the ids in the query, and finds records by idField', async () => {
    upstream.reset();
    const p = uniqueId('batchget');
    const ids = await seedProductCache(pool(), p, 30);
    const runId = await startRun(fixture.stack, 'cache-refresh', {
      dataset: 'product_cache',
      where: ownStaleProducts(p),
      upstream: { batch: { url: `${upstream.url}/products`, method: 'GET', idsParam: 'ids', size: 25, itemsPath: 'items', idField: 'id' }, mapping: upstreamMapping },
    });
    const run = await waitForRun(fixture.stack, runId);
    assert.equal(run.status, 'success', JSON.stringify(run.result?.error ?? run.error));
    assert.equal(run.result!.counts.refreshed, 30);
    assert.deepEqual(upstream.arrivals.map((a) => a.ids), [ids.slice(0, 25), ids.slice(25)]);
  });

  it('reads a record wrapped in the answer at itemPath', async () => {
    upstream.reset({ wrap: 'data' });
    const p = uniqueId('wrapped');
    const [id] = await seedProductCache(pool(), p, 1);
    const run = await waitForRun(fixture.stack, await startRun(fixture.stack, 'cache-refresh', params({ where: ownStaleProducts(p), upstream: { url: `${upstream.url}/products/{product_id}`, itemPath: 'data', mapping: upstreamMapping } })));
    assert.equal(run.status, 'success', JSON.stringify(run.result?.error ?? run.error));
    assert.equal((await rowsOf(p))[0]!.name, upstreamRecord(id!).title);
  });

  it('a dry run counts the stale rows and shows a sample, asking the upstream nothing', async () => {
    upstream.reset();
    const p = uniqueId('dry');
    await seedProductCache(pool(), p, 8);
    const runId = await startRun(fixture.stack, 'cache-refresh', params({ where: ownStaleProducts(p), dryRun: true, sampleSize: 2 }));
    const run = await waitForRun(fixture.stack, runId);
    assert.equal(run.status, 'success');
    assert.equal(run.result!.preview?.matched, 8);
    assert.equal(run.result!.preview?.sample?.length, 2);
    assert.equal(upstream.arrivals.length, 0);
  });

  it('refuses an upstream outside BATCHFLOW_UPSTREAM_ORIGINS, and a header whose variable the worker lacks, before any request', async () => {
    upstream.reset();
    const p = uniqueId('deny');
    await seedProductCache(pool(), p, 3);
    const elsewhere = upstream.url.replace('127.0.0.1', 'localhost');
    const denied = await waitForRun(fixture.stack, await startRun(fixture.stack, 'cache-refresh', params({ where: ownStaleProducts(p), upstream: { url: `${elsewhere}/products/{product_id}` } })));
    assert.equal(denied.status, 'failed');
    assert.equal(denied.error?.code, 'UPSTREAM_NOT_ALLOWED');
    assert.match(denied.error.message, /http:\/\/localhost:\d+ is not an upstream origin this worker may call/);
    const noSecret = await waitForRun(
      fixture.stack,
      await startRun(fixture.stack, 'cache-refresh', params({ where: ownStaleProducts(p), upstream: { url: `${upstream.url}/products/{product_id}`, headers: { 'x-api-key': 'BATCHFLOW_SECRET_NOT_SET' } } })),
    );
    assert.equal(noSecret.status, 'failed');
    assert.equal(noSecret.error?.code, 'INVALID_PARAMS');
    assert.equal(noSecret.error.message, 'params.upstream.headers.x-api-key: the worker has no environment variable BATCHFLOW_SECRET_NOT_SET');
    assert.equal(upstream.arrivals.length, 0);
  });

  it('refuses bad params with the field named: unknown keys, two row selections, header values in params', async () => {
    const post = (p: object) => fixture.stack.app.inject({ method: 'POST', url: '/runs', payload: { kind: 'cache-refresh', params: p } });
    const field = async (p: object) => {
      const res = await post(p);
      assert.equal(res.statusCode, 400, res.body);
      return res.json<{ field: string; message: string }>();
    };
    assert.equal((await field(params({ staleAfer: '1 hour' }))).field, 'params.staleAfer');
    assert.match((await field(params({ staleAfter: '1 hour', force: true }))).message, /give one of staleAfter, where or force/);
    const header = await field(params({ upstream: { url: `${upstream.url}/products/{product_id}`, headers: { authorization: 'Bearer abc' } } }));
    assert.equal(header.field, 'params.upstream.headers.authorization');
    const template = await field(params({ upstream: { url: `${upstream.url}/products/{sku}` } }));
    assert.match(template.message, /\{sku\} is not a column of product_cache/);
  });
});
