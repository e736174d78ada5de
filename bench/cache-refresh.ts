/**
 * Workload `cache-refresh-10k`: 10,000 stale product_cache rows refreshed from the fake upstream
 * (20 ms per answer) at concurrency 32, no rate limit, through the cache-refresh workflow. The
 * reference is a plain client against the same upstream in the same run (32 fetches at a time, no
 * database, no checkpoints); the ideal is rows × latency / concurrency (6.25 s).
 */
import { startFakeUpstream, upstreamMapping } from '../test/helpers/fake-upstream';
import type { RunResult } from '../src/jobs/run';
import { log, type BenchContext, type WorkloadResult } from './context';

const ROWS = Number(process.env.BENCH_CACHE_ROWS ?? 10_000);
const LATENCY_MS = 20;
const CONCURRENCY = 32;

export async function benchCacheRefresh(ctx: BenchContext): Promise<WorkloadResult> {
  const { pool } = ctx;
  const upstream = await startFakeUpstream({ latencyMs: LATENCY_MS });
  try {
    await pool.query('TRUNCATE product_cache RESTART IDENTITY');
    await pool.query(
      `INSERT INTO product_cache (product_id, name, price, currency, last_updated, last_status)
       SELECT 'p' || g, 'Old name ' || g, 1, 'USD', now() - interval '2 hours', 'ok' FROM generate_series(1, $1::int) g`,
      [ROWS],
    );
    const ideal = (ROWS * LATENCY_MS) / CONCURRENCY / 1000;

    log(`reference: a plain client fetching ${ROWS.toLocaleString()} records, ${CONCURRENCY} at a time (${LATENCY_MS} ms each)`);
    let next = 1;
    const fetcher = async () => {
      while (next <= ROWS) {
        const res = await fetch(`${upstream.url}/products/p${next++}`);
        await res.json();
      }
    };
    let t0 = performance.now();
    await Promise.all(Array.from({ length: CONCURRENCY }, fetcher));
    const referenceSeconds = (performance.now() - t0) / 1000;
    log(`reference: ${referenceSeconds.toFixed(2)} s (ideal ${ideal.toFixed(2)} s)`);

    upstream.reset({ latencyMs: LATENCY_MS });
    log(`ours: cache-refresh workflow, concurrency ${CONCURRENCY}, no rate limit`);
    t0 = performance.now();
    const { runId } = await ctx.runs.start(
      'cache-refresh',
      { dataset: 'product_cache', staleAfter: '1 hour', concurrency: CONCURRENCY, upstream: { url: `${upstream.url}/products/{product_id}`, mapping: upstreamMapping } },
      { runId: `bench-cache-refresh-${process.pid}`, startedBy: 'bench' },
    );
    const result = (await ctx.client.workflow.getHandle(runId).result()) as RunResult;
    const oursSeconds = (performance.now() - t0) / 1000;
    log(`ours: ${oursSeconds.toFixed(2)} s, ${Math.round(ROWS / oursSeconds).toLocaleString()} rows/s (${result.counts.refreshed} refreshed, status ${result.status}, at most ${upstream.maxInFlight} in flight)`);
    log(`ideal ÷ ours: ${(ideal / oursSeconds).toFixed(2)} (target >= 0.8)`);
    if (result.counts.refreshed !== ROWS || upstream.arrivals.length !== ROWS) {
      throw new Error(`refreshed ${result.counts.refreshed} rows with ${upstream.arrivals.length} requests, expected ${ROWS}`);
    }
    return { oursSeconds, referenceSeconds, extra: { idealSeconds: ideal, idealRatio: Math.round((ideal / oursSeconds) * 100) / 100 } };
  } finally {
    await upstream.close();
  }
}
