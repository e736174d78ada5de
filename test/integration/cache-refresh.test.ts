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
      { total: 170, processed: 170, succeeded: 170, refreshed: 162, unchanged: 3, notFound: 5, failed: 0, skipped: 0 },
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
    assert.equal(after.length, 220);
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
    // A row error too: its message names the id and the field, never the value.
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
});
